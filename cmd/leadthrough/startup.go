package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/leadthrough/leadthrough/kafkaconn"
	"github.com/leadthrough/leadthrough/store"
)

// Backoff between two attempts to reach a service at startup: firstBackoff, doubling up to --startup-backoff-max.
const (
	firstBackoff      = 500 * time.Millisecond
	defaultMaxBackoff = 30 * time.Second
)

// startupFlags is --startup-backoff-max, of the daemons that wait for their services.
func startupFlags(c *command) *time.Duration {
	maxBackoff := defaultMaxBackoff
	c.Func("startup-backoff-max", defaultMaxBackoff.String(), "longest pause between two attempts to reach ClickHouse "+
		"or Kafka at startup (the first pause is 0.5s, then each doubles); the process waits until they answer or it is "+
		"stopped, and /healthz answers 503 with what it waits for", func(s string) error {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return fmt.Errorf("want a positive duration like 30s, got %q", s)
		}
		maxBackoff = d
		return nil
	})
	return &maxBackoff
}

// startup is how a daemon (ingest, serve) waits for ClickHouse and Kafka: it retries with capped exponential backoff
// while a service cannot be reached, warning at each attempt, rather than exiting into a restart loop; an error that
// retrying cannot cure (a wrong password, a certificate that does not verify, a database not migrated) ends the
// wait at once. Healthy says what it waits for, for /healthz.
type startup struct {
	first, max time.Duration
	log        *slog.Logger

	mu      sync.Mutex
	waiting error        // why the process is not ready; nil once Ready
	ready   func() error // the health check once Ready
}

func newStartup(maxBackoff time.Duration, log *slog.Logger) *startup {
	return &startup{first: min(firstBackoff, maxBackoff), max: maxBackoff, log: log, waiting: errors.New("starting")}
}

// Healthy is the reason the process is not ready yet, then the check given to Ready.
func (s *startup) Healthy() error {
	s.mu.Lock()
	waiting, ready := s.waiting, s.ready
	s.mu.Unlock()
	if waiting != nil || ready == nil {
		return waiting
	}
	return ready()
}

// Ready ends the startup: from now on Healthy is check (nil: always healthy).
func (s *startup) Ready(check func() error) {
	s.mu.Lock()
	s.waiting, s.ready = nil, check
	s.mu.Unlock()
}

// ClickHouse opens the migrated database, waiting while ClickHouse cannot be reached (store.ErrUnreachable).
func (s *startup) ClickHouse(ctx context.Context, cfg store.Config) (*store.Store, error) {
	var st *store.Store
	err := s.waitFor(ctx, "ClickHouse at "+cfg.Addr, func(ctx context.Context) (err error) {
		st, err = openMigrated(ctx, cfg)
		return err
	}, func(err error) bool { return errors.Is(err, store.ErrUnreachable) })
	return st, err
}

// Kafka waits until one of brokers answers as conn says (TLS, SASL); a failure that retrying cannot cure
// (kafkaconn.Permanent: a refused login, a certificate that does not verify) ends the wait.
func (s *startup) Kafka(ctx context.Context, conn kafkaconn.Config, brokers []string) error {
	return s.waitFor(ctx, "Kafka at "+strings.Join(brokers, ","), func(ctx context.Context) error {
		return conn.Check(ctx, brokers)
	}, func(err error) bool { return !kafkaconn.Permanent(err) })
}

// waitFor calls try until it succeeds, fails in a way transient does not accept, or ctx is done (it returns
// ctx.Err() then).
func (s *startup) waitFor(ctx context.Context, service string, try func(context.Context) error, transient func(error) bool) error {
	s.setWaiting(fmt.Errorf("waiting for %s", service))
	delay := s.first
	for attempt := 1; ; attempt++ {
		err := try(ctx)
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case !transient(err):
			return err
		}
		s.setWaiting(fmt.Errorf("waiting for %s (attempt %d): %w", service, attempt, err))
		s.log.Warn("waiting for "+service, "attempt", attempt, "retry_in", delay, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, s.max)
	}
}

func (s *startup) setWaiting(err error) {
	s.mu.Lock()
	s.waiting = err
	s.mu.Unlock()
}
