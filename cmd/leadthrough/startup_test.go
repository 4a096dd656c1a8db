package main

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/leadthrough/leadthrough/kafkaconn"
)

func TestStartupRetriesOnlyWhatRetryingCanCure(t *testing.T) {
	unreachable, refused := errors.New("connection refused"), errors.New("authentication failed")
	tests := []struct {
		name     string
		errs     []error // one per attempt; then success
		want     error
		attempts int
	}{
		{"succeeds at once", nil, nil, 1},
		{"retries while unreachable", []error{unreachable, unreachable}, nil, 3},
		{"a permanent error ends the wait", []error{unreachable, refused}, refused, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newStartup(time.Millisecond, quietLog)
			attempts := 0
			var seen []string
			err := st.waitFor(context.Background(), "ClickHouse at ch:9000", func(context.Context) error {
				if h := st.Healthy(); h != nil {
					seen = append(seen, h.Error())
				}
				attempts++
				if attempts <= len(tt.errs) {
					return tt.errs[attempts-1]
				}
				return nil
			}, func(err error) bool { return err == unreachable })
			if err != tt.want || attempts != tt.attempts {
				t.Errorf("got %v after %d attempts, want %v after %d", err, attempts, tt.want, tt.attempts)
			}
			if seen[0] != "waiting for ClickHouse at ch:9000" {
				t.Errorf("/healthz before the first attempt: %q", seen[0])
			}
			if len(seen) > 1 && seen[1] != "waiting for ClickHouse at ch:9000 (attempt 1): connection refused" {
				t.Errorf("/healthz after a failed attempt: %q", seen[1])
			}
		})
	}
}

func TestStartupIsUnhealthyUntilReadyThenAsked(t *testing.T) {
	st := newStartup(time.Second, quietLog)
	if err := st.Healthy(); err == nil || err.Error() != "starting" {
		t.Errorf("before any step: %v, want starting", err)
	}
	stale := errors.New("indicators are stale")
	st.Ready(func() error { return stale })
	if err := st.Healthy(); err != stale {
		t.Errorf("once ready: %v, want the check's answer", err)
	}
	st.Ready(nil)
	if err := st.Healthy(); err != nil {
		t.Errorf("ready without a check: %v", err)
	}
}

func TestStartupStopsWaitingWhenAskedTo(t *testing.T) {
	st := newStartup(time.Hour, quietLog)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	err := waitOrFail(t, 5*time.Second, func() error {
		return st.waitFor(ctx, "Kafka at k:9092", func(context.Context) error { return errors.New("refused") },
			func(error) bool { return true })
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
}

func TestStartupStopsWaitingForAKafkaWhoseCertificateDoesNotVerify(t *testing.T) {
	srv := httptest.NewTLSServer(http.NotFoundHandler()) // its certificate is signed by no CA the system trusts
	defer srv.Close()
	addr := srv.Listener.Addr().String()
	st := newStartup(time.Millisecond, quietLog)
	err := waitOrFail(t, 30*time.Second, func() error {
		return st.Kafka(context.Background(), kafkaconn.Config{TLS: &tls.Config{}}, []string{addr})
	})
	if !kafkaconn.Permanent(err) || !strings.Contains(err.Error(), "Kafka at "+addr) {
		t.Errorf("got %v, want at once a permanent error naming Kafka at %s", err, addr)
	}
}
