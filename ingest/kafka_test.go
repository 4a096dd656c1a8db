package ingest_test

import (
	"context"
	"testing"

	"github.com/leadthrough/leadthrough/ingest"
	"github.com/leadthrough/leadthrough/internal/testenv"
)

// TestRunAgainstApacheKafka runs the worker against the real Apache Kafka broker that `make test` starts: the
// embedded broker is a stand-in, and consumer groups, automatic topic creation and acks are where they differ.
func TestRunAgainstApacheKafka(t *testing.T) {
	addr := testenv.Kafka(t)
	t.Run("bad messages are dead-lettered with headers, good ones stored, offsets committed", func(t *testing.T) {
		testDeadLetters(t, addr, 3)
	})
	t.Run("two workers of one group share the partitions and lose nothing on rebalance", func(t *testing.T) {
		testTwoWorkers(t, addr)
	})
	t.Run("an unwritten batch is redelivered to a restarted worker", func(t *testing.T) {
		testRedelivery(t, addr, func(ctx context.Context, _ int, _ []ingest.Record) error {
			<-ctx.Done()
			return ctx.Err()
		})
	})
}
