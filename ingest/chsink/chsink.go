// Package chsink connects the ingest worker to ClickHouse: it implements ingest.Sink on top of store.Store, so that
// neither the worker nor the store knows the other.
package chsink

import (
	"context"
	"sync"

	"github.com/leadthrough/leadthrough/ingest"
	"github.com/leadthrough/leadthrough/store"
)

// Sink writes ingest batches to the events table.
type Sink struct{ Store *store.Store }

// New returns a Sink writing to s.
func New(s *store.Store) Sink { return Sink{Store: s} }

// batches recycles the column buffers of one batch for the next: a worker writes batch after batch of similar size.
var batches = sync.Pool{New: func() any { return new(store.EventBatch) }}

// Write inserts the batch; rows are deduplicated by (source, id) in ClickHouse, so a retried batch is harmless.
func (s Sink) Write(ctx context.Context, batch []ingest.Record) error {
	p, _ := s.Prepare(ctx, batch)
	defer p.Close()
	return p.Send(ctx)
}

// Prepare builds the batch's columns and seals it (store.EventBatch.Seal): the worker prepares batches in the
// order it cut them, so the copies of an event keep that order however the inserts interleave.
func (s Sink) Prepare(_ context.Context, batch []ingest.Record) (ingest.Prepared, error) {
	b := batches.Get().(*store.EventBatch)
	for i := range batch {
		r := &batch[i]
		b.Add(r.Event, r.Topic, r.Partition, r.Offset)
	}
	b.Seal()
	return prepared{s.Store, b}, nil
}

type prepared struct {
	store *store.Store
	batch *store.EventBatch
}

func (p prepared) Send(ctx context.Context) error { return p.store.InsertBatch(ctx, p.batch) }

func (p prepared) Close() {
	p.batch.Reset()
	batches.Put(p.batch)
}
