package main

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

// TestMonthlyPeriodFlagsAreCheckedBeforeConnecting: --period, --from, --to and --as-of that do not fit together are
// usage errors (exit 2) caught before any connection (port 1 would refuse it with exit code 1).
func TestMonthlyPeriodFlagsAreCheckedBeforeConnecting(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown period", []string{"--period", "week"}, "--period must be window or month"},
		{"from without month", []string{"--from", "2026-01-01T00:00:00Z"}, "--from and --to need --period month"},
		{"as-of with month", []string{"--period", "month", "--as-of", "2026-01-01T00:00:00Z"}, "--as-of is for --period window"},
		{"empty range", []string{"--period", "month", "--from", "2026-03-01T00:00:00Z", "--to", "2026-02-01T00:00:00Z"},
			"--from must be before --to"},
		{"bad from", []string{"--period", "month", "--from", "March"}, "RFC 3339"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			args := append([]string{"indicators", "--clickhouse-addr", "127.0.0.1:1"}, tt.args...)
			if code := run(args, io.Discard, &stderr); code != 2 {
				t.Errorf("exit code %d, want 2 (stderr %q)", code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("stderr %q does not mention %q", stderr.String(), tt.want)
			}
		})
	}
}
