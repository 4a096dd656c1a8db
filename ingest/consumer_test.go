package ingest_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/leadthrough/leadthrough/broker"
)

// TestAWorkerWhoseCommittedOffsetWasRemovedByRetentionCarriesOnFromTheFirstMessageLeft: a group whose committed
// offset lies before what retention left of a partition reads on from the partition's first message, instead of
// failing or waiting.
func TestAWorkerWhoseCommittedOffsetWasRemovedByRetentionCarriesOnFromTheFirstMessageLeft(t *testing.T) {
	b, err := broker.Start(broker.Config{Listen: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	addr := b.Addr()
	topic := unique(t, "topic")
	createTopic(t, addr, topic, 1)
	const n, removed, committed = 20, 12, 5
	produce(t, addr, topic, goodEvents(t, 0, n)...)
	cfg := config(t, addr, topic)
	client := &kafka.Client{Addr: kafka.TCP(addr)}
	resp, err := client.OffsetCommit(context.Background(), &kafka.OffsetCommitRequest{
		GroupID: cfg.GroupID, GenerationID: -1,
		Topics: map[string][]kafka.OffsetCommit{topic: {{Partition: 0, Offset: committed}}},
	})
	if err != nil || resp.Topics[topic][0].Error != nil {
		t.Fatalf("commit offset %d: %v %+v", committed, err, resp)
	}
	if err := b.DeleteRecords(topic, 0, removed); err != nil {
		t.Fatal(err)
	}
	sink := newStreamSink()
	stop := runWorker(t, cfg, sink)
	defer stop()
	waitFor(t, 30*time.Second, "every offset committed", func() bool { return allCommitted(t, addr, cfg.GroupID, topic) })
	_, _, stored := sink.snapshot()
	if len(stored) != n-removed {
		t.Fatalf("%d events stored, want the %d retention left", len(stored), n-removed)
	}
	for _, id := range ids(removed, n-removed) {
		if stored[id] != 1 {
			t.Fatalf("%s stored %d times, want once", id, stored[id])
		}
	}
}
