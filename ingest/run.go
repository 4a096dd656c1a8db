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

	// fetchMaxWait bounds how long a fetch of an idle partition waits on the broker; it also bounds how long Close
	// waits for the partition readers.
	fetchMaxWait = 500 * time.Millisecond

	// commitTimeout bounds one commit attempt: kafka-go parks a commit while the group rebalances.
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
// same backoff and reads everything uncommitted again. On ctx cancel Run stops fetching, drops the batch it has not written
// (its messages are redelivered to the group), commits a batch it had already written, leaves the group and closes
// its connections.
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

	readerConfig := kafka.ReaderConfig{
		Brokers:     cfg.Brokers,
		GroupID:     cfg.GroupID,
		GroupTopics: cfg.topicNames(),
		Dialer:      dialer,
		StartOffset: kafka.FirstOffset,
		// Synchronous commits: CommitMessages returns once the broker stored the offsets.
		CommitInterval: 0,
		MinBytes:       1,
		// At least one whole message of the allowed size per fetch; brokers still return a larger first record
		// batch (KIP-74), which is then dead-lettered as oversized.
		MaxBytes: 2 * max(cfg.MaxMessageBytes, DefaultMaxMessageBytes),
		MaxWait:  fetchMaxWait,
		// Messages the consumer holds ready for the pipeline (kafka-go's default is 100); the pipeline's own channels
		// bound what is past it.
		QueueCapacity:         4 * chunkSize,
		WatchPartitionChanges: true,
		IsolationLevel:        kafka.ReadCommitted,
		ReadLagInterval:       -1,
		// The first join on a fresh cluster fails while the broker creates __consumer_offsets; kafka-go would
		// then idle 5s.
		JoinGroupBackoff: time.Second,
		// Group timeouts: see Config.SessionTimeout and Config.RebalanceTimeout.
		SessionTimeout:    cfg.SessionTimeout,
		RebalanceTimeout:  cfg.RebalanceTimeout,
		HeartbeatInterval: cfg.heartbeatInterval(),
		ErrorLogger: kafka.LoggerFunc(func(msg string, args ...any) {
			log.Warn(fmt.Sprintf(msg, args...), "source", "kafka-go reader")
		}),
	}
	dlq := newDeadLetterWriter(cfg, transport, log)
	log.Info("ingest started", "topics", cfg.topicNames(), "brokers", cfg.Brokers, "connection", cfg.Kafka)
	for rereads := 0; ; {
		reader := kafka.NewReader(readerConfig)
		w := newWorker(cfg, sink, reader, dlq, log)
		rewind := w.run(ctx)
		// Closing the reader leaves the group; a new reader joins it again and starts from the committed offsets.
		if cerr := reader.Close(); cerr != nil {
			log.Warn("closing the consumer", "err", cerr)
		}
		if !rewind || ctx.Err() != nil {
			break
		}
		if w.committed {
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

// input is the consumer seam: FetchMessage reads the next message, CommitMessages acknowledges everything up to and
// including the given messages of their partitions. *kafka.Reader implements it.
type input interface {
	FetchMessage(ctx context.Context) (kafka.Message, error)
	CommitMessages(ctx context.Context, msgs ...kafka.Message) error
}
