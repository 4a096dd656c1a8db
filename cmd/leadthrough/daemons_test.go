package main

import (
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/leadthrough/leadthrough/internal/pipelinetest"
)

// freeAddr is a loopback address nothing listens on (until a test starts something there).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestServeStopsWhenItsIngestWorkerFails: under serve --ingest, an ingest worker that fails (here: a topic listed
// twice) stops the process at once, non-zero, with the reason.
func TestServeStopsWhenItsIngestWorkerFails(t *testing.T) {
	env := pipelinetest.New(t, "supervise")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	topic := env.Name("supervise.")
	err := waitOrFail(t, 30*time.Second, func() error {
		return runServe(ctx, []string{"--ingest", "--topic", topic, "--topic", topic, "--group", env.Name("supervise-"),
			"--brokers", env.Kafka, "--clickhouse-addr", env.ClickHouse, "--clickhouse-database", env.Database,
			"--listen", freeAddr(t), "--log-level", "error"}, io.Discard, io.Discard)
	})
	if err == nil || !strings.Contains(err.Error(), "ingest worker: ") || !strings.Contains(err.Error(), "listed twice") {
		t.Errorf("serve --ingest returned %v, want the ingest worker's failure", err)
	}
}
