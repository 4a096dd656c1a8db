// Package chsink connects the ingest worker to ClickHouse: it implements ingest.Sink on top of store.Store, so that
// neither the worker nor the store knows the other.
package chsink

import (
	"context"

	"github.com/leadthrough/leadthrough/ingest"
	"github.com/leadthrough/leadthrough/store"
)

// Sink writes ingest batches to the events table.
type Sink struct{ Store *store.Store }

// New returns a Sink writing to s.
func New(s *store.Store) Sink { return Sink{Store: s} }

// Write inserts the batch; rows are deduplicated by (source, id) in ClickHouse, so a retried batch is harmless.
func (s Sink) Write(ctx context.Context, batch []ingest.Record) error {
	rows := make([]store.Stored, len(batch))
	for i, r := range batch {
		rows[i] = store.Stored{Event: r.Event, Topic: r.Topic, Partition: r.Partition, Offset: r.Offset}
	}
	return s.Store.InsertEvents(ctx, rows)
}
