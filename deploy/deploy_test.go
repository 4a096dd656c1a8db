package deploy

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/leadthrough/leadthrough/internal/exported"
	"github.com/leadthrough/leadthrough/internal/testenv"
)

const (
	rulesFile      = "prometheus/alerts.yml"
	rulesTestFile  = "prometheus/alerts_test.yml"
	configFile     = "prometheus/prometheus.yml"
	composeConfig  = "compose/prometheus.yml"
	composeFile    = "compose/docker-compose.yml"
	runbookFile    = "../docs/runbook.md"
	repoURL        = "https://github.com/leadthrough/leadthrough/blob/main/"
	runbookURLBase = repoURL + "docs/runbook.md#"
)

// promtool runs promtool with args and fails the test, with promtool's output, unless it succeeds.
func promtool(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(testenv.Promtool(t), args...).CombinedOutput()
	t.Logf("promtool %s:\n%s", strings.Join(args, " "), out)
	if err != nil {
		t.Fatalf("promtool %s failed: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestAlertRulesPassPromtoolCheck(t *testing.T) {
	out := promtool(t, "check", "rules", rulesFile)
	if !strings.Contains(out, "SUCCESS") {
		t.Errorf("promtool check rules did not report SUCCESS:\n%s", out)
	}
}

func TestAlertRulesUnitTests(t *testing.T) {
	out := promtool(t, "test", "rules", rulesTestFile)
	if !strings.Contains(out, "SUCCESS") || strings.Contains(out, "FAILED") {
		t.Errorf("promtool test rules did not report SUCCESS:\n%s", out)
	}
}

func TestPrometheusConfigsPassPromtoolCheck(t *testing.T) {
	t.Run("single host", func(t *testing.T) {
		promtool(t, "check", "config", configFile)
	})
	// The compose stack mounts its config and the rules side by side in /etc/prometheus; check them that way.
	t.Run("compose", func(t *testing.T) {
		dir := t.TempDir()
		copyFile(t, composeConfig, filepath.Join(dir, "prometheus.yml"))
		copyFile(t, rulesFile, filepath.Join(dir, "alerts.yml"))
		promtool(t, "check", "config", filepath.Join(dir, "prometheus.yml"))
	})
}

// alert is one alerting rule of alerts.yml, as text: promtool checks the YAML, this checks the conventions.
type alert struct{ name, text string }

func alerts(t *testing.T) []alert {
	t.Helper()
	b, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	parts := regexp.MustCompile(`(?m)^\s*- alert:\s*`).Split(string(b), -1)
	var as []alert
	for _, p := range parts[1:] {
		name, _, _ := strings.Cut(p, "\n")
		as = append(as, alert{strings.TrimSpace(name), p})
	}
	if len(as) == 0 {
		t.Fatalf("no alerts found in %s", rulesFile)
	}
	return as
}

// TestAlertsFollowTheMixinConventions: CamelCase names with the Leadthrough prefix, a severity of
// critical|warning|info, a summary, a templated description, and a runbook_url to the alert's own section.
func TestAlertsFollowTheMixinConventions(t *testing.T) {
	name := regexp.MustCompile(`^Leadthrough(?:[A-Z][a-z0-9]+)+$`)
	for _, a := range alerts(t) {
		if !name.MatchString(a.name) {
			t.Errorf("alert %q: want a CamelCase name starting with Leadthrough", a.name)
		}
		if !regexp.MustCompile(`(?m)^\s+severity:\s*(critical|warning|info)\s*$`).MatchString(a.text) {
			t.Errorf("alert %s: want a severity label of critical, warning or info", a.name)
		}
		if !regexp.MustCompile(`(?m)^\s+summary:\s*\S`).MatchString(a.text) {
			t.Errorf("alert %s: want a summary", a.name)
		}
		if m := regexp.MustCompile(`(?m)^\s+summary:.*\{\{`).FindString(a.text); m != "" {
			t.Errorf("alert %s: the summary must be static (templates go in the description): %s", a.name, m)
		}
		if !regexp.MustCompile(`(?s)description:.*\{\{.*\}\}`).MatchString(a.text) {
			t.Errorf("alert %s: want a templated description", a.name)
		}
		want := "runbook_url: " + runbookURLBase + strings.ToLower(a.name)
		if !strings.Contains(a.text, want+"\n") {
			t.Errorf("alert %s: want %q", a.name, want)
		}
	}
}

func TestRunbookHasASectionPerAlert(t *testing.T) {
	text, err := os.ReadFile(runbookFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range alerts(t) {
		// GitHub's anchor of "## LeadthroughFoo" is #leadthroughfoo, which runbook_url links to.
		if !regexp.MustCompile(`(?m)^## ` + a.name + `\s*$`).Match(text) {
			t.Errorf("runbook has no section \"## %s\"", a.name)
		}
	}
}

// TestRunbookURLsLeadToSectionsThatExist: every runbook_url of the rules and of their tests names a file of this
// repository that exists and a heading of that file, by GitHub's anchor for it.
func TestRunbookURLsLeadToSectionsThatExist(t *testing.T) {
	url := regexp.MustCompile(`runbook_url:\s*(\S+)`)
	n := 0
	for _, f := range []string{rulesFile, rulesTestFile} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range url.FindAllStringSubmatch(string(b), -1) {
			n++
			path, anchor, _ := strings.Cut(strings.TrimPrefix(m[1], repoURL), "#")
			if !strings.HasPrefix(m[1], repoURL) || anchor == "" {
				t.Errorf("%s: runbook_url %s is not %s<file>#<section>", f, m[1], repoURL)
				continue
			}
			doc, err := os.ReadFile(filepath.Join("..", filepath.FromSlash(path)))
			if err != nil {
				t.Errorf("%s: runbook_url %s: %v", f, m[1], err)
				continue
			}
			if !slices.Contains(headingAnchors(string(doc)), anchor) {
				t.Errorf("%s: runbook_url %s: %s has no heading with the anchor #%s", f, m[1], path, anchor)
			}
		}
	}
	if n == 0 {
		t.Fatal("found no runbook_url: the test no longer understands the rules")
	}
}

// headingAnchors returns the anchors GitHub gives the Markdown headings of doc: lower case, punctuation other than
// '-' and '_' dropped, spaces turned into '-'.
func headingAnchors(doc string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`(?m)^#{1,6}\s+(.+?)\s*$`).FindAllStringSubmatch(doc, -1) {
		var b strings.Builder
		for _, r := range strings.ToLower(m[1]) {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				b.WriteRune(r)
			}
		}
		out = append(out, b.String())
	}
	return out
}

// TestDocumentsTheRulesNameExist: a Markdown file the Prometheus files mention by its path in this repository (in a
// comment, say) must exist.
func TestDocumentsTheRulesNameExist(t *testing.T) {
	path := regexp.MustCompile(`(?:^|[\s('"])((?:[\w.-]+/)*[\w.-]+\.md)\b`)
	files, err := filepath.Glob("prometheus/*.yml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no Prometheus files: %v", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range path.FindAllStringSubmatch(string(b), -1) {
			if _, err := os.Stat(filepath.Join("..", filepath.FromSlash(m[1]))); err != nil {
				t.Errorf("%s mentions %s, which does not exist: %v", f, m[1], err)
			}
		}
	}
}

// TestRulesUseOnlyExportedMetrics: a rule, or a rule test, on a metric name leadthrough does not export would
// never fire, and its tests would pass all the same.
func TestRulesUseOnlyExportedMetrics(t *testing.T) {
	names, err := exported.Names()
	if err != nil {
		t.Fatal(err)
	}
	word := regexp.MustCompile(`\bleadthrough_[a-z0-9_]+`)
	for _, f := range []string{rulesFile, rulesTestFile} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range word.FindAllString(string(b), -1) {
			if !slices.Contains(names, m) {
				t.Errorf("%s uses %s, which leadthrough does not export", f, m)
			}
		}
	}
}

// TestComposeFileIsValid runs `docker compose config` (or docker-compose) where one is installed; it needs no
// Docker engine. It also checks that every file the stack mounts or builds from exists.
func TestComposeFileIsValid(t *testing.T) {
	b, err := os.ReadFile(composeFile)
	if err != nil {
		t.Fatal(err)
	}
	paths := regexp.MustCompile(`(?m)^\s+(?:- |context: |dockerfile: )(\.{1,2}/[^:\s]*)`).FindAllStringSubmatch(string(b), -1)
	if len(paths) == 0 {
		t.Fatal("found no relative paths in the compose file: the test no longer understands it")
	}
	for _, m := range paths {
		if _, err := os.Stat(filepath.Join("compose", m[1])); err != nil {
			t.Errorf("compose file refers to %s: %v", m[1], err)
		}
	}
	if !strings.Contains(string(b), "dockerfile: deploy/Dockerfile") {
		t.Error("compose file does not build from deploy/Dockerfile")
	}

	var cmd *exec.Cmd
	if docker, err := exec.LookPath("docker"); err == nil && exec.Command(docker, "compose", "version").Run() == nil {
		cmd = exec.Command(docker, "compose", "-f", composeFile, "--profile", "demo", "config", "-q")
	} else if dc, err := exec.LookPath("docker-compose"); err == nil {
		cmd = exec.Command(dc, "-f", composeFile, "--profile", "demo", "config", "-q")
	} else {
		testenv.Missing(t, "neither `docker compose` nor docker-compose is installed for the schema check of "+composeFile)
	}
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out)
	} else if err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
