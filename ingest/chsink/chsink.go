// Package chsink connects the ingest worker to ClickHouse: it implements ingest.Sink on top of store.Store, so that
// neither the worker nor the store knows the other.
package chsink

import (
	"context"
	"sync"

	"github.com/leadthrough/leadthrough/ingest"
	"github.com/leadthrough/leadthrough/store"
)

// Sink writes ingest batches to ClickHouse, each event into its type's table (store.EventBatch). It is an
// ingest.StreamingSink: a worker streams batches into one insert per table (store.EventStream) and commits them
// when they end.
type Sink struct{ Store *store.Store }

// New returns a Sink writing to s.
func New(s *store.Store) Sink { return Sink{Store: s} }

// batches recycles the column buffers of one batch for the next: a worker writes batch after batch of similar size.
var batches = sync.Pool{New: func() any { return new(store.EventBatch) }}

// Write inserts the batch; rows are deduplicated by (source, id) in ClickHouse, so a retried batch is harmless.
func (s Sink) Write(ctx context.Context, batch []ingest.Record) error {
	p := s.Prepare()
	defer p.Close()
	p.Add(batch)
	p.Seal()
	return p.Send(ctx)
}

// Prepare starts a batch whose events go straight into the insert's columns (store.EventBatch).
func (s Sink) Prepare() ingest.Prepared {
	return prepared{s.Store, batches.Get().(*store.EventBatch)}
}

type prepared struct {
	store *store.Store
	batch *store.EventBatch
}

func (p prepared) Add(records []ingest.Record) {
	for i := range records {
		r := &records[i]
		p.batch.Add(&r.Event, r.Topic, r.Partition, r.Offset)
	}
}

// Seal numbers the batch's rows (store.EventBatch.Seal): the worker seals batches in the order it cut them, so the
// copies of an event keep that order however the inserts interleave.
func (p prepared) Seal() { p.batch.Seal() }

func (p prepared) Send(ctx context.Context) error { return p.store.InsertBatch(ctx, p.batch) }

func (p prepared) Close() {
	p.batch.Reset()
	batches.Put(p.batch)
}

// OpenStream starts one insert of many batches (store.EventStream); not over HTTP, whose driver cannot stream.
func (s Sink) OpenStream(ctx context.Context) (ingest.Stream, bool, error) {
	st, ok, err := s.Store.OpenEventStream(ctx)
	if err != nil || !ok {
		return nil, ok, err
	}
	return stream{st}, true, nil
}

type stream struct{ *store.EventStream }

func (st stream) Write(p ingest.Prepared) error { return st.WriteBatch(p.(prepared).batch) }
