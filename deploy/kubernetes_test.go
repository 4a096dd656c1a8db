package deploy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	kyaml "sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/leadthrough/leadthrough/deploy/kubernetes"
)

const (
	kustomizeDir       = "kubernetes"
	prometheusRuleFile = "kubernetes/prometheusrule.yaml"
	kubernetesDoc      = "../docs/kubernetes.md"
	dockerfile         = "Dockerfile"
	// The uid of deploy/Dockerfile's `USER nonroot`, distroless' nonroot user.
	nonrootUID = 65532
)

// The objects of the base, in the shape the tests read: only the fields they check.
type (
	object struct {
		Kind     string `json:"kind"`
		Metadata struct {
			Name   string            `json:"name"`
			Labels map[string]string `json:"labels"`
		} `json:"metadata"`
		Data map[string]string `json:"data"`
		Spec json.RawMessage   `json:"spec"`
	}
	deployment struct {
		Replicas *int     `json:"replicas"`
		Selector selector `json:"selector"`
		Template struct {
			Metadata struct {
				Labels map[string]string `json:"labels"`
			} `json:"metadata"`
			Spec podSpec `json:"spec"`
		} `json:"template"`
	}
	selector struct {
		MatchLabels map[string]string `json:"matchLabels"`
	}
	podSpec struct {
		TerminationGracePeriodSeconds *int `json:"terminationGracePeriodSeconds"`
		SecurityContext               struct {
			RunAsNonRoot *bool `json:"runAsNonRoot"`
			RunAsUser    *int  `json:"runAsUser"`
		} `json:"securityContext"`
		Containers []container `json:"containers"`
		Volumes    []struct {
			Name   string `json:"name"`
			Secret *struct {
				SecretName string `json:"secretName"`
			} `json:"secret"`
		} `json:"volumes"`
	}
	container struct {
		Name    string   `json:"name"`
		Image   string   `json:"image"`
		Command []string `json:"command"`
		Args    []string `json:"args"`
		EnvFrom []struct {
			ConfigMapRef *struct {
				Name string `json:"name"`
			} `json:"configMapRef"`
			SecretRef *struct {
				Name string `json:"name"`
			} `json:"secretRef"`
		} `json:"envFrom"`
		Env []struct {
			Name  string `json:"name"`
			Value string `json:"value"`
		} `json:"env"`
		Ports []struct {
			Name          string `json:"name"`
			ContainerPort int    `json:"containerPort"`
		} `json:"ports"`
		ReadinessProbe *probe `json:"readinessProbe"`
		LivenessProbe  *probe `json:"livenessProbe"`
		StartupProbe   *probe `json:"startupProbe"`
		Resources      struct {
			Requests map[string]string `json:"requests"`
			Limits   map[string]string `json:"limits"`
		} `json:"resources"`
		SecurityContext struct {
			ReadOnlyRootFilesystem   *bool `json:"readOnlyRootFilesystem"`
			AllowPrivilegeEscalation *bool `json:"allowPrivilegeEscalation"`
		} `json:"securityContext"`
		VolumeMounts []struct {
			Name      string `json:"name"`
			MountPath string `json:"mountPath"`
		} `json:"volumeMounts"`
	}
	probe struct {
		HTTPGet *struct {
			Path string `json:"path"`
			Port any    `json:"port"`
		} `json:"httpGet"`
	}
	service struct {
		Selector map[string]string `json:"selector"`
		Ports    []servicePort     `json:"ports"`
	}
	servicePort struct {
		Name       string `json:"name"`
		Port       int    `json:"port"`
		TargetPort any    `json:"targetPort"`
	}
	podDisruptionBudget struct {
		Selector       selector `json:"selector"`
		MinAvailable   any      `json:"minAvailable"`
		MaxUnavailable any      `json:"maxUnavailable"`
	}
	serviceMonitor struct {
		Selector  selector `json:"selector"`
		Endpoints []struct {
			Port string `json:"port"`
			Path string `json:"path"`
		} `json:"endpoints"`
	}
)

// rendered is the base as `kubectl apply -k` would send it: kustomize's own Go API, the same code as the kustomize
// inside kubectl, so no binary is needed.
type rendered map[string]object // by "Kind/name"

func renderBase(t *testing.T) rendered {
	t.Helper()
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), kustomizeDir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", kustomizeDir, err)
	}
	out := rendered{}
	for _, r := range m.Resources() {
		fields, err := r.Map()
		if err != nil {
			t.Fatal(err)
		}
		var o object
		b, err := json.Marshal(fields)
		if err == nil {
			err = json.Unmarshal(b, &o)
		}
		if err != nil {
			t.Fatalf("%s/%s: %v", r.GetKind(), r.GetName(), err)
		}
		out[o.Kind+"/"+o.Metadata.Name] = o
	}
	return out
}

// get decodes the spec of the object kind/name into spec, failing the test when the base has no such object.
func (r rendered) get(t *testing.T, kind, name string, spec any) object {
	t.Helper()
	o, ok := r[kind+"/"+name]
	if !ok {
		t.Fatalf("the base has no %s %s; it has %v", kind, name, slices.Sorted(maps.Keys(r)))
	}
	if spec != nil {
		if err := json.Unmarshal(o.Spec, spec); err != nil {
			t.Fatalf("%s %s: %v", kind, name, err)
		}
	}
	return o
}

// matches reports whether a selector's labels select an object with labels.
func matches(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false // an empty selector is a mistake here, not "everything"
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// The Deployments of the base, by the leadthrough command they run.
var components = []struct{ command, deployment string }{
	{"ingest", "leadthrough-ingest"},
	{"serve", "leadthrough-serve"},
}

func TestKubernetesBaseRendersTheExpectedObjects(t *testing.T) {
	r := renderBase(t)
	for _, want := range []string{
		"Deployment/leadthrough-ingest", "PodDisruptionBudget/leadthrough-ingest", "Service/leadthrough-ingest",
		"Deployment/leadthrough-serve", "Service/leadthrough",
		"ServiceMonitor/leadthrough", "PrometheusRule/leadthrough",
	} {
		if _, ok := r[want]; !ok {
			t.Errorf("the base has no %s", want)
		}
	}
	for key, o := range r {
		// The passwords come from a Secret the base refers to and never holds.
		if o.Kind == "Secret" {
			t.Errorf("the base holds %s: secrets belong in an overlay or the cluster, never in the repository", key)
		}
		for k := range o.Data {
			if strings.HasSuffix(k, "PASSWORD") {
				t.Errorf("%s sets %s: give the password as a file of the Secret (%s_FILE)", key, k, k)
			}
		}
	}
}

// leadthroughEnv returns the LEADTHROUGH_* variables each command reads, from the binary's own -h: the variables
// are derived from flag names in cmd/leadthrough, so that is where the truth is.
var leadthroughEnv = sync.OnceValues(func() (map[string][]string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "leadthrough-bin")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "leadthrough")
	if out, err := exec.Command(goBin, "build", "-o", bin, "../cmd/leadthrough").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build ../cmd/leadthrough: %v\n%s", err, out)
	}
	vars := map[string][]string{}
	for _, c := range components {
		out, err := exec.Command(bin, c.command, "-h").CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("leadthrough %s -h: %v\n%s", c.command, err, out)
		}
		for _, m := range regexp.MustCompile(`\(env (LEADTHROUGH_[A-Z0-9_]+)\)`).FindAllStringSubmatch(string(out), -1) {
			vars[c.command] = append(vars[c.command], m[1])
		}
	}
	return vars, nil
})

func envVars(t *testing.T) map[string][]string {
	t.Helper()
	vars, err := leadthroughEnv()
	if err != nil {
		t.Fatalf("read leadthrough's flags: %v", err)
	}
	for _, c := range components {
		if len(vars[c.command]) < 5 {
			t.Fatalf("leadthrough %s -h lists %d LEADTHROUGH_* variables: the test no longer understands its help",
				c.command, len(vars[c.command]))
		}
	}
	return vars
}

// TestKubernetesDeployments checks each Deployment against the binary it runs: the command, the flags its
// ConfigMaps set, the port they make it listen on, the probes, the Secret behind the password files and the
// non-root, read-only container of deploy/Dockerfile.
func TestKubernetesDeployments(t *testing.T) {
	r := renderBase(t)
	vars := envVars(t)
	exposed := dockerfileExposes(t)
	for _, c := range components {
		t.Run(c.command, func(t *testing.T) {
			var d deployment
			r.get(t, "Deployment", c.deployment, &d)
			pod := d.Template.Spec
			if !matches(d.Selector.MatchLabels, d.Template.Metadata.Labels) {
				t.Errorf("selector %v does not select the pod template's labels %v", d.Selector.MatchLabels, d.Template.Metadata.Labels)
			}
			if d.Replicas == nil || *d.Replicas < 1 {
				t.Error("want replicas set, at least 1")
			}
			if pod.TerminationGracePeriodSeconds == nil {
				t.Error("want terminationGracePeriodSeconds, set for how the command stops on SIGTERM")
			}
			if sc := pod.SecurityContext; sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser != nonrootUID {
				t.Errorf("want runAsNonRoot and runAsUser %d (deploy/Dockerfile's nonroot, by number)", nonrootUID)
			}
			if len(pod.Containers) != 1 {
				t.Fatalf("want one container, got %d", len(pod.Containers))
			}
			ctr := pod.Containers[0]
			if name, _, _ := strings.Cut(ctr.Image, ":"); name != "leadthrough" || len(ctr.Command) != 0 {
				t.Errorf("want the image leadthrough with its entrypoint (deploy/Dockerfile), got image %q, command %q", ctr.Image, ctr.Command)
			}
			if len(ctr.Args) == 0 || ctr.Args[0] != c.command {
				t.Fatalf("want args [%s], got %q", c.command, ctr.Args)
			}
			if sc := ctr.SecurityContext; sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
				sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				t.Error("want readOnlyRootFilesystem and no privilege escalation")
			}
			if ctr.Resources.Requests["cpu"] == "" || ctr.Resources.Requests["memory"] == "" || ctr.Resources.Limits["memory"] == "" {
				t.Errorf("want cpu and memory requests and a memory limit, got %+v", ctr.Resources)
			}

			// The flags: every variable of the ConfigMaps is one the command reads; none comes from a Secret.
			env := map[string]string{}
			for _, e := range ctr.Env {
				env[e.Name] = e.Value
			}
			for _, from := range ctr.EnvFrom {
				if from.SecretRef != nil {
					t.Errorf("envFrom Secret %s: give passwords as files (LEADTHROUGH_*_PASSWORD_FILE) from the mounted Secret", from.SecretRef.Name)
					continue
				}
				if from.ConfigMapRef == nil {
					continue
				}
				cm := r.get(t, "ConfigMap", from.ConfigMapRef.Name, nil)
				for k, v := range cm.Data {
					if !slices.Contains(vars[c.command], k) {
						t.Errorf("ConfigMap %s sets %s, which leadthrough %s does not read", cm.Metadata.Name, k, c.command)
					}
					if _, ok := env[k]; !ok {
						env[k] = v
					}
				}
			}
			if len(env) == 0 {
				t.Fatal("the container gets no LEADTHROUGH_* variables")
			}

			// The port: LEADTHROUGH_LISTEN on all interfaces, on the container port "http" that deploy/Dockerfile
			// exposes.
			port := 0
			for _, p := range ctr.Ports {
				if p.Name == "http" {
					port = p.ContainerPort
				}
			}
			host, listenPort, _ := strings.Cut(env["LEADTHROUGH_LISTEN"], ":")
			if host != "" || listenPort != strconv.Itoa(port) {
				t.Errorf("LEADTHROUGH_LISTEN is %q: want :%d, all interfaces on the container port named http", env["LEADTHROUGH_LISTEN"], port)
			}
			if !slices.Contains(exposed, port) {
				t.Errorf("port %d is not one deploy/Dockerfile exposes (%v)", port, exposed)
			}

			// Probes: readiness on /healthz; liveness on the same port, never /healthz, which fails while the
			// process waits for ClickHouse or Kafka (README, Startup and health).
			if p := ctr.ReadinessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" || p.HTTPGet.Port != "http" {
				t.Errorf("want a readiness probe GET /healthz on port http, got %+v", p)
			}
			if p := ctr.LivenessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Port != "http" {
				t.Errorf("want an HTTP liveness probe on port http, got %+v", p)
			} else if p.HTTPGet.Path == "/healthz" {
				t.Error("liveness probe on /healthz: it fails while the process waits for its services, which a restart does not cure")
			}
			if ctr.StartupProbe != nil && ctr.StartupProbe.HTTPGet != nil && ctr.StartupProbe.HTTPGet.Path == "/healthz" {
				t.Error("startup probe on /healthz: it would restart a process that waits for its services")
			}

			// Password files lie in a mounted Secret.
			secretMounts := map[string]bool{}
			for _, v := range pod.Volumes {
				if v.Secret == nil {
					continue
				}
				for _, m := range ctr.VolumeMounts {
					if m.Name == v.Name {
						secretMounts[strings.TrimSuffix(m.MountPath, "/")] = true
					}
				}
			}
			files := 0
			for k, v := range env {
				if strings.HasSuffix(k, "_PASSWORD_FILE") {
					files++
					if !secretMounts[filepath.Dir(v)] {
						t.Errorf("%s=%s: not in a directory where a Secret is mounted (%v)", k, v, slices.Sorted(maps.Keys(secretMounts)))
					}
				}
			}
			if files == 0 {
				t.Error("no LEADTHROUGH_*_PASSWORD_FILE: where does the ClickHouse password come from?")
			}
		})
	}
}

// dockerfileExposes returns the ports of deploy/Dockerfile's EXPOSE.
func dockerfileExposes(t *testing.T) []int {
	t.Helper()
	b, err := os.ReadFile(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	var ports []int
	for _, m := range regexp.MustCompile(`(?m)^EXPOSE\s+(.+)$`).FindAllStringSubmatch(string(b), -1) {
		for _, f := range strings.Fields(m[1]) {
			p, err := strconv.Atoi(strings.TrimSuffix(f, "/tcp"))
			if err != nil {
				t.Fatalf("%s: EXPOSE %s: %v", dockerfile, f, err)
			}
			ports = append(ports, p)
		}
	}
	if len(ports) == 0 {
		t.Fatalf("%s exposes no port", dockerfile)
	}
	return ports
}

// TestKubernetesSelectorsMatch: the disruption budget covers the ingest workers, each Service reaches its own pods
// on a port they have, and the ServiceMonitor scrapes both Services on a port they name, as the Prometheus jobs of
// deploy/prometheus/prometheus.yml.
func TestKubernetesSelectorsMatch(t *testing.T) {
	r := renderBase(t)
	pods := map[string]deployment{}
	for _, c := range components {
		var d deployment
		r.get(t, "Deployment", c.deployment, &d)
		pods[c.command] = d
	}

	var pdb podDisruptionBudget
	r.get(t, "PodDisruptionBudget", "leadthrough-ingest", &pdb)
	if !matches(pdb.Selector.MatchLabels, pods["ingest"].Template.Metadata.Labels) {
		t.Errorf("PodDisruptionBudget selector %v does not select the ingest pods %v", pdb.Selector.MatchLabels, pods["ingest"].Template.Metadata.Labels)
	}
	if matches(pdb.Selector.MatchLabels, pods["serve"].Template.Metadata.Labels) {
		t.Error("PodDisruptionBudget leadthrough-ingest selects the serve pod too")
	}
	if (pdb.MinAvailable == nil) == (pdb.MaxUnavailable == nil) {
		t.Errorf("want one of minAvailable and maxUnavailable, got %+v", pdb)
	}

	services := map[string]string{"serve": "leadthrough", "ingest": "leadthrough-ingest"}
	for command, name := range services {
		var s service
		o := r.get(t, "Service", name, &s)
		for other, d := range pods {
			if got := matches(s.Selector, d.Template.Metadata.Labels); got != (other == command) {
				t.Errorf("Service %s selects the %s pods: %v, want %v", name, other, got, other == command)
			}
		}
		ctr := pods[command].Template.Spec.Containers[0]
		for _, p := range s.Ports {
			found := false
			for _, cp := range ctr.Ports {
				found = found || p.TargetPort == cp.Name || p.TargetPort == float64(cp.ContainerPort)
			}
			if !found {
				t.Errorf("Service %s port %s: targetPort %v is not a port of the %s container", name, p.Name, p.TargetPort, command)
			}
		}

		var sm serviceMonitor
		r.get(t, "ServiceMonitor", "leadthrough", &sm)
		if !matches(sm.Selector.MatchLabels, o.Metadata.Labels) {
			t.Errorf("ServiceMonitor selector %v does not select Service %s %v", sm.Selector.MatchLabels, name, o.Metadata.Labels)
		}
		if len(sm.Endpoints) == 0 {
			t.Fatal("ServiceMonitor has no endpoints")
		}
		for _, e := range sm.Endpoints {
			if !slices.ContainsFunc(s.Ports, func(p servicePort) bool { return p.Name == e.Port }) {
				t.Errorf("ServiceMonitor endpoint port %q is not a port name of Service %s", e.Port, name)
			}
			if e.Path != "/metrics" {
				t.Errorf("ServiceMonitor endpoint path %q, want /metrics", e.Path)
			}
		}
	}

	// The ServiceMonitor's job label is the Service's name: the same jobs as the single-host configuration.
	b, err := os.ReadFile(configFile)
	if err != nil {
		t.Fatal(err)
	}
	var jobs []string
	for _, m := range regexp.MustCompile(`(?m)^\s*- job_name:\s*(\S+)`).FindAllStringSubmatch(string(b), -1) {
		jobs = append(jobs, m[1])
	}
	if got := slices.Sorted(maps.Values(services)); !slices.Equal(got, slices.Sorted(slices.Values(jobs))) {
		t.Errorf("Services %v, want the jobs of %s: %v", got, configFile, jobs)
	}
}

// TestPrometheusRuleIsUpToDate: the committed PrometheusRule is what the generator makes of alerts.yml now.
func TestPrometheusRuleIsUpToDate(t *testing.T) {
	alerts, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	want, err := kubernetes.PrometheusRule(alerts)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(prometheusRuleFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is stale: run `make kubernetes` (go run ./deploy/kubernetes/gen) and commit it\n%s",
			prometheusRuleFile, firstDifference("committed", string(got), "generated", string(want)))
	}
}

// TestPrometheusRuleHasTheGroupsOfAlertsYML compares what Kubernetes gets, after kustomize, with alerts.yml as
// YAML, so an indentation that changed a block scalar or a rule cannot pass.
func TestPrometheusRuleHasTheGroupsOfAlertsYML(t *testing.T) {
	b, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var alerts struct {
		Groups any `json:"groups" yaml:"groups"`
	}
	if err := kyaml.Unmarshal(b, &alerts); err != nil {
		t.Fatalf("%s: %v", rulesFile, err)
	}
	var spec struct {
		Groups any `json:"groups"`
	}
	renderBase(t).get(t, "PrometheusRule", "leadthrough", &spec)
	if spec.Groups == nil {
		t.Fatal("the PrometheusRule has no groups")
	}
	if want, got := normalize(t, alerts.Groups), normalize(t, spec.Groups); !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", "  ")
		w, _ := json.MarshalIndent(want, "", "  ")
		t.Errorf("the PrometheusRule's groups differ from %s:\n%s", rulesFile,
			firstDifference("PrometheusRule", string(g), rulesFile, string(w)))
	}
}

// normalize gives v the types encoding/json gives, so values decoded by different libraries compare.
func normalize(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestKubernetesFilesNameRealVariables: a LEADTHROUGH_* variable named anywhere in the base or its document, in a
// comment or an example, is one ingest or serve reads.
func TestKubernetesFilesNameRealVariables(t *testing.T) {
	vars := envVars(t)
	known := map[string]bool{}
	for _, vs := range vars {
		for _, v := range vs {
			known[v] = true
		}
	}
	files, err := filepath.Glob(filepath.Join(kustomizeDir, "*"))
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, kubernetesDoc)
	n := 0
	for _, f := range files {
		if fi, err := os.Stat(f); err != nil {
			t.Fatal(err)
		} else if fi.IsDir() || strings.HasSuffix(f, ".go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile(`\bLEADTHROUGH_[A-Z0-9_]*[A-Z0-9]`).FindAllString(string(b), -1) {
			n++
			if !known[m] {
				t.Errorf("%s names %s, which neither leadthrough ingest nor serve reads", f, m)
			}
		}
	}
	if n == 0 {
		t.Fatal("found no LEADTHROUGH_* variable: the test no longer understands the files")
	}
}

// firstDifference shows the first line where the texts a and b, named aName and bName, differ.
func firstDifference(aName, a, bName, b string) string {
	as, bs := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := range max(len(as), len(bs)) {
		var al, bl string
		if i < len(as) {
			al = as[i]
		}
		if i < len(bs) {
			bl = bs[i]
		}
		if al != bl {
			return fmt.Sprintf("line %d:\n%s: %s\n%s: %s", i+1, aName, al, bName, bl)
		}
	}
	return "same lines, different bytes"
}
