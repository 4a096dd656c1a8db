// Package testenv gives tests the addresses of the real services that `make test` starts (ClickHouse, Apache Kafka,
// promtool). A plain `go test ./...` without them skips those tests and says so; under `make test` or CI
// (LEADTHROUGH_REQUIRE_SERVICES=1 or CI=true) a missing service fails the test instead, so a green run can never
// hide a skipped integration test.
package testenv

import (
	"os"
	"os/exec"
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

// Missing reports that something a test needs is not installed: a failure under `make test` or CI, a skip otherwise.
func Missing(t testing.TB, what string) {
	t.Helper()
	if required() {
		t.Fatalf("%s (scripts/deps.sh installs it)", what)
	}
	t.Skip(what + ": skipping")
}
