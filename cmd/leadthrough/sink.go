package main

import (
	"context"

	"github.com/leadthrough/leadthrough/ingest"
	"github.com/leadthrough/leadthrough/store"
)

// clickhouseSink connects the ingest worker to the store; neither package knows the other.
type clickhouseSink struct{ store *store.Store }

func (s clickhouseSink) Write(ctx context.Context, batch []ingest.Record) error {
	rows := make([]store.Stored, len(batch))
	for i, r := range batch {
		rows[i] = store.Stored{Event: r.Event, Topic: r.Topic, Partition: r.Partition, Offset: r.Offset}
	}
	return s.store.InsertEvents(ctx, rows)
}
