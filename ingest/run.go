package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol/metadata"

	"github.com/leadthrough/leadthrough/kafkaconn"
)

const (
	clientID = "leadthrough-ingest"

	// fetchMaxWait bounds how long a fetch of an idle partition waits on the broker (a fetch is also cut short when
	// its generation ends).
	fetchMaxWait = 500 * time.Millisecond

	// commitTimeout bounds one commit attempt (kafka-go bounds the request itself by the group's network timeout).
	commitTimeout = 10 * time.Second
)

// Run consumes cfg.Topics as consumer group cfg.GroupID and writes their events to sink, until ctx is done (it
// returns nil then). It returns an error only before it starts consuming: an invalid Config, or brokers that refuse
// the connection for good (kafkaconn.Permanent: a wrong password, an untrusted certificate). Once consuming, every
// failure (a fetch, a write, a commit, a rebalance) is retried.
//
// Offsets are committed only after sink.Write returned nil for every event of those messages (for a StreamingSink:
// the unit holding them was closed without error) and their dead letters were acknowledged by the broker; a
// failing write is retried with the same batch, with capped exponential backoff, until it succeeds or ctx is done.
// A StreamingSink's failed unit is not retried from memory: the worker leaves the group, joins it again after the
// same backoff and reads everything uncommitted again. A rebalance stops the worker of the generation that ends;
// what it had not committed is read again by the partitions' next owners. On ctx cancel Run stops fetching, drops
// the batch it has not written (its messages are redelivered to the group), commits a batch it had already
// written, leaves the group and closes its connections.
func Run(ctx context.Context, cfg Config, sink Sink) error {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return err
	}
	if sink == nil {
		return errors.New("ingest: nil Sink")
	}
	log := cfg.Logger.With("component", "ingest", "group", cfg.GroupID)

	transport, err := cfg.Kafka.Transport(clientID)
	if err != nil {
		return fmt.Errorf("ingest: %w", err)
	}
	defer transport.CloseIdleConnections()
	dialer, err := cfg.Kafka.Dialer(clientID)
	if err != nil {
		return fmt.Errorf("ingest: %w", err)
	}
	if err := ensureTopics(ctx, transport, cfg, log); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}

	c := &consumer{cfg: cfg, dialer: dialer, log: log}
	dlq := newDeadLetterWriter(cfg, transport, log)
	log.Info("ingest started", "topics", cfg.topicNames(), "brokers", cfg.Brokers, "connection", cfg.Kafka)
	for rereads := 0; ; {
		group, err := kafka.NewConsumerGroup(c.groupConfig())
		if err != nil {
			return fmt.Errorf("ingest: %w", err) // only an invalid configuration
		}
		committed, rewind := c.readGenerations(ctx, group, sink, dlq)
		// Closing the group leaves it; a new member joins it again and starts from the committed offsets.
		if cerr := group.Close(); cerr != nil {
			log.Warn("leaving the consumer group", "err", cerr)
		}
		if !rewind || ctx.Err() != nil {
			break
		}
		if committed {
			rereads = 0
		}
		rereads++
		cfg.Metrics.rereads.Inc()
		delay := backoff(rereads)
		log.Warn("reading again from the last committed offsets", "attempt", rereads, "retry_in", delay)
		if !sleep(ctx, delay) {
			break
		}
	}
	if cerr := dlq.w.Close(); cerr != nil {
		log.Warn("closing the dead-letter producer", "err", cerr)
	}
	log.Info("ingest stopped")
	return nil
}

// ensureTopics asks the brokers for every source and dead-letter topic with automatic creation allowed, and waits
// until each source topic exists: a consumer group that joins before its topic exists gets no partitions.
// Dead-letter topics are created on a best-effort basis here and again on their first write. When the brokers do
// not answer, a direct connection tells why; a reason that waiting cannot cure (a refused password, an untrusted
// certificate) ends the wait with that reason.
func ensureTopics(ctx context.Context, transport *kafka.Transport, cfg Config, log *slog.Logger) error {
	addr := kafka.TCP(cfg.Brokers...)
	req := &metadata.Request{TopicNames: append(cfg.topicNames(), cfg.dlqTopicNames()...), AllowAutoTopicCreation: true}
	for attempt := 1; ; attempt++ {
		resp, err := transport.RoundTrip(ctx, addr, req)
		if err != nil && ctx.Err() == nil {
			if cerr := cfg.Kafka.Check(ctx, cfg.Brokers); cerr != nil {
				if kafkaconn.Permanent(cerr) {
					return cerr
				}
				err = cerr
			}
		}
		if err == nil {
			exists := make(map[string]bool)
			for _, t := range resp.(*metadata.Response).Topics {
				exists[t.Name] = t.ErrorCode == 0 && len(t.Partitions) > 0
			}
			var missing []string
			for _, t := range cfg.Topics {
				if !exists[t.Name] {
					missing = append(missing, t.Name)
				}
			}
			if len(missing) == 0 {
				return nil
			}
			err = fmt.Errorf("topics %q do not exist and were not created automatically (yet)", missing)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		level := slog.LevelWarn
		if attempt < 3 { // a topic being auto-created takes a moment to show up
			level = slog.LevelDebug
		}
		delay := backoff(attempt)
		log.Log(ctx, level, "waiting for the brokers and the topics", "attempt", attempt, "retry_in", delay, "err", err)
		if !sleep(ctx, delay) {
			return ctx.Err()
		}
	}
}

// readGenerations runs one worker per generation of the group until ctx ends or a worker asks to read again from
// the committed offsets (rewind). A worker stops when its generation ends (a rebalance); what it had not committed
// is read again by the partitions' next owners. committed reports whether any worker committed.
func (c *consumer) readGenerations(ctx context.Context, group *kafka.ConsumerGroup, sink Sink,
	dlq *deadLetterWriter) (committed, rewind bool) {
	for ctx.Err() == nil {
		gen, err := group.Next(ctx)
		if err != nil {
			if ctx.Err() == nil {
				c.log.Warn("joining the consumer group failed; retrying", "err", err)
			}
			continue // the group retries with JoinGroupBackoff
		}
		wctx, cancel := context.WithCancel(ctx)
		// Ends the worker with the generation (a function the generation runs must not return before it ends).
		gen.Start(func(genCtx context.Context) {
			<-genCtx.Done()
			cancel()
		})
		w := newWorker(c.cfg, sink, generation{c: c, gen: gen}, dlq, c.log)
		again := w.run(wctx)
		cancel()
		committed = committed || w.committed
		if again {
			return committed, true
		}
	}
	return committed, false
}

// input is the consumer seam: read starts reading the assigned partitions, each sending its messages in runs, in
// offset order; CommitMessages acknowledges everything up to and including the given messages of their partitions.
// generation implements it.
type input interface {
	read(out chan<- run)
	CommitMessages(ctx context.Context, msgs ...kafka.Message) error
}
