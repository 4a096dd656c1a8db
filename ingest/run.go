package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol/metadata"

	"github.com/leadthrough/leadthrough/event"
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
// returns nil then) or a fatal error (an invalid Config, a consumer that closed under it).
//
// Offsets are committed only after sink.Write returned nil for every event of those messages and their dead
// letters were acknowledged by the broker; a failing write is retried with the same batch, with capped exponential
// backoff, until it succeeds or ctx is done. On ctx cancel Run stops fetching, drops the batch it has not written
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

	reader := kafka.NewReader(kafka.ReaderConfig{
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
		MaxBytes:              2 * max(cfg.MaxMessageBytes, DefaultMaxMessageBytes),
		MaxWait:               fetchMaxWait,
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
	})
	dlq := newDeadLetterWriter(cfg, transport, log)
	w := newWorker(cfg, sink, reader, dlq, log)
	log.Info("ingest started", "topics", cfg.topicNames(), "brokers", cfg.Brokers, "connection", cfg.Kafka)
	err = w.run(ctx)
	if cerr := reader.Close(); cerr != nil {
		log.Warn("closing the consumer", "err", cerr)
	}
	if cerr := dlq.w.Close(); cerr != nil {
		log.Warn("closing the dead-letter producer", "err", cerr)
	}
	log.Info("ingest stopped")
	return err
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

type topicState struct {
	decoder  Decoder
	dlq      string
	messages prometheus.Counter
}

type partitionKey struct {
	topic     string
	partition int
}

type deadLabel struct {
	topic  string
	reason event.Reason
}

// worker runs the pipeline on one goroutine; nothing in it is shared.
type worker struct {
	cfg     Config
	sink    Sink
	in      input
	dlq     *deadLetterWriter
	log     *slog.Logger
	metrics *Metrics

	topics map[string]*topicState
	byType map[string]prometheus.Counter

	// The current batch. offsets holds, per partition, a message carrying only the highest offset consumed.
	records     []Record
	dead        []kafka.Message
	deadLabels  []deadLabel
	offsets     []kafka.Message
	offsetIndex map[partitionKey]int

	flushCtx  context.Context // see clock
	stopFlush context.CancelFunc
}

func newWorker(cfg Config, sink Sink, in input, dlq *deadLetterWriter, log *slog.Logger) *worker {
	w := &worker{
		cfg: cfg, sink: sink, in: in, dlq: dlq, log: log, metrics: cfg.Metrics,
		topics:      make(map[string]*topicState, len(cfg.Topics)),
		byType:      make(map[string]prometheus.Counter, len(event.Types)),
		records:     make([]Record, 0, cfg.BatchSize),
		offsetIndex: make(map[partitionKey]int),
	}
	for _, t := range cfg.Topics {
		w.topicState(t.Name).decoder = t.Decoder
	}
	return w
}

func (w *worker) topicState(topic string) *topicState {
	t := w.topics[topic]
	if t == nil {
		// Only configured topics are subscribed; a stranger gets the default decoder rather than being dropped.
		t = &topicState{decoder: CloudEvents, dlq: topic + w.cfg.DLQSuffix, messages: w.metrics.messages.WithLabelValues(topic)}
		w.topics[topic] = t
	}
	return t
}

func (w *worker) pending() bool { return len(w.offsets) > 0 }

func (w *worker) full() bool { return len(w.records)+len(w.dead) >= w.cfg.BatchSize }

func (w *worker) run(ctx context.Context) error {
	defer w.stopClock()
	fetchErrors := 0
	for {
		fetchCtx := ctx
		if w.pending() {
			clock := w.clock(ctx)
			if clock.Err() != nil || w.full() {
				w.stopClock()
				if err := w.flush(ctx); err != nil {
					return nil // only ctx ends a flush early
				}
				continue
			}
			fetchCtx = clock
		}
		m, err := w.in.FetchMessage(fetchCtx)
		if err != nil {
			switch {
			case ctx.Err() != nil:
				return nil // the unwritten batch is dropped: it was not committed, the group gets it again
			case fetchCtx.Err() != nil:
				continue // time to flush
			case errors.Is(err, io.EOF):
				return fmt.Errorf("ingest: consumer closed while running: %w", err)
			}
			// kafka-go keeps retrying underneath and surfaces errors here as they happen.
			fetchErrors++
			delay := backoff(fetchErrors)
			w.log.Warn("fetch failed; retrying", "attempt", fetchErrors, "retry_in", delay, "err", err)
			sleep(fetchCtx, delay)
			continue
		}
		fetchErrors = 0
		w.process(&m)
	}
}

// clock returns a context that expires FlushInterval after the first message of the current batch: fetching under
// it is what makes a quiet topic's batch go out on time. One context per batch, not per message.
func (w *worker) clock(ctx context.Context) context.Context {
	if w.flushCtx == nil {
		w.flushCtx, w.stopFlush = context.WithTimeout(ctx, w.cfg.FlushInterval)
	}
	return w.flushCtx
}

func (w *worker) stopClock() {
	if w.stopFlush != nil {
		w.stopFlush()
		w.flushCtx, w.stopFlush = nil, nil
	}
}

// process is the processor stage: it adds m's events to the batch or m's dead letter to the dead letters, and
// m's offset to the offsets to commit. It does not log and allocates only what decoding needs.
func (w *worker) process(m *kafka.Message) {
	t := w.topicState(m.Topic)
	t.messages.Inc()
	w.track(m)
	if len(m.Value) > w.cfg.MaxMessageBytes {
		w.reject(m, t, oversized(len(m.Value), w.cfg.MaxMessageBytes))
		return
	}
	evs, err := decode(t.decoder, m.Value)
	if err != nil {
		w.reject(m, t, err)
		return
	}
	for i := range evs {
		w.records = append(w.records, Record{Event: evs[i], Topic: m.Topic, Partition: m.Partition, Offset: m.Offset})
	}
}

// decode runs a decoder and holds its events to the contract. A decoder that panics on some input rejects that
// input: a panic would otherwise restart the worker on the same message forever and block its partition.
func decode(d Decoder, value []byte) (evs []event.Event, err error) {
	defer func() {
		if p := recover(); p != nil {
			evs, err = nil, fmt.Errorf("decoder %s panicked: %v", d.Name(), p)
		}
	}()
	evs, err = d.Decode(value)
	if err != nil {
		return nil, err
	}
	for i := range evs {
		if err := event.Validate(evs[i]); err != nil {
			return nil, err
		}
	}
	return evs, nil
}

func (w *worker) reject(m *kafka.Message, t *topicState, err error) {
	w.dead = append(w.dead, deadLetter(m, t.dlq, t.decoder.Name(), err))
	w.deadLabels = append(w.deadLabels, deadLabel{topic: m.Topic, reason: reasonOf(err)})
}

func (w *worker) track(m *kafka.Message) {
	k := partitionKey{m.Topic, m.Partition}
	if i, ok := w.offsetIndex[k]; ok {
		// After a rebalance a partition can be read again from its committed offset: keep the highest.
		w.offsets[i].Offset = max(w.offsets[i].Offset, m.Offset)
		return
	}
	w.offsetIndex[k] = len(w.offsets)
	w.offsets = append(w.offsets, kafka.Message{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset})
}

// flush is the output stage: dead letters, then events, then the commit. It returns an error only when ctx ended
// first; the batch is then left uncommitted (unless it was written, see commit).
func (w *worker) flush(ctx context.Context) error {
	if len(w.dead) > 0 {
		if err := w.dlq.write(ctx, w.dead); err != nil {
			return err
		}
		for _, l := range w.deadLabels {
			w.metrics.deadLetters.WithLabelValues(l.topic, string(l.reason)).Inc()
		}
	}
	if len(w.records) > 0 {
		if err := w.write(ctx); err != nil {
			return err
		}
	}
	if err := w.commit(ctx); err != nil {
		return err
	}
	clear(w.records) // drop references to the events so the next batch does not keep them alive
	w.records = w.records[:0]
	clear(w.dead)
	w.dead = w.dead[:0]
	w.deadLabels = w.deadLabels[:0]
	w.offsets = w.offsets[:0]
	clear(w.offsetIndex)
	return nil
}

// write hands the batch to the sink until it takes it.
func (w *worker) write(ctx context.Context) error {
	for attempt := 1; ; attempt++ {
		start := time.Now()
		err := w.sink.Write(ctx, w.records)
		if err != nil && ctx.Err() != nil {
			return ctx.Err() // stopping, not a sink failure
		}
		w.metrics.batchWriteDuration.Observe(time.Since(start).Seconds())
		if err == nil {
			w.metrics.batches.Inc()
			for i := range w.records {
				w.typeCounter(w.records[i].Event.Type).Inc()
			}
			return nil
		}
		w.metrics.writeErrors.Inc()
		delay := backoff(attempt)
		w.log.Warn("sink write failed; retrying the same batch, its offsets stay uncommitted until it succeeds",
			"attempt", attempt, "events", len(w.records), "retry_in", delay, "err", err)
		if !sleep(ctx, delay) {
			return ctx.Err()
		}
	}
}

func (w *worker) typeCounter(typ string) prometheus.Counter {
	c := w.byType[typ]
	if c == nil {
		c = w.metrics.events.WithLabelValues(typ) // types passed event.Validate: a bounded set
		w.byType[typ] = c
	}
	return c
}

// commit acknowledges the batch's messages: per partition, everything up to its highest offset in the batch.
func (w *worker) commit(ctx context.Context) error {
	for attempt := 1; ; attempt++ {
		err := w.commitOnce(ctx)
		if err == nil {
			w.metrics.lastCommit.SetToCurrentTime()
			return nil
		}
		if ctx.Err() != nil {
			// Stopping with a written batch: one last bounded attempt spares its redelivery after the restart.
			if err = w.commitOnce(context.WithoutCancel(ctx)); err == nil {
				w.metrics.lastCommit.SetToCurrentTime()
				return nil
			}
			w.log.Warn("stopping with a written batch whose offsets are not committed; it will be redelivered", "err", err)
			return ctx.Err()
		}
		w.metrics.commitErrors.Inc()
		delay := backoff(attempt)
		w.log.Warn("offset commit failed; retrying", "attempt", attempt, "partitions", len(w.offsets), "retry_in", delay, "err", err)
		if !sleep(ctx, delay) {
			continue // the next attempt sees ctx done and makes the last bounded attempt
		}
	}
}

func (w *worker) commitOnce(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, commitTimeout)
	defer cancel()
	return w.in.CommitMessages(ctx, w.offsets...)
}
