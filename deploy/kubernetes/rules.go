// Package kubernetes writes the generated file of the kustomize base in this directory: the PrometheusRule, from
// the alerting rules of deploy/prometheus/alerts.yml, so the rules live in one place and Prometheus Operator users
// get the same ones as everyone else. It is text in, text out: it must never import a Kubernetes or YAML library,
// which would bring them into the module's build for one file.
package kubernetes

//go:generate go run ./gen -alerts ../prometheus/alerts.yml -out prometheusrule.yaml

import (
	"bytes"
	"errors"
	"fmt"
	"os"
)

// Default paths, relative to the repository root (where `make kubernetes` runs the generator).
const (
	DefaultAlerts         = "deploy/prometheus/alerts.yml"
	DefaultPrometheusRule = "deploy/kubernetes/prometheusrule.yaml"
)

// header is the PrometheusRule around the groups. The labels are the base's own; a Prometheus whose ruleSelector
// wants others (kube-prometheus-stack: release: <its release>) gets them from an overlay.
const header = `# Generated from deploy/prometheus/alerts.yml by ` + "`go run ./deploy/kubernetes/gen`" + ` (make kubernetes); do not edit.
# Change the rules there: a test fails while this file is out of date.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: leadthrough
  labels:
    app.kubernetes.io/name: leadthrough
    app.kubernetes.io/component: alerts
spec:
`

// PrometheusRule returns the PrometheusRule manifest for alerts, the text of a Prometheus rule file: its `groups:`
// and everything after it become the spec, indented, comments included; the file's leading comment, which talks
// about the file itself, is left out. Indenting every line alike keeps YAML block scalars (the rules' expr and
// description) intact.
func PrometheusRule(alerts []byte) ([]byte, error) {
	if !bytes.HasPrefix(alerts, []byte("groups:")) {
		i := bytes.Index(alerts, []byte("\ngroups:"))
		if i < 0 {
			return nil, errors.New("no top-level `groups:` in the rule file")
		}
		alerts = alerts[i+1:]
	}
	var out bytes.Buffer
	out.WriteString(header)
	for line := range bytes.Lines(alerts) {
		if len(bytes.TrimSpace(line)) > 0 {
			out.WriteString("  ")
		}
		out.Write(bytes.TrimRight(line, " \t\r\n"))
		out.WriteByte('\n')
	}
	return out.Bytes(), nil
}

// WritePrometheusRule reads the rule file alerts and writes its PrometheusRule to out.
func WritePrometheusRule(alerts, out string) error {
	b, err := os.ReadFile(alerts)
	if err != nil {
		return err
	}
	rule, err := PrometheusRule(b)
	if err != nil {
		return fmt.Errorf("%s: %w", alerts, err)
	}
	return os.WriteFile(out, rule, 0o644)
}
