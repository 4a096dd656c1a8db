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
	b := batches.Get().(*store.EventBatch)
	defer func() {
		b.Reset()
		batches.Put(b)
	}()
	for i := range batch {
		r := &batch[i]
		b.Add(r.Event, r.Topic, r.Partition, r.Offset)
	}
	return s.Store.InsertBatch(ctx, b)
}
