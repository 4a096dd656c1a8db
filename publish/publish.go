// Package publish writes canonical events to a Kafka topic the way producers must (DESIGN.md): one structured-mode
// CloudEvents JSON document per message, keyed by the entity id so one entity's events share a partition, and
// acknowledged by all in-sync replicas before the call returns. `leadthrough simulate`, `demo` and the tests use it.
package publish

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/leadthrough/leadthrough/event"
)

// Config says where to publish.
type Config struct {
	Brokers []string
	Topic   string
	// BatchSize is the number of messages sent per produce request; default 1000.
	BatchSize int
	// Progress, when set, is called after each acknowledged batch with the number of events published so far.
	Progress func(done, total int)
}

// Events encodes and publishes evs in order. It fails before sending anything if an event breaks the contract.
func Events(ctx context.Context, cfg Config, evs []event.Event) error {
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 1000
	}
	msgs := make([]kafka.Message, len(evs))
	for i, e := range evs {
		value, err := event.Encode(e)
		if err != nil {
			return fmt.Errorf("event %s/%s: %w", e.Source, e.ID, err)
		}
		msgs[i] = kafka.Message{Key: []byte(e.Key()), Value: value}
	}
	return Raw(ctx, cfg, msgs)
}

// Raw publishes prepared messages (tests use it for malformed input).
func Raw(ctx context.Context, cfg Config, msgs []kafka.Message) error {
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 1000
	}
	w := &kafka.Writer{
		Addr:                   kafka.TCP(cfg.Brokers...),
		Topic:                  cfg.Topic,
		Balancer:               &kafka.Hash{},
		RequiredAcks:           kafka.RequireAll,
		AllowAutoTopicCreation: true,
		BatchSize:              cfg.BatchSize,
		BatchTimeout:           10 * time.Millisecond,
	}
	defer w.Close()
	for start := 0; start < len(msgs); start += cfg.BatchSize {
		batch := msgs[start:min(start+cfg.BatchSize, len(msgs))]
		if err := writeRetrying(ctx, w, batch); err != nil {
			return fmt.Errorf("publish %d messages to %s at %v: %w", len(batch), cfg.Topic, cfg.Brokers, err)
		}
		if cfg.Progress != nil {
			cfg.Progress(start+len(batch), len(msgs))
		}
	}
	return nil
}

// writeRetrying retries the errors a new topic produces while it is being created.
func writeRetrying(ctx context.Context, w *kafka.Writer, batch []kafka.Message) error {
	var err error
	for attempt := range 20 {
		if err = w.WriteMessages(ctx, batch...); err == nil {
			return nil
		}
		if !errors.Is(err, kafka.UnknownTopicOrPartition) && !errors.Is(err, kafka.LeaderNotAvailable) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(100*(attempt+1)) * time.Millisecond):
		}
	}
	return err
}
