// Package dashboards is leadthrough's Grafana dashboards as code, built with grafana-foundation-sdk. The JSON that
// Grafana loads (provisioned by deploy/grafana) is generated from it and committed next to this file:
// `go generate ./dashboards` or `make dashboards` rewrites it, and a test fails when the committed JSON is stale.
//
// It only describes queries: it must never import the pipeline's packages, and its PromQL may only use metrics the
// service exports (the test checks every expression against that list).
package dashboards

//go:generate go run ./cmd/gen -dir .

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// File is one generated dashboard: the file name under dashboards/ and the function that builds it.
type File struct {
	Name  string
	Build func() (dashboard.Dashboard, error)
}

// Files are all generated dashboards.
var Files = []File{
	{Name: "leadthrough-managers.json", Build: Managers},
}

// Render builds f and returns its JSON as committed: two-space indent, a trailing newline, and no HTML escaping
// (PromQL's < and > stay readable in diffs).
func Render(f File) ([]byte, error) {
	d, err := f.Build()
	if err != nil {
		return nil, fmt.Errorf("build dashboard %s: %w", f.Name, err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(d); err != nil {
		return nil, fmt.Errorf("encode dashboard %s: %w", f.Name, err)
	}
	return buf.Bytes(), nil
}

// WriteAll renders every dashboard into dir, replacing the files there.
func WriteAll(dir string) error {
	for _, f := range Files {
		b, err := Render(f)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, f.Name), b, 0o644); err != nil {
			return fmt.Errorf("write dashboard: %w", err)
		}
	}
	return nil
}
