package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/leadthrough/leadthrough/metrics"
)

// shutdownTimeout bounds how long the metrics server waits for requests in flight when the process stops.
const shutdownTimeout = 5 * time.Second

// supervisor runs the long-lived components of one process (the metrics server, the ingest worker, the indicator
// refresher) the errgroup way: the first component that stops, with an error or without one, stops the others;
// Wait and Stop wait for all of them and return the first failure. What the components share (the store, the
// embedded broker) the command closes after that, in reverse order of opening, so nothing is closed under a
// component that still runs. `ingest`, `serve` (with or without --ingest) and `demo` all go through it.
type supervisor struct {
	ctx    context.Context
	cancel context.CancelFunc
	log    *slog.Logger
	wg     sync.WaitGroup

	mu     sync.Mutex
	failed error // the first component that stopped, and why
}

// supervise returns a supervisor whose components stop when ctx is done (SIGINT or SIGTERM) or one of them stops.
func supervise(ctx context.Context, log *slog.Logger) *supervisor {
	ctx, cancel := context.WithCancel(ctx)
	return &supervisor{ctx: ctx, cancel: cancel, log: log}
}

// Context is done when the process is asked to stop or a component stopped. The steps that run between components
// (waiting for a service, a first refresh) run under it, so a failing component interrupts them too.
func (s *supervisor) Context() context.Context { return s.ctx }

// Go runs a component until Context is done. A component that returns before, even with a nil error, has failed:
// the others are stopped and the process exits non-zero with the reason.
func (s *supervisor) Go(name string, run func(ctx context.Context) error) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		err := run(s.ctx)
		stopping := s.ctx.Err() != nil
		switch {
		case stopping && (err == nil || errors.Is(err, context.Canceled)):
			return
		case err == nil:
			err = errors.New("stopped unexpectedly")
		}
		s.fail(fmt.Errorf("%s: %w", name, err))
	}()
}

func (s *supervisor) fail(err error) {
	s.mu.Lock()
	first := s.failed == nil
	if first {
		s.failed = err
	}
	s.mu.Unlock()
	if first {
		s.log.Error("stopping: a component failed", "err", err)
	}
	s.cancel()
}

// Serve starts srv, failing at once when its address is in use, and runs it as a component that shuts down when
// the others stop.
func (s *supervisor) Serve(srv *metrics.Server) error {
	if err := srv.Start(); err != nil {
		return err
	}
	s.Go("metrics server", func(ctx context.Context) error {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		if err := srv.Shutdown(shutdownCtx); err != nil {
			s.log.Warn("stopping the metrics server", "err", err)
		}
		return nil
	})
	return nil
}

// Healthy is nil while every component runs, and the first failure once one has stopped: /healthz reports it.
func (s *supervisor) Healthy() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed
}

// Stop stops every component, waits for them, and returns the first failure, else err. A step that was
// interrupted because a component failed thus reports the component's reason, not its own context error.
func (s *supervisor) Stop(err error) error {
	s.cancel()
	s.wg.Wait()
	if failed := s.Healthy(); failed != nil {
		return failed
	}
	return err
}

// Wait blocks until the process is asked to stop or a component stops, then stops and waits for them all. It
// returns the first failure, or nil when the process was asked to stop.
func (s *supervisor) Wait() error {
	<-s.ctx.Done()
	return s.Stop(nil)
}

// allHealthy is a /healthz check: the first error of checks, in order.
func allHealthy(checks ...func() error) func() error {
	return func() error {
		for _, check := range checks {
			if err := check(); err != nil {
				return err
			}
		}
		return nil
	}
}
