package ingest

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/leadthrough/leadthrough/event"
)

// The worker is a pipeline of stages joined by bounded channels, so that reading from Kafka, decoding and writing
// overlap, decoding uses every core, and memory is bounded by backpressure (a full channel holds the stage before
// it back, down to the consumer, which then stops fetching), not by the backlog:
//
//	read ×partitions ─► dispatch ─► decode ×DecodeWorkers ─► batch ─► output (dead letters, sink, commit)
//
// Each assigned partition is read on its own connection (consumer.go), in runs of at most chunkSize messages of
// one fetch. dispatch makes each run a chunk and hands it to the decoders and, in the same order, to the
// batcher. The batcher takes chunks in that order as they are decoded, so a batch holds each partition's messages
// in offset order, and it cuts batches at message boundaries by Config.BatchSize and Config.BatchBytes (a
// PreparingSink builds each batch's events in its own form as it fills). With a StreamingSink and one writer the
// output stage streams batch after batch into one unit and commits the unit's offsets once the sink closed it
// (stream.go). Otherwise it writes up to Config.Writers batches at once, each on its own, and commits batches
// strictly in the order they were cut, each only after its own dead letters and events and those of every batch
// before it were written. Meanwhile the batcher fills the next batch: at most Writers+1 batches exist at a time.

// chunkSize is the most messages dispatched to a decoder at once: enough to make the hand-over cheap per message,
// few enough to spread the work over the decoders. It does not bound batches: they are cut between messages.
const chunkSize = 256

// runsReady is how many runs the partitions' readers may have read ahead of dispatch (up to 1,024 messages).
const runsReady = 4

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

// chunk is a run of consecutive messages of one partition and, once decoded is closed, what they decoded to.
type chunk struct {
	msgs  []kafka.Message
	topic *topicState

	// Set by the decoder. Message i's events are records[recEnd[i-1]:recEnd[i]] (from 0 for i == 0); a message
	// with a dead letter (deadAt[i] >= 0) has none.
	records    []Record
	recEnd     []int
	deadAt     []int
	dead       []kafka.Message
	deadLabels []deadLabel
	decoded    chan struct{}

	// caughtUp: when dispatch took the chunk, every partition this worker had read from had been read to the end
	// the broker reported (its high watermark) when it was fetched.
	caughtUp bool

	next int // the batcher's position: messages before it are in a batch
}

// offsets holds, per partition, a message carrying only the highest offset seen: what a commit acknowledges.
type offsets struct {
	msgs  []kafka.Message
	index map[partitionKey]int
}

func newOffsets() offsets { return offsets{index: make(map[partitionKey]int)} }

func (o *offsets) track(topic string, partition int, offset int64) {
	k := partitionKey{topic, partition}
	if i, ok := o.index[k]; ok {
		// After a rebalance a partition can be read again from its committed offset: keep the highest.
		o.msgs[i].Offset = max(o.msgs[i].Offset, offset)
		return
	}
	o.index[k] = len(o.msgs)
	o.msgs = append(o.msgs, kafka.Message{Topic: topic, Partition: partition, Offset: offset})
}

func (o *offsets) reset() {
	o.msgs = o.msgs[:0]
	clear(o.index)
}

// batch is what the output stage writes and commits as one.
type batch struct {
	records    []Record // the events, unless the sink is a PreparingSink
	prepared   Prepared // the events, when the sink is a PreparingSink
	events     int
	types      map[string]int // events per type, for leadthrough_ingest_events_total
	dead       []kafka.Message
	deadLabels []deadLabel
	offsets    offsets
	messages   int
	bytes      int    // message values, the unit of Config.BatchBytes
	seq        uint64 // the order batches were cut in, and are committed in
	quiet      bool   // cut before it was full, by FlushInterval or because the worker caught up: nothing more is waiting
}

func newBatch() *batch {
	return &batch{offsets: newOffsets(), types: make(map[string]int, len(event.Types))}
}

func (b *batch) empty() bool { return b.messages == 0 }

func (b *batch) reset() {
	clear(b.records) // drop references to the events so that the next batch does not keep them alive
	b.records = b.records[:0]
	b.prepared, b.events = nil, 0
	clear(b.types)
	clear(b.dead)
	b.dead = b.dead[:0]
	b.deadLabels = b.deadLabels[:0]
	b.offsets.reset()
	b.messages, b.bytes, b.quiet = 0, 0, false
}

// worker runs one pipeline. Each map in it belongs to one stage's goroutine.
type worker struct {
	cfg     Config
	sink    Sink
	in      input
	dlq     *deadLetterWriter
	log     *slog.Logger
	metrics *Metrics

	committed bool // a commit succeeded: the worker made progress

	topics map[string]*topicState        // dispatch
	byType map[string]prometheus.Counter // read-only once built: every type event.Validate lets through
}

func newWorker(cfg Config, sink Sink, in input, dlq *deadLetterWriter, log *slog.Logger) *worker {
	w := &worker{
		cfg: cfg, sink: sink, in: in, dlq: dlq, log: log, metrics: cfg.Metrics,
		topics: make(map[string]*topicState, len(cfg.Topics)),
		byType: make(map[string]prometheus.Counter, len(event.Types)),
	}
	for _, t := range cfg.Topics {
		w.topicState(t.Name).decoder = t.Decoder
	}
	for _, typ := range event.Types {
		w.byType[typ] = w.metrics.events.WithLabelValues(typ)
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

// run runs the stages until ctx is done, then waits for all of them. Nothing but ctx ends a stage: failed
// fetches, writes and commits are retried, except a failed unit of a StreamingSink: then run stops every stage
// and reports rewind, and the caller reads again from the committed offsets.
func (w *worker) run(ctx context.Context) (rewind bool) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	runs := make(chan run, runsReady)
	work := make(chan *chunk, w.cfg.DecodeWorkers)
	ordered := make(chan *chunk, 2*w.cfg.DecodeWorkers+1)
	full := make(chan *batch) // unbuffered: a batch is handed over when the output stage is ready for it
	free := make(chan *batch, w.cfg.Writers+1)
	for range w.cfg.Writers + 1 {
		free <- newBatch()
	}
	w.in.read(runs)
	wg.Go(func() { w.dispatch(ctx, runs, work, ordered) })
	for range w.cfg.DecodeWorkers {
		wg.Go(func() { w.decode(ctx, work) })
	}
	wg.Go(func() { w.batch(ctx, ordered, full, free) })
	wg.Go(func() {
		if ss, ok := w.sink.(StreamingSink); ok && w.cfg.Writers == 1 {
			rewind = w.outputStream(ctx, ss, full, free)
			cancel()
			return
		}
		w.output(ctx, full, free)
	})
	wg.Wait()
	return rewind
}

// dispatch is the input stage: it makes each run of messages the partitions' readers send a chunk, and hands it
// to the decoders and the batcher. It also tracks each partition's lag, for the batcher, and times the waits: for
// a run (fetch, waiting for Kafka) and for the pipeline to take a chunk (backpressure).
func (w *worker) dispatch(ctx context.Context, in <-chan run, work, ordered chan<- *chunk) {
	var lag lagTracker
	ready := time.Now() // when the pipeline took the last chunk: waiting for Kafka starts there
	for {
		var r run
		select {
		case r = <-in:
		case <-ctx.Done():
			return
		}
		k := partitionKey{r.topic, r.partition}
		if len(r.msgs) == 0 {
			was := lag.caughtUp()
			if lag.track(k, r.lagging); was || !lag.caughtUp() {
				continue
			}
			// The last partition was read to its end after its last messages were dispatched: an empty chunk
			// tells the batcher.
			c := &chunk{caughtUp: true, decoded: make(chan struct{})}
			close(c.decoded)
			select {
			case ordered <- c:
			case <-ctx.Done():
				return
			}
			continue
		}
		fetched := time.Now()
		w.metrics.stageSeconds.fetch.Add(fetched.Sub(ready).Seconds())
		c := &chunk{msgs: r.msgs, topic: w.topicState(r.topic), decoded: make(chan struct{})}
		c.topic.messages.Add(float64(len(c.msgs)))
		lag.track(k, r.lagging)
		c.caughtUp = lag.caughtUp()
		// The batcher learns the order first; it waits for the chunk to be decoded.
		select {
		case ordered <- c:
		case <-ctx.Done():
			return
		}
		select {
		case work <- c:
		case <-ctx.Done():
			return
		}
		ready = time.Now()
		w.metrics.backpressureSeconds.Add(ready.Sub(fetched).Seconds())
	}
}

// lagTracker knows, per partition being read, whether its latest run ended before the broker's high watermark at
// the time it was fetched. Every partition's reader says it is lagging before it reads anything, so the worker is
// caught up only once every partition it reads was read to its end.
type lagTracker struct {
	lagging map[partitionKey]bool
	behind  int // partitions whose latest run was not the last
}

func (l *lagTracker) track(k partitionKey, lagging bool) {
	if l.lagging == nil {
		l.lagging = make(map[partitionKey]bool)
	}
	if l.lagging[k] {
		l.behind--
	}
	if lagging {
		l.behind++
	}
	l.lagging[k] = lagging
}

func (l *lagTracker) caughtUp() bool { return len(l.lagging) > 0 && l.behind == 0 }

// decode is the processor stage, on DecodeWorkers goroutines. It does not log.
func (w *worker) decode(ctx context.Context, work <-chan *chunk) {
	for {
		select {
		case c := <-work:
			start := time.Now()
			w.decodeChunk(c)
			w.metrics.stageSeconds.decode.Add(time.Since(start).Seconds())
			close(c.decoded)
		case <-ctx.Done():
			return
		}
	}
}

func (w *worker) decodeChunk(c *chunk) {
	c.recEnd = make([]int, len(c.msgs))
	c.deadAt = make([]int, len(c.msgs))
	if r, ok := records.Get().(*[]Record); ok {
		c.records = *r
	} else {
		c.records = make([]Record, 0, chunkSize)
	}
	t := c.topic
	_, canonical := t.decoder.(cloudEvents)
	for i := range c.msgs {
		m := &c.msgs[i]
		c.deadAt[i] = -1
		var evs []event.Event
		err := oversizedOrNil(len(m.Value), w.cfg.MaxMessageBytes)
		if err == nil && canonical {
			// One event per message, decoded in place: no slice to hold it (a few hundred bytes per message for
			// the garbage collector).
			c.records = append(c.records, Record{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset})
			if err = decodeCanonical(&c.records[len(c.records)-1].Event, m.Value); err != nil {
				c.records = c.records[:len(c.records)-1]
			}
		} else if err == nil {
			evs, err = decode(t.decoder, m.Value)
		}
		if err != nil {
			c.deadAt[i] = len(c.dead)
			c.dead = append(c.dead, deadLetter(m, t.dlq, t.decoder.Name(), err))
			c.deadLabels = append(c.deadLabels, deadLabel{topic: m.Topic, reason: reasonOf(err)})
		} else {
			for j := range evs {
				c.records = append(c.records, Record{Event: evs[j], Topic: m.Topic, Partition: m.Partition, Offset: m.Offset})
			}
		}
		c.recEnd[i] = len(c.records)
	}
}

// records recycles the records of chunks: the batch they were moved into holds copies, and a chunk's records are
// most of what a worker allocates per message.
var records sync.Pool

// release hands c's records back once the batcher has moved them all, dropping their references to the messages.
func (c *chunk) release() {
	if c.records != nil {
		r := c.records
		clear(r)
		r = r[:0]
		records.Put(&r)
		c.records = nil
	}
}

// decodeCanonical is decode for the canonical decoder, into ev: event.Decode ends with event.Validate.
func decodeCanonical(ev *event.Event, value []byte) (err error) {
	defer rejectPanic(CloudEvents, &err)
	*ev, err = event.Decode(value)
	return err
}

// rejectPanic, deferred, turns a panic of decoder d into the rejection of its input.
func rejectPanic(d Decoder, err *error) {
	if p := recover(); p != nil {
		*err = fmt.Errorf("decoder %s panicked: %v", d.Name(), p)
	}
}

func oversizedOrNil(size, limit int) error {
	if size > limit {
		return oversized(size, limit)
	}
	return nil
}

// decode runs a decoder and holds its events to the contract. A decoder that panics on some input rejects that
// input: a panic would otherwise restart the worker on the same message forever and block its partition.
func decode(d Decoder, value []byte) (evs []event.Event, err error) {
	defer rejectPanic(d, &err)
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

// batch is the batching stage. A batch is handed to the output stage when it is full, or FlushInterval after its
// first message; while the output stage is busy, it keeps filling up to full. After a full batch (a backlog is being
// read), a batch is also handed over as soon as the worker has caught up and nothing more is waiting: the end of a
// backlog is written at once instead of FlushInterval later. A trickle of messages is caught up all the time; it
// still waits for FlushInterval, so that it is written in batches, not message by message.
func (w *worker) batch(ctx context.Context, ordered <-chan *chunk, full chan<- *batch, free <-chan *batch) {
	b := w.start(<-free)
	defer func() {
		if b != nil && b.prepared != nil {
			b.prepared.Close() // dropped unsent: ctx is done
		}
	}()
	var (
		seq     uint64
		current *chunk // being moved into batches
		flush   = time.NewTimer(time.Hour)
		due     bool // FlushInterval has passed since b's first message, or a backlog was read to its end
		backlog bool // the last batch handed over was full
	)
	flush.Stop()
	defer flush.Stop()
	for {
		if current != nil {
			wasEmpty := b.empty()
			if w.fill(b, current) {
				if current.caughtUp && backlog && !b.empty() && len(ordered) == 0 {
					due = true
				}
				current.release()
				current = nil
			}
			if wasEmpty && !b.empty() {
				flush.Reset(w.cfg.FlushInterval)
			}
		}
		isFull := w.full(b)
		var out chan<- *batch
		if !b.empty() && (due || isFull) {
			out = full
			b.seq, b.quiet = seq, !isFull
		}
		var in <-chan *chunk
		if current == nil && !isFull {
			in = ordered
		}
		select {
		case out <- b:
			seq++
			flush.Stop()
			due, backlog = false, isFull
			b = nil
			select {
			case b = <-free:
				w.start(b)
			case <-ctx.Done():
				return
			}
		case c := <-in:
			select {
			case <-c.decoded:
				current = c
			case <-ctx.Done():
				return
			}
		case <-flush.C:
			due = true
		case <-ctx.Done():
			return // the unwritten batch is dropped: it was not committed, the group gets it again
		}
	}
}

// start readies an empty batch for filling: a PreparingSink builds it from the first record on.
func (w *worker) start(b *batch) *batch {
	if ps, ok := w.sink.(PreparingSink); ok {
		b.prepared = ps.Prepare()
	}
	return b
}

func (w *worker) full(b *batch) bool {
	return b.events+len(b.dead) >= w.cfg.BatchSize || b.bytes >= w.cfg.BatchBytes
}

// fill moves c's messages into b, in order, until b is full; it reports whether c is used up. A message is never
// split: its events all go into one batch, so a fanned-out message may overshoot BatchSize.
func (w *worker) fill(b *batch, c *chunk) bool {
	first := c.next
	for ; c.next < len(c.msgs) && !w.full(b); c.next++ {
		i := c.next
		if d := c.deadAt[i]; d >= 0 {
			b.dead = append(b.dead, c.dead[d])
			b.deadLabels = append(b.deadLabels, c.deadLabels[d])
		} else {
			b.events += c.recEnd[i] - c.recStart(i)
		}
		b.messages++
		b.bytes += len(c.msgs[i].Value)
	}
	if c.next == first {
		return c.next == len(c.msgs)
	}
	// The events of the messages moved are one stretch of c.records (a dead letter has none), added at once.
	evs := c.records[c.recStart(first):c.recEnd[c.next-1]]
	if b.prepared != nil {
		b.prepared.Add(evs)
	} else {
		b.records = append(b.records, evs...)
	}
	for j := range evs {
		b.types[evs[j].Event.Type]++
	}
	// A chunk is one partition's messages in offset order: the last one moved is what a commit acknowledges.
	last := &c.msgs[c.next-1]
	b.offsets.track(last.Topic, last.Partition, last.Offset)
	return c.next == len(c.msgs)
}

// recStart is where message i's events start in c.records.
func (c *chunk) recStart(i int) int {
	if i == 0 {
		return 0
	}
	return c.recEnd[i-1]
}

// output is the output stage. One goroutine seals batches in the order they were cut (PreparingSink), Writers
// goroutines write them (dead letters, then events), and the output goroutine commits them in that same order. A
// batch that ctx ended before it was written is left uncommitted, and so is every batch after it; written batches
// before it are committed with one last bounded attempt.
func (w *worker) output(ctx context.Context, full <-chan *batch, free chan<- *batch) {
	written := make(chan *batch, w.cfg.Writers+1) // never blocks: no more batches exist
	// send writes a sealed batch and hands it to the committer; false when ctx ended the write.
	send := func(b *batch) bool {
		err := w.write(ctx, b)
		w.release(b)
		if err != nil {
			return false // only ctx ends a write early
		}
		written <- b
		return true
	}
	jobs := make(chan *batch)
	var stages sync.WaitGroup
	// With one writer, the sealer writes each batch itself.
	handOff := send
	if w.cfg.Writers > 1 {
		for range w.cfg.Writers {
			stages.Go(func() {
				for {
					select {
					case b := <-jobs:
						if !send(b) {
							return
						}
					case <-ctx.Done():
						return
					}
				}
			})
		}
		handOff = func(b *batch) bool {
			select {
			case jobs <- b:
				return true
			case <-ctx.Done():
				w.release(b)
				return false
			}
		}
	}
	stages.Go(func() { // the sealer
		for {
			select {
			case b := <-full:
				if b.prepared != nil {
					b.prepared.Seal()
				}
				if !handOff(b) {
					return // only ctx ends it early
				}
			case <-ctx.Done():
				return
			}
		}
	})
	next := uint64(0)
	pending := map[uint64]*batch{}
	commitInOrder := func() bool {
		for b := pending[next]; b != nil; b = pending[next] {
			start := time.Now()
			err := w.commit(ctx, b.offsets.msgs)
			w.metrics.stageSeconds.commit.Add(time.Since(start).Seconds())
			if err != nil {
				return false
			}
			delete(pending, next)
			next++
			b.reset()
			free <- b
		}
		return true
	}
	for {
		select {
		case b := <-written:
			pending[b.seq] = b
			if commitInOrder() {
				continue
			}
			stages.Wait()
			return
		case <-ctx.Done():
			stages.Wait()
			for len(written) > 0 {
				b := <-written
				pending[b.seq] = b
			}
			commitInOrder() // ctx is done: commit makes one last bounded attempt
			return
		}
	}
}

// release hands a batch's prepared form back to the sink once it is written, or dropped because ctx ended.
func (w *worker) release(b *batch) {
	if b.prepared != nil {
		b.prepared.Close()
		b.prepared = nil
	}
}

// write writes one batch's dead letters, then its events. It returns an error only when ctx ended first.
func (w *worker) write(ctx context.Context, b *batch) error {
	if err := w.writeDeadLetters(ctx, b); err != nil {
		return err
	}
	if b.events > 0 {
		start := time.Now()
		err := w.writeEvents(ctx, b)
		w.metrics.stageSeconds.write.Add(time.Since(start).Seconds())
		if err != nil {
			return err
		}
	}
	return nil
}

// writeDeadLetters writes one batch's dead letters (and observes its size). It returns an error only when ctx ended
// first.
func (w *worker) writeDeadLetters(ctx context.Context, b *batch) error {
	w.metrics.batchBytes.Observe(float64(b.bytes))
	if len(b.dead) == 0 {
		return nil
	}
	start := time.Now()
	err := w.dlq.write(ctx, b.dead)
	w.metrics.stageSeconds.deadLetter.Add(time.Since(start).Seconds())
	if err != nil {
		return err
	}
	for _, l := range b.deadLabels {
		w.metrics.deadLetters.WithLabelValues(l.topic, string(l.reason)).Inc()
	}
	return nil
}

// writeEvents hands b's events to the sink until it takes them.
func (w *worker) writeEvents(ctx context.Context, b *batch) error {
	for attempt := 1; ; attempt++ {
		start := time.Now()
		var err error
		if b.prepared != nil {
			err = b.prepared.Send(ctx)
		} else {
			err = w.sink.Write(ctx, b.records)
		}
		if err != nil && ctx.Err() != nil {
			return ctx.Err() // stopping, not a sink failure
		}
		w.metrics.batchWriteDuration.Observe(time.Since(start).Seconds())
		if err == nil {
			w.metrics.batches.Inc()
			w.countTypes(b.types)
			return nil
		}
		w.metrics.writeErrors.Inc()
		delay := backoff(attempt)
		w.log.Warn("sink write failed; retrying the same batch, its offsets stay uncommitted until it succeeds",
			"attempt", attempt, "events", b.events, "retry_in", delay, "err", err)
		if !sleep(ctx, delay) {
			return ctx.Err()
		}
	}
}

// countTypes adds a written batch's events to leadthrough_ingest_events_total: one Add per type, not one per event.
func (w *worker) countTypes(types map[string]int) {
	for typ, n := range types {
		w.byType[typ].Add(float64(n))
	}
}

// commit acknowledges a written batch's messages: per partition, everything up to its highest offset in the batch.
func (w *worker) commit(ctx context.Context, offsets []kafka.Message) error {
	for attempt := 1; ; attempt++ {
		err := w.commitOnce(ctx, offsets)
		if err == nil {
			w.metrics.lastCommit.SetToCurrentTime()
			w.committed = true
			return nil
		}
		if ctx.Err() != nil {
			// Stopping with a written batch: one last bounded attempt spares its redelivery after the restart.
			if err = w.commitOnce(context.WithoutCancel(ctx), offsets); err == nil {
				w.metrics.lastCommit.SetToCurrentTime()
				return nil
			}
			w.log.Warn("stopping with a written batch whose offsets are not committed; it will be redelivered", "err", err)
			return ctx.Err()
		}
		w.metrics.commitErrors.Inc()
		delay := backoff(attempt)
		w.log.Warn("offset commit failed; retrying", "attempt", attempt, "partitions", len(offsets), "retry_in", delay, "err", err)
		if !sleep(ctx, delay) {
			continue // the next attempt sees ctx done and makes the last bounded attempt
		}
	}
}

func (w *worker) commitOnce(ctx context.Context, offsets []kafka.Message) error {
	ctx, cancel := context.WithTimeout(ctx, commitTimeout)
	defer cancel()
	return w.in.CommitMessages(ctx, offsets...)
}
