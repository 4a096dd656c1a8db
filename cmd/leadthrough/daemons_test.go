package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/leadthrough/leadthrough/internal/pipelinetest"
	"github.com/leadthrough/leadthrough/internal/testenv"
)

// startMain runs `leadthrough args…` in a child process (the test binary, through TestLeadthroughProcess); its
// stderr goes to the returned buffer.
func startMain(t *testing.T, args ...string) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^TestLeadthroughProcess$", "--"}, args...)...)
	cmd.Env = append(os.Environ(), "LEADTHROUGH_TEST_PROCESS=1")
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd, &stderr
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

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

// proxy forwards the connections it accepts on addr to target, until the test ends: a service that "comes up" at
// addr.
func proxy(t *testing.T, addr, target string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, in, out)
			mu.Unlock()
			go func() { io.Copy(out, in); out.Close() }()
			go func() { io.Copy(in, out); in.Close() }()
		}
	}()
}

// waitHealthz polls http://addr/healthz until it answers code with a body containing want.
func waitHealthz(t *testing.T, addr string, code int, want string) {
	t.Helper()
	client := &http.Client{Timeout: time.Second}
	var got string
	for deadline := time.Now().Add(45 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		resp, err := client.Get("http://" + addr + "/healthz")
		if err != nil {
			got = err.Error()
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got = resp.Status + " " + string(body)
		if resp.StatusCode == code && strings.Contains(string(body), want) {
			return
		}
	}
	t.Fatalf("/healthz never answered %d with %q; last answer: %s", code, want, got)
}

// TestDaemonsWaitForTheirServicesAndSayWhyOnHealthz starts ingest and serve while their ClickHouse and Kafka
// addresses have nothing behind them, checks that they keep waiting with /healthz answering 503 and the reason,
// then brings each service up (a proxy to the real one) and checks that they become ready.
func TestDaemonsWaitForTheirServicesAndSayWhyOnHealthz(t *testing.T) {
	env := pipelinetest.New(t, "startup")
	tests := []struct {
		name     string
		run      func(ctx context.Context, args []string, stdout, stderr io.Writer) error
		args     []string
		services []string // in the order they are waited for
	}{
		{"ingest", runIngest, []string{"--topic", env.Name("startup."), "--group", env.Name("startup-")},
			[]string{"ClickHouse", "Kafka"}},
		{"serve", runServe, []string{"--refresh-interval", "1s"}, []string{"ClickHouse"}},
		{"serve --ingest", runServe, []string{"--ingest", "--topic", env.Name("startup-serve."), "--group",
			env.Name("startup-serve-")}, []string{"ClickHouse", "Kafka"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := map[string]string{"ClickHouse": freeAddr(t), "Kafka": freeAddr(t)}
			real := map[string]string{"ClickHouse": env.ClickHouse, "Kafka": env.Kafka}
			listen := freeAddr(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() {
				done <- tt.run(ctx, append(tt.args, "--clickhouse-addr", addr["ClickHouse"], "--clickhouse-database",
					env.Database, "--brokers", addr["Kafka"], "--listen", listen, "--startup-backoff-max", "200ms",
					"--log-level", "error"), io.Discard, io.Discard)
			}()
			for _, service := range tt.services {
				waitHealthz(t, listen, http.StatusServiceUnavailable, "waiting for "+service+" at "+addr[service])
				time.Sleep(500 * time.Millisecond) // still waiting, not exited
				select {
				case err := <-done:
					t.Fatalf("%s returned while waiting for %s: %v", tt.name, service, err)
				default:
				}
				proxy(t, addr[service], real[service])
			}
			waitHealthz(t, listen, http.StatusOK, "ok")
			cancel()
			if err := waitOrFail(t, 30*time.Second, func() error { return <-done }); err != nil {
				t.Errorf("%s after it was asked to stop: %v", tt.name, err)
			}
		})
	}
}

// TestSignalWhileWaitingForClickHouseExitsPromptlyWithZero sends SIGTERM or SIGINT to an ingest worker waiting for a
// ClickHouse that is not there.
func TestSignalWhileWaitingForClickHouseExitsPromptlyWithZero(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			listen := freeAddr(t)
			cmd, stderr := startMain(t, "ingest", "--clickhouse-addr", freeAddr(t), "--brokers", freeAddr(t),
				"--listen", listen, "--startup-backoff-max", "10s")
			waitHealthz(t, listen, http.StatusServiceUnavailable, "waiting for ClickHouse")
			start := time.Now()
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			err := waitOrFail(t, 5*time.Second, cmd.Wait)
			if took := time.Since(start); err != nil || took > 2*time.Second {
				t.Errorf("exit %v after %s, want 0 within 2s; stderr:\n%s", err, took, stderr)
			}
			if !strings.Contains(stderr.String(), "level=WARN msg=\"waiting for ClickHouse at ") {
				t.Errorf("no warning per attempt in stderr:\n%s", stderr)
			}
		})
	}
}

// TestWrongClickHousePasswordEndsTheWaitWithOneLine: retrying cannot cure a refused login, so a worker exits 1 with
// the reason at once, without the password.
func TestWrongClickHousePasswordEndsTheWaitWithOneLine(t *testing.T) {
	ch := testenv.ClickHouse(t)
	var stderr bytes.Buffer
	code := waitOrFail(t, 30*time.Second, func() int {
		return run([]string{"ingest", "--clickhouse-addr", ch, "--clickhouse-password", "not-the-password", "--listen", "",
			"--brokers", freeAddr(t), "--log-level", "error"}, io.Discard, &stderr)
	})
	msg := strings.TrimSpace(stderr.String())
	if code != 1 || strings.Contains(msg, "\n") || !strings.Contains(msg, "ClickHouse at "+ch+": authentication failed") ||
		strings.Contains(msg, "not-the-password") || strings.Contains(msg, "migrate") {
		t.Errorf("exit code %d, stderr %q: want 1 and one line saying ClickHouse refused the login, without the "+
			"password or a hint about migrations", code, msg)
	}
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
