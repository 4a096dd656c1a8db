package main

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

var quietLog = slog.New(slog.DiscardHandler)

// waitOrFail runs f and fails the test when it does not return within d.
func waitOrFail[T any](t *testing.T, d time.Duration, f func() T) T {
	t.Helper()
	done := make(chan T, 1)
	go func() { done <- f() }()
	select {
	case v := <-done:
		return v
	case <-time.After(d):
		t.Fatalf("still running after %s", d)
		panic("unreachable")
	}
}

func TestFirstFailingComponentStopsTheOthersWhichAreWaitedFor(t *testing.T) {
	sup := supervise(context.Background(), quietLog)
	var stopped atomic.Int32
	for _, name := range []string{"a", "b"} {
		sup.Go(name, func(ctx context.Context) error {
			<-ctx.Done()
			time.Sleep(50 * time.Millisecond) // a slow stop must still be waited for
			stopped.Add(1)
			return nil
		})
	}
	if err := sup.Healthy(); err != nil {
		t.Fatalf("healthy while running: %v", err)
	}
	boom := errors.New("boom")
	sup.Go("ingest worker", func(context.Context) error { return boom })
	err := waitOrFail(t, 5*time.Second, sup.Wait)
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "ingest worker: boom") {
		t.Errorf("Wait: %v, want the failing component's name and error", err)
	}
	if n := stopped.Load(); n != 2 {
		t.Errorf("%d of 2 other components had stopped when Wait returned", n)
	}
	if err := sup.Healthy(); !errors.Is(err, boom) {
		t.Errorf("Healthy after the failure: %v, want it (/healthz answers 503 with it)", err)
	}
}

func TestComponentThatReturnsEarlyWithoutAnErrorHasFailed(t *testing.T) {
	sup := supervise(context.Background(), quietLog)
	sup.Go("indicator refresher", func(context.Context) error { return nil })
	err := waitOrFail(t, 5*time.Second, sup.Wait)
	if err == nil || !strings.Contains(err.Error(), "indicator refresher: stopped unexpectedly") {
		t.Errorf("Wait: %v, want indicator refresher: stopped unexpectedly", err)
	}
}

func TestAskedToStopIsNotAFailure(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	sup := supervise(ctx, quietLog)
	sup.Go("ingest worker", func(ctx context.Context) error { <-ctx.Done(); return nil })
	sup.Go("metrics server", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })
	cancel()
	if err := waitOrFail(t, 5*time.Second, sup.Wait); err != nil {
		t.Errorf("Wait after the process was asked to stop: %v, want nil", err)
	}
	if err := sup.Healthy(); err != nil {
		t.Errorf("Healthy: %v, want nil", err)
	}
}

func TestStopReportsTheFailureThatInterruptedAStartupStep(t *testing.T) {
	sup := supervise(context.Background(), quietLog)
	sup.Go("ingest worker", func(context.Context) error { return errors.New(`topic "a" is listed twice`) })
	<-sup.Context().Done() // a startup step, say waiting for the first refresh, is interrupted
	err := sup.Stop(sup.Context().Err())
	if err == nil || !strings.Contains(err.Error(), "listed twice") {
		t.Errorf("Stop: %v, want the component's reason rather than the step's context error", err)
	}
	step := errors.New("database not migrated")
	if err := supervise(context.Background(), quietLog).Stop(step); err != step {
		t.Errorf("Stop with no failed component: %v, want the step's error", err)
	}
}
