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
	"github.com/leadthrough/leadthrough/kafkaconn"
)

const clientID = "leadthrough-publish"

// Config says where to publish.
type Config struct {
	Brokers []string
	Topic   string
	// Kafka says how to connect to Brokers (TLS, SASL); default plaintext without authentication.
	Kafka kafkaconn.Config
	// BatchSize is the number of messages sent per produce request; default 1000.
	BatchSize int
	// Progress, when set, is called after each acknowledged batch with the number of events published so far.
	Progress func(done, total int)
}

// Events encodes and publishes evs in order. It fails before sending anything if an event breaks the contract.
func Events(ctx context.Context, cfg Config, evs []event.Event) error {
	msgs, err := encode(evs)
	if err != nil {
		return err
	}
	return Raw(ctx, cfg, msgs)
}

// Raw publishes prepared messages (tests use it for malformed input).
func Raw(ctx context.Context, cfg Config, msgs []kafka.Message) error {
	w, err := NewWriter(cfg)
	if err != nil {
		return err
	}
	defer w.Close()
	return w.write(ctx, msgs, cfg.Progress)
}

// Writer publishes events to one topic batch after batch, over the same connections, for a producer that has more
// events than it should hold at once. Config.Progress is not called.
type Writer struct {
	cfg       Config
	w         *kafka.Writer
	transport *kafka.Transport
}

// NewWriter returns a Writer for cfg's topic; Close it when done. It fails when cfg.Kafka is invalid
// (kafkaconn.ErrConfig).
func NewWriter(cfg Config) (*Writer, error) {
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 1000
	}
	transport, err := cfg.Kafka.Transport(clientID)
	if err != nil {
		return nil, err
	}
	return &Writer{cfg: cfg, transport: transport, w: &kafka.Writer{
		Addr:                   kafka.TCP(cfg.Brokers...),
		Topic:                  cfg.Topic,
		Balancer:               &kafka.Hash{},
		RequiredAcks:           kafka.RequireAll,
		AllowAutoTopicCreation: true,
		BatchSize:              cfg.BatchSize,
		BatchTimeout:           10 * time.Millisecond,
		Transport:              transport,
	}}, nil
}

// Write encodes and publishes evs in order, after the events of earlier calls, and returns once all are
// acknowledged. It fails before sending any of evs if one of them breaks the contract.
func (w *Writer) Write(ctx context.Context, evs []event.Event) error {
	msgs, err := encode(evs)
	if err != nil {
		return err
	}
	return w.write(ctx, msgs, nil)
}

// Close flushes and closes the Writer's connections.
func (w *Writer) Close() error {
	err := w.w.Close()
	w.transport.CloseIdleConnections()
	return err
}

func (w *Writer) write(ctx context.Context, msgs []kafka.Message, progress func(done, total int)) error {
	for start := 0; start < len(msgs); start += w.cfg.BatchSize {
		batch := msgs[start:min(start+w.cfg.BatchSize, len(msgs))]
		if err := writeRetrying(ctx, w.w, batch); err != nil {
			// kafka.Writer words a refused connection as kafka-go or crypto/tls does; a connection of our own
			// says which broker refused it and why (kafkaconn.ErrAuthentication, ErrTLS).
			if cerr := w.cfg.Kafka.Check(ctx, w.cfg.Brokers); cerr != nil && ctx.Err() == nil {
				return fmt.Errorf("publish %d messages to %s: %w", len(batch), w.cfg.Topic, cerr)
			}
			return fmt.Errorf("publish %d messages to %s at %v: %w", len(batch), w.cfg.Topic, w.cfg.Brokers, err)
		}
		if progress != nil {
			progress(start+len(batch), len(msgs))
		}
	}
	return nil
}

func encode(evs []event.Event) ([]kafka.Message, error) {
	msgs := make([]kafka.Message, len(evs))
	for i, e := range evs {
		value, err := event.Encode(e)
		if err != nil {
			return nil, fmt.Errorf("event %s/%s: %w", e.Source, e.ID, err)
		}
		msgs[i] = kafka.Message{Key: []byte(e.Key()), Value: value}
	}
	return msgs, nil
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
