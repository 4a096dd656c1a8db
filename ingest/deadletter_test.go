package ingest

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"

	"github.com/leadthrough/leadthrough/broker"
	"github.com/leadthrough/leadthrough/internal/testenv"
)

// The worker creates dead-letter topics when it starts; this covers a dead-letter topic that appears later (or was
// deleted), whose first write races its automatic creation.
func TestDeadLetterWriterCreatesItsTopicOnFirstWrite(t *testing.T) {
	tests := []struct {
		name string
		addr func(t *testing.T) string
	}{
		{"embedded broker", func(t *testing.T) string {
			b, err := broker.Start(broker.Config{Listen: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(b.Close)
			return b.Addr()
		}},
		{"apache kafka", func(t *testing.T) string { return testenv.Kafka(t) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := tt.addr(t)
			cfg, err := Config{Brokers: []string{addr}}.withDefaults()
			if err != nil {
				t.Fatal(err)
			}
			transport := &kafka.Transport{}
			defer transport.CloseIdleConnections()
			d := newDeadLetterWriter(cfg, transport, slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})))
			defer d.w.Close()

			topic := fmt.Sprintf("dlq-first-write-%d.dlq", time.Now().UnixNano())
			src := kafka.Message{Topic: "src", Partition: 2, Offset: 41, Key: []byte("D-1"), Value: []byte("{")}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			if err := d.write(ctx, []kafka.Message{deadLetter(&src, topic, "cloudevents", oversized(9, 1))}); err != nil {
				t.Fatalf("write: %v", err)
			}
			if n := testutil.ToFloat64(d.metrics.deadLetterWriteErrors); n != 0 {
				t.Errorf("topic creation counted as %v dead-letter write errors", n)
			}

			conn, err := kafka.DialLeader(ctx, "tcp", addr, topic, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			parts, err := conn.ReadPartitions(topic)
			if err != nil || len(parts) == 0 {
				t.Fatalf("dead-letter topic %s not created: %v", topic, err)
			}
		})
	}
}
