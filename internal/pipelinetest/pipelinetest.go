// Package pipelinetest sets up the real services for end-to-end tests: a fresh ClickHouse database of its own (dropped
// when the test ends), unique Kafka topic and group names, an ingest worker writing into that database, and the
// helpers to wait for what it stored and to read what it dead-lettered. The services' addresses come from
// internal/testenv, so a test without them skips or fails as testenv decides.
//
// It must only be imported by tests.
package pipelinetest

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/leadthrough/leadthrough/event"
	"github.com/leadthrough/leadthrough/indicator"
	"github.com/leadthrough/leadthrough/ingest"
	"github.com/leadthrough/leadthrough/ingest/chsink"
	"github.com/leadthrough/leadthrough/internal/testenv"
	"github.com/leadthrough/leadthrough/publish"
	"github.com/leadthrough/leadthrough/store"
)

// Poll is how often WaitStored and WaitFor count, and the FlushInterval Ingest gives a worker that sets none.
const Poll = 200 * time.Millisecond

// quiet discards the logs of migrations and ingest workers.
var quiet = slog.New(slog.DiscardHandler)

// Env is one end-to-end test's share of the real services.
type Env struct {
	Kafka      string // bootstrap address of the real Kafka broker
	ClickHouse string // native-protocol address of the real ClickHouse server
	Database   string // "lt_<name>_<Suffix>", dropped when the test ends
	Suffix     string // unique to this Env: see Name
	// Store is open on Database: set by New and Open, closed when the test ends.
	Store *store.Store
}

// Reserve returns an Env whose Database is not created yet: for a test in which the code under test creates it
// (leadthrough migrate, for one). Whatever creates it, the database is dropped when the test ends. Store is nil
// until Open.
func Reserve(t testing.TB, name string) *Env {
	t.Helper()
	e := &Env{Kafka: testenv.Kafka(t), ClickHouse: testenv.ClickHouse(t), Suffix: fmt.Sprint(time.Now().UnixNano())}
	e.Database = "lt_" + name + "_" + e.Suffix
	t.Cleanup(func() { DropDatabase(t, e.ClickHouse, e.Database) })
	return e
}

// New returns an Env with its Database created, migrated and open in Store; both are undone when the test ends.
func New(t testing.TB, name string) *Env {
	t.Helper()
	e := Reserve(t, name)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := store.CreateDatabase(ctx, e.config()); err != nil {
		t.Fatal(err)
	}
	e.Open(t)
	if _, err := e.Store.Migrate(ctx, quiet); err != nil {
		t.Fatal(err)
	}
	return e
}

// Open opens Store on Database, which must exist, and closes it when the test ends.
func (e *Env) Open(t testing.TB) {
	t.Helper()
	s, err := store.Open(t.Context(), e.config())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	e.Store = s
}

func (e *Env) config() store.Config { return store.Config{Addr: e.ClickHouse, Database: e.Database} }

// Name is prefix followed by the Env's suffix: a topic or consumer group name no other run uses.
func (e *Env) Name(prefix string) string { return prefix + e.Suffix }

// PublishRaw produces msgs to topic on the Env's Kafka as they are, and fails the test if that fails.
func (e *Env) PublishRaw(ctx context.Context, t testing.TB, topic string, msgs []kafka.Message) {
	t.Helper()
	if err := publish.Raw(ctx, publish.Config{Brokers: []string{e.Kafka}, Topic: topic}, msgs); err != nil {
		t.Fatal(err)
	}
}

// PublishEvents produces evs to topic on the Env's Kafka as CloudEvents, and fails the test if that fails.
func (e *Env) PublishEvents(ctx context.Context, t testing.TB, topic string, evs []event.Event) {
	t.Helper()
	if err := publish.Events(ctx, publish.Config{Brokers: []string{e.Kafka}, Topic: topic}, evs); err != nil {
		t.Fatal(err)
	}
}

// Indicators returns Store's indicator rows for p, and fails the test if it cannot compute them.
func (e *Env) Indicators(ctx context.Context, t testing.TB, p indicator.Params) []indicator.Row {
	t.Helper()
	rows, err := e.Store.Indicators(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// DropDatabase drops db through a connection to the "default" database at addr. It only logs a failure: it is meant
// for a test's cleanup.
func DropDatabase(t testing.TB, addr, db string) {
	t.Helper()
	admin, err := store.Open(context.Background(), store.Config{Addr: addr, Database: "default"})
	if err != nil {
		t.Log(err)
		return
	}
	defer admin.Close()
	if err := admin.DropDatabase(context.Background(), db); err != nil {
		t.Log(err)
	}
}

// Worker is an ingest worker running in its own goroutine for one test.
type Worker struct {
	env    *Env
	cancel context.CancelFunc
	done   chan struct{} // closed when the worker has returned; err is then set
	err    error
}

// Ingest starts ingest.Run(cfg) into Store. Empty fields of cfg are filled in: Brokers with the Env's Kafka, GroupID
// with a name unique to the Env, FlushInterval with Poll, Logger with one that discards everything.
func (e *Env) Ingest(ctx context.Context, t testing.TB, cfg ingest.Config) *Worker {
	t.Helper()
	if e.Store == nil {
		t.Fatal("pipelinetest: Ingest needs Store (use New, or Open after creating the database)")
	}
	if len(cfg.Brokers) == 0 {
		cfg.Brokers = []string{e.Kafka}
	}
	if cfg.GroupID == "" {
		cfg.GroupID = e.Name("e2e-ingest-")
	}
	if cfg.FlushInterval == 0 {
		cfg.FlushInterval = Poll
	}
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	sink := chsink.New(e.Store)
	return e.Start(ctx, t, func(ctx context.Context) error { return ingest.Run(ctx, cfg, sink) })
}

// Start runs run(ctx) in a goroutine as the Env's ingest worker: for a test that ingests some other way than Ingest
// (through the command line, say). run must return when its context is cancelled. The worker is stopped, if Stop
// has not done it, when the test ends, before the database is dropped.
func (e *Env) Start(ctx context.Context, t testing.TB, run func(context.Context) error) *Worker {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	w := &Worker{env: e, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		w.err = run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-w.done
	})
	return w
}

// WaitStored waits until Store holds exactly want distinct events. It fails the test when it holds more, when the
// worker stops first, or when ctx ends.
func (w *Worker) WaitStored(ctx context.Context, t testing.TB, want uint64) {
	t.Helper()
	if w.env.Store == nil {
		t.Fatal("pipelinetest: WaitStored needs Store (use New, or Open after creating the database)")
	}
	w.WaitFor(ctx, t, "distinct events stored", want, w.env.Store.CountEvents)
}

// WaitFor polls count every Poll until it returns want. It fails the test when count fails or exceeds want (what
// the worker stores is deduplicated, so more is never a matter of time), when the worker stops first, or when ctx
// ends. what names the count in the messages, e.g. "distinct events stored".
func (w *Worker) WaitFor(ctx context.Context, t testing.TB, what string, want uint64,
	count func(context.Context) (uint64, error)) {
	t.Helper()
	for {
		n, err := count(ctx)
		if err != nil {
			t.Fatalf("counting %s: %v", what, err)
		}
		if n == want {
			return
		}
		if n > want {
			t.Fatalf("%d %s, want %d: more than the scenario yields, so a redelivered or retried message, or a "+
				"fan-out, was not deduplicated", n, what, want)
		}
		select {
		case <-w.done:
			t.Fatalf("ingest stopped early, with %d of %d %s: %v", n, want, what, w.err)
		case <-ctx.Done():
			t.Fatalf("timed out with %d of %d %s", n, want, what)
		case <-time.After(Poll):
		}
	}
}

// Stop cancels the worker, waits for it to return and fails the test if it returned an error.
func (w *Worker) Stop(t testing.TB) {
	t.Helper()
	w.cancel()
	<-w.done
	if w.err != nil {
		t.Fatalf("ingest: %v", w.err)
	}
}

// ReadMessages reads n messages from topic (a dead-letter topic, say) at addr, from the first offset of every
// partition, in a consumer group of its own. It fails the test if they do not all come within a minute.
func ReadMessages(t testing.TB, ctx context.Context, addr, topic string, n int) []kafka.Message {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{addr}, Topic: topic,
		GroupID: "e2e-dlq-" + fmt.Sprint(time.Now().UnixNano()), StartOffset: kafka.FirstOffset, MaxWait: Poll})
	defer r.Close()
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var out []kafka.Message
	for len(out) < n {
		m, err := r.ReadMessage(rctx)
		if err != nil {
			t.Fatalf("read %s: got %d of %d messages: %v", topic, len(out), n, err)
		}
		out = append(out, m)
	}
	return out
}

// Headers returns m's headers as a map from key to value (the last one of a repeated key).
func Headers(m kafka.Message) map[string]string {
	h := map[string]string{}
	for _, x := range m.Headers {
		h[x.Key] = string(x.Value)
	}
	return h
}

// Near reports whether p is set and within 1e-9 of v.
func Near(p *float64, v float64) bool { return p != nil && math.Abs(*p-v) < 1e-9 }

// Show prints p's value, or "null" for nil.
func Show(p *float64) string {
	if p == nil {
		return "null"
	}
	return fmt.Sprint(*p)
}
