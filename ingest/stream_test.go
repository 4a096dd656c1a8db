package ingest_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/leadthrough/leadthrough/ingest"
)

// streamSink is an in-memory StreamingSink: a unit's events are stored only when its Close succeeds. closeFails,
// if set, decides each Close (counted from 1); it runs without the lock so it may block.
type streamSink struct {
	closeFails func(attempt int) error

	mu      sync.Mutex
	closing []int // events in each stream, as its Close began
	closes  int
	writes  int            // batches written to streams
	written int            // events written to streams, stored or not
	stored  map[string]int // source/id → times stored
}

func newStreamSink() *streamSink { return &streamSink{stored: map[string]int{}} }

func (s *streamSink) Write(context.Context, []ingest.Record) error {
	return errors.New("a streaming sink is written through streams")
}

func (s *streamSink) Prepare() ingest.Prepared { return &memPrepared{} }

func (s *streamSink) OpenStream(context.Context) (ingest.Stream, bool, error) {
	return &memStream{sink: s}, true, nil
}

func (s *streamSink) batchesWritten() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes
}

func (s *streamSink) snapshot() (closes, written int, stored map[string]int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	stored = make(map[string]int, len(s.stored))
	for k, v := range s.stored {
		stored[k] = v
	}
	return s.closes, s.written, stored
}

type memPrepared struct{ records []ingest.Record }

func (p *memPrepared) Add(rs []ingest.Record) { p.records = append(p.records, rs...) }
func (p *memPrepared) Seal()                  {}
func (p *memPrepared) Send(context.Context) error {
	return errors.New("a streaming sink is written through streams")
}
func (p *memPrepared) Close() { p.records = nil }

type memStream struct {
	sink    *streamSink
	pending []string
}

func (st *memStream) Write(p ingest.Prepared) error {
	for _, r := range p.(*memPrepared).records {
		st.pending = append(st.pending, r.Event.Source+"/"+r.Event.ID)
	}
	st.sink.mu.Lock()
	st.sink.writes++
	st.sink.written += len(p.(*memPrepared).records)
	st.sink.mu.Unlock()
	return nil
}

func (st *memStream) Close() error {
	s := st.sink
	s.mu.Lock()
	s.closes++
	s.closing = append(s.closing, len(st.pending))
	attempt := s.closes
	s.mu.Unlock()
	if s.closeFails != nil {
		if err := s.closeFails(attempt); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range st.pending {
		s.stored[id]++
	}
	return nil
}

func (st *memStream) Abort() {}

// TestAFailedUnitIsReadAgainFromTheCommittedOffsets: when the sink fails to close a unit, nothing of it is
// committed; the worker reads it again from the committed offsets, and in the end every event is stored exactly
// once and every offset is committed.
func TestAFailedUnitIsReadAgainFromTheCommittedOffsets(t *testing.T) {
	const n = 3000
	addr, topic, cfg := backlog(t, 3, n)
	cfg.BatchSize = 200 // several batches per unit
	reg := prometheus.NewPedanticRegistry()
	cfg.Metrics = ingest.NewMetrics(reg)
	sink := newStreamSink()
	sink.closeFails = func(attempt int) error {
		if attempt <= 2 {
			return errSinkDown
		}
		return nil
	}
	stop := runWorker(t, cfg, sink)
	waitFor(t, 60*time.Second, "every offset committed", func() bool { return allCommitted(t, addr, cfg.GroupID, topic) })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	closes, written, stored := sink.snapshot()
	if closes < 3 {
		t.Fatalf("%d closes, want at least 3 (two failed)", closes)
	}
	if written <= n {
		t.Errorf("%d events written to streams, want more than %d: the failed units were not read again", written, n)
	}
	for _, id := range ids(0, n) {
		if stored[id] != 1 {
			t.Fatalf("%s stored %d times, want once", id, stored[id])
		}
	}
	if len(stored) != n {
		t.Fatalf("%d events stored, want %d", len(stored), n)
	}
	if r, e := value(t, reg, "leadthrough_ingest_rereads_total"), value(t, reg, "leadthrough_ingest_write_errors_total"); r != 2 || e != 2 {
		t.Errorf("rereads_total %v and write_errors_total %v, want 2 each", r, e)
	}
}

// TestAUnitsOffsetsAreCommittedOnlyOnceItIsClosed: while the sink holds the first unit's Close back, none of its
// offsets is committed, though its batches were written, and neither are those of the unit after it, which is
// written meanwhile (units close in the background, but commit in order).
func TestAUnitsOffsetsAreCommittedOnlyOnceItIsClosed(t *testing.T) {
	const n = 500
	addr, topic, cfg := backlog(t, 2, n)
	cfg.BatchSize = 100
	release := make(chan struct{})
	sink := newStreamSink()
	sink.closeFails = func(attempt int) error {
		if attempt == 1 {
			<-release
		}
		return nil
	}
	stop := runWorker(t, cfg, sink)
	defer stop()
	waitFor(t, 30*time.Second, "the first unit closing", func() bool {
		closes, written, _ := sink.snapshot()
		return closes == 1 && written > 0
	})
	produce(t, addr, topic, goodEvents(t, n, n)...)
	waitFor(t, 30*time.Second, "the next unit written", func() bool {
		_, written, _ := sink.snapshot()
		sink.mu.Lock()
		defer sink.mu.Unlock()
		return written > sink.closing[0]
	})
	time.Sleep(300 * time.Millisecond)
	if !noneCommitted(t, addr, cfg.GroupID, topic) {
		t.Fatal("offsets committed before the unit holding them was closed")
	}
	close(release)
	waitFor(t, 30*time.Second, "every offset committed", func() bool { return allCommitted(t, addr, cfg.GroupID, topic) })
	if _, _, stored := sink.snapshot(); len(stored) != 2*n {
		t.Fatalf("%d events stored, want %d", len(stored), 2*n)
	}
}

// TestTheEndOfABacklogIsWrittenOnceCaughtUp: after full batches, the last partial batch of a backlog is written
// and committed as soon as the worker has read every partition to its end, not FlushInterval later; an empty
// partition (the events have 7 keys, the topic 8 partitions) counts as read to its end once a fetch found nothing.
func TestTheEndOfABacklogIsWrittenOnceCaughtUp(t *testing.T) {
	const n = 1050 // ten full batches and a partial one
	addr, topic, cfg := backlog(t, 8, n)
	cfg.BatchSize = 100
	cfg.FlushInterval = time.Hour // never the reason a batch is cut here
	sink := newStreamSink()
	stop := runWorker(t, cfg, sink)
	defer stop()
	waitFor(t, 30*time.Second, "every offset committed", func() bool { return allCommitted(t, addr, cfg.GroupID, topic) })
	if _, _, stored := sink.snapshot(); len(stored) != n {
		t.Fatalf("%d events stored, want %d", len(stored), n)
	}
}

// TestATrickleIsStillBatchedByFlushInterval: a worker that keeps up with a topic is caught up after every message;
// without a backlog before them, messages arriving one by one still wait FlushInterval for company, so they are
// written as one batch, not one batch each.
func TestATrickleIsStillBatchedByFlushInterval(t *testing.T) {
	addr := embedded(t)
	topic := unique(t, "topic")
	createTopic(t, addr, topic, 1)
	cfg := config(t, addr, topic)
	cfg.BatchSize = 100
	cfg.FlushInterval = 3 * time.Second
	sink := newStreamSink()
	stop := runWorker(t, cfg, sink)
	defer stop()
	produce(t, addr, topic, goodEvent(t, 0))
	waitFor(t, 30*time.Second, "the first message committed", func() bool { return allCommitted(t, addr, cfg.GroupID, topic) })
	const n = 5
	for i := 1; i <= n; i++ {
		produce(t, addr, topic, goodEvent(t, i))
		time.Sleep(50 * time.Millisecond)
	}
	waitFor(t, 30*time.Second, "every offset committed", func() bool { return allCommitted(t, addr, cfg.GroupID, topic) })
	if got := sink.batchesWritten(); got != 2 {
		t.Fatalf("%d batches written, want 2 (the first message, then the %d that trickled in within FlushInterval)", got, n)
	}
	if _, _, stored := sink.snapshot(); len(stored) != n+1 {
		t.Fatalf("%d events stored, want %d", len(stored), n+1)
	}
}
