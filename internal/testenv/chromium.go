package testenv

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// ChromiumFlags are the flags of every headless run: no sandbox (the tests run as root in CI), nothing the browser
// would fetch from the internet on its own (updates, field trials, first-run pages), no GPU, and /tmp rather than a
// small /dev/shm.
var ChromiumFlags = []string{"--headless", "--no-sandbox", "--disable-background-networking",
	"--disable-component-update", "--no-first-run", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars"}

// Chromium returns the path of the Chromium browser (Debian's `chromium`), for tests that open a page in a real
// browser. Missing under `make test` or CI fails the test.
func Chromium(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	Missing(t, "Chromium (`chromium`) is not installed")
	return ""
}

// Headless runs the Chromium at path with ChromiumFlags, a fresh profile in the test's temporary directory and
// args (such as --dump-dom URL or --screenshot=FILE URL), and returns what it printed on stdout. A run that fails
// or outlasts two minutes fails the test, with the browser's stderr.
func Headless(t testing.TB, path string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	all := append(append(append([]string{}, ChromiumFlags...), "--user-data-dir="+t.TempDir()), args...)
	cmd := exec.CommandContext(ctx, path, all...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %s: %v\n%s", strings.Join(args, " "), err, lastLines(stderr.String(), 30))
	}
	return stdout.Bytes()
}

// lastLines is the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
