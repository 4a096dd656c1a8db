package ingest

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/leadthrough/leadthrough/event"
)

// Dead-letter headers. Every dead letter carries all of them; leadthrough-original-size only when the value had to
// be truncated.
const (
	HeaderError             = "leadthrough-error"
	HeaderReason            = "leadthrough-reason"
	HeaderDecoder           = "leadthrough-decoder"
	HeaderOriginalTopic     = "leadthrough-original-topic"
	HeaderOriginalPartition = "leadthrough-original-partition"
	HeaderOriginalOffset    = "leadthrough-original-offset"
	HeaderOriginalSize      = "leadthrough-original-size"
)

const headerPrefix = "leadthrough-"

// truncatedValueBytes is how much of a value is kept when the whole value cannot be produced to the dead-letter
// topic (larger than the writer's limit or the topic's max.message.bytes): enough to recognise the payload, far
// below any broker's limit. The full value stays in the original topic at the offset named in the headers.
const truncatedValueBytes = 64 << 10

// deadLetter builds the dead letter of m: the original key, value and headers (minus any leadthrough-* header of an
// earlier trip through a dead-letter topic), plus the rejection headers.
func deadLetter(m *kafka.Message, dlqTopic, decoder string, err error) kafka.Message {
	headers := make([]kafka.Header, 0, len(m.Headers)+6)
	for _, h := range m.Headers {
		if !strings.HasPrefix(h.Key, headerPrefix) {
			headers = append(headers, h)
		}
	}
	headers = append(headers,
		kafka.Header{Key: HeaderError, Value: []byte(err.Error())},
		kafka.Header{Key: HeaderReason, Value: []byte(reasonOf(err))},
		kafka.Header{Key: HeaderDecoder, Value: []byte(decoder)},
		kafka.Header{Key: HeaderOriginalTopic, Value: []byte(m.Topic)},
		kafka.Header{Key: HeaderOriginalPartition, Value: strconv.AppendInt(nil, int64(m.Partition), 10)},
		kafka.Header{Key: HeaderOriginalOffset, Value: strconv.AppendInt(nil, m.Offset, 10)},
	)
	return kafka.Message{Topic: dlqTopic, Key: m.Key, Value: m.Value, Headers: headers}
}

// truncate keeps the first truncatedValueBytes of a dead letter's value and records the original size. It reports
// whether there was anything to cut.
func truncate(m *kafka.Message) bool {
	if len(m.Value) <= truncatedValueBytes {
		return false
	}
	m.Headers = append(m.Headers, kafka.Header{Key: HeaderOriginalSize, Value: strconv.AppendInt(nil, int64(len(m.Value)), 10)})
	m.Value = m.Value[:truncatedValueBytes:truncatedValueBytes]
	return true
}

func messageSize(m *kafka.Message) int64 {
	n := int64(len(m.Key) + len(m.Value))
	for _, h := range m.Headers {
		n += int64(len(h.Key) + len(h.Value))
	}
	return n
}

// deadLetterWriter is the dead-letter output: it writes until the broker acknowledged every dead letter.
type deadLetterWriter struct {
	w        *kafka.Writer
	maxBytes int64 // a little below the writer's BatchBytes: a larger message would be refused before it is sent
	log      *slog.Logger
	metrics  *Metrics
}

func newDeadLetterWriter(cfg Config, transport kafka.RoundTripper, log *slog.Logger) *deadLetterWriter {
	batchBytes := int64(max(cfg.MaxMessageBytes, DefaultMaxMessageBytes)) + truncatedValueBytes
	return &deadLetterWriter{
		w: &kafka.Writer{
			Addr: kafka.TCP(cfg.Brokers...),
			// Keyed like the original so one entity's dead letters stay together and in order.
			Balancer:               &kafka.Hash{},
			RequiredAcks:           kafka.RequireAll,
			AllowAutoTopicCreation: true,
			MaxAttempts:            3, // write retries forever on top
			BatchSize:              cfg.BatchSize,
			BatchBytes:             batchBytes,
			BatchTimeout:           5 * time.Millisecond, // WriteMessages is synchronous: do not wait for more
			Transport:              transport,
		},
		maxBytes: batchBytes - 4<<10,
		log:      log,
		metrics:  cfg.Metrics,
	}
}

// write produces msgs and returns nil once all of them are acknowledged, or ctx's error. Failed messages are
// retried with capped exponential backoff; acknowledged ones are not written again. A message the broker refuses
// as too large is retried with a truncated value rather than blocking its partition forever.
func (d *deadLetterWriter) write(ctx context.Context, msgs []kafka.Message) error {
	for i := range msgs {
		if messageSize(&msgs[i]) > d.maxBytes {
			truncate(&msgs[i])
		}
	}
	pending := msgs
	for attempt := 1; ; attempt++ {
		err := d.w.WriteMessages(ctx, pending...)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var tooLarge kafka.MessageTooLargeError
		var werrs kafka.WriteErrors
		// Failures that are expected and handled are not counted as write errors: the first write to a new
		// dead-letter topic racing its creation, and a dead letter too large for the topic (truncated here).
		truncated, other := false, false
		switch {
		case errors.As(err, &werrs) && len(werrs) == len(pending):
			failed := make([]kafka.Message, 0, werrs.Count())
			for i, e := range werrs {
				switch {
				case e == nil:
					continue
				case errors.Is(e, kafka.MessageSizeTooLarge) && truncate(&pending[i]):
					truncated = true
				case topicBeingCreated(e):
				default:
					other = true
				}
				failed = append(failed, pending[i])
			}
			pending = failed
		case errors.As(err, &tooLarge):
			// Refused by the writer before anything was sent; messageSize underestimates the record overhead.
			for i := range pending {
				truncated = truncate(&pending[i]) || truncated
			}
			other = !truncated
		case topicBeingCreated(err):
		default:
			other = true
		}
		delay := backoff(attempt)
		switch {
		case other:
			d.metrics.deadLetterWriteErrors.Inc()
			d.log.Warn("dead-letter write failed; retrying, offsets stay uncommitted until it succeeds",
				"attempt", attempt, "dead_letters", len(pending), "retry_in", delay, "err", err)
		case truncated:
			d.log.Warn("dead letter too large for its topic; writing it again with a truncated value",
				"header", HeaderOriginalSize, "err", err)
			delay = 0
		default: // only topic-creation errors
			d.log.Debug("dead-letter topic is being created; retrying", "attempt", attempt, "err", err)
		}
		if !sleep(ctx, delay) {
			return ctx.Err()
		}
	}
}

func topicBeingCreated(err error) bool {
	return errors.Is(err, kafka.UnknownTopicOrPartition) || errors.Is(err, kafka.LeaderNotAvailable)
}

// Retry backoff for sink writes, dead-letter writes and commits: doubling from minBackoff, capped at maxBackoff.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 30 * time.Second
)

func backoff(attempt int) time.Duration {
	if attempt > 20 {
		return maxBackoff
	}
	return min(minBackoff<<(attempt-1), maxBackoff)
}

// sleep waits d or until ctx is done; it reports whether the full d elapsed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// oversized is the rejection of a value larger than Config.MaxMessageBytes.
func oversized(size, limit int) error {
	return &event.Error{Reason: event.ReasonOversized, Detail: "message value is " + strconv.Itoa(size) +
		" bytes, more than the limit of " + strconv.Itoa(limit) + " bytes"}
}
