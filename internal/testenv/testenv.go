// Package testenv gives tests the addresses of the real services that `make test` starts (ClickHouse, Apache Kafka,
// promtool and the Prometheus server, and chdb, a current ClickHouse embedded in Python behind an HTTP bridge). A plain `go test ./...` without them skips those tests and says so; under `make test` or CI
// (LEADTHROUGH_REQUIRE_SERVICES=1 or CI=true) a missing service fails the test instead, so a green run can never
// hide a skipped integration test.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

func required() bool {
	return os.Getenv("LEADTHROUGH_REQUIRE_SERVICES") == "1" || os.Getenv("CI") == "true"
}

func lookup(t testing.TB, env, what string) string {
	t.Helper()
	v := os.Getenv(env)
	if v != "" {
		return v
	}
	if required() {
		t.Fatalf("%s is not set: this test needs a real %s (run it through `make test`)", env, what)
	}
	t.Skipf("%s is not set: skipping, this test needs a real %s (`make test` starts one)", env, what)
	return ""
}

// ClickHouse returns the native-protocol address (host:port) of the test ClickHouse server.
func ClickHouse(t testing.TB) string {
	return lookup(t, "LEADTHROUGH_TEST_CLICKHOUSE", "ClickHouse server")
}

// Engine is one ClickHouse engine the store's tests run on.
type Engine struct {
	Name     string // names the subtest: "clickhouse-18.16", "chdb-26.9"
	Addr     string // host:port
	Protocol string // how clickhouse-go reaches it: "native" or "http" (store.Config.Protocol)
}

// engines are the ClickHouse engines the SQL must run on: the oldest supported release and a current one.
var engines = []struct {
	Engine
	env, what string
}{
	{Engine{Name: "clickhouse-18.16", Protocol: "native"}, "LEADTHROUGH_TEST_CLICKHOUSE",
		"ClickHouse 18.16 server (native protocol, host:port)"},
	{Engine{Name: "chdb-26.9", Protocol: "http"}, "LEADTHROUGH_TEST_CHDB",
		"ClickHouse 26.9 in chdb behind scripts/chdb_bridge.py (HTTP, host:port)"},
}

// ClickHouseEngines returns every ClickHouse engine to test the store on, the 18.16 server first. Under `make test`
// or CI each one is required; otherwise an engine whose variable is unset is left out (and said so), and the test
// is skipped when none is set.
func ClickHouseEngines(t testing.TB) []Engine {
	t.Helper()
	var out []Engine
	var missing []string
	for _, e := range engines {
		e.Addr = os.Getenv(e.env)
		if e.Addr == "" {
			missing = append(missing, fmt.Sprintf("%s is not set: it names the %s", e.env, e.what))
			continue
		}
		out = append(out, e.Engine)
	}
	if len(missing) > 0 {
		msg := strings.Join(missing, "; ")
		switch {
		case required():
			t.Fatalf("%s (run it through `make test`)", msg)
		case len(out) == 0:
			t.Skipf("skipping, no ClickHouse engine: %s (`make test` starts them)", msg)
		default:
			t.Logf("testing on %d of %d ClickHouse engines: %s (`make test` starts it)", len(out), len(engines), msg)
		}
	}
	return out
}

// Kafka returns the bootstrap address (host:port) of the test Apache Kafka broker.
func Kafka(t testing.TB) string { return lookup(t, "LEADTHROUGH_TEST_KAFKA", "Apache Kafka broker") }

// Promtool returns the path of the promtool binary.
func Promtool(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("promtool"); err == nil {
		return p
	}
	if required() {
		t.Fatal("promtool is not installed (scripts/deps.sh installs it)")
	}
	t.Skip("promtool is not installed: skipping (scripts/deps.sh installs it)")
	return ""
}

// Prometheus returns the path of the Prometheus server binary (Debian's `prometheus`, the package that also ships
// promtool), for tests that run a real Prometheus.
func Prometheus(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("prometheus"); err == nil {
		return p
	}
	Missing(t, "the Prometheus server (`prometheus`) is not installed")
	return ""
}

// Missing reports that something a test needs is not installed: a failure under `make test` or CI, a skip otherwise.
func Missing(t testing.TB, what string) {
	t.Helper()
	if required() {
		t.Fatalf("%s (scripts/deps.sh installs it)", what)
	}
	t.Skip(what + ": skipping")
}
