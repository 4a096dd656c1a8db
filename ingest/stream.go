package ingest

import (
	"context"
	"time"
)

// A unit of a StreamingSink ends as soon as a batch was cut before it was full (by FlushInterval, or at the end of a
// backlog: nothing is worth waiting for), and at the latest once it holds unitMaxMessages messages or unitMaxAge after its first batch. The
// larger the unit, the fewer and larger the parts ClickHouse writes for a backlog; the bounds keep the offsets
// committed often enough that a restart reads little again.
const (
	unitMaxMessages = 1_000_000
	unitMaxAge      = 5 * time.Second
)

// unit is what the output stage has written to the open Stream (or batch by batch) and not committed yet.
type unit struct {
	st       Stream
	offsets  offsets
	types    map[string]int
	batches  int // with events
	messages int
}

func (w *worker) newUnit() *unit {
	return &unit{offsets: newOffsets(), types: make(map[string]int, len(w.byType))}
}

func (u *unit) empty() bool { return u.messages == 0 }

func (u *unit) add(b *batch) {
	for _, o := range b.offsets.msgs {
		u.offsets.track(o.Topic, o.Partition, o.Offset)
	}
	for typ, n := range b.types {
		u.types[typ] += n
	}
	if b.events > 0 {
		u.batches++
	}
	u.messages += b.messages
}

func (u *unit) reset() {
	u.st = nil
	u.offsets.reset()
	clear(u.types)
	u.batches, u.messages = 0, 0
}

// unitEnd is the outcome of endUnit.
type unitEnd struct{ ok, rewind bool }

// outputStream is the output stage for a StreamingSink with one writer. It writes each batch's dead letters, then
// streams its events into the open unit, and hands the batch back to the batcher at once: memory does not grow
// with the unit. When the unit ends, a goroutine closes it and commits its offsets while the next unit fills (the
// close is when ClickHouse does the last of an insert's work); the next unit ends only after that commit, so units
// are committed in order. A batch or unit the sink fails to take is not retried here: outputStream aborts the unit
// and reports rewind, and the worker reads everything uncommitted again (the dead letters written meanwhile are
// produced again, as after any redelivery). It returns false when ctx ended.
func (w *worker) outputStream(ctx context.Context, ss StreamingSink, full <-chan *batch, free chan<- *batch) (rewind bool) {
	u, next := w.newUnit(), w.newUnit()
	var closing chan unitEnd // the outcome of the unit closing in the background, if one is
	settle := func(r unitEnd) bool {
		closing = nil
		rewind = rewind || r.rewind
		return r.ok
	}
	// closed waits for the unit closing in the background; false when its close or commit failed.
	closed := func() bool { return closing == nil || settle(<-closing) }
	defer func() {
		if u.st != nil {
			u.st.Abort() // not closed: nothing of it is committed
		}
		closed()
	}()
	age := time.NewTimer(time.Hour)
	age.Stop()
	defer age.Stop()
	end := func() bool {
		age.Stop()
		if !closed() {
			return false
		}
		if u.empty() {
			return true
		}
		done, ending := make(chan unitEnd, 1), u
		go func() {
			var r unitEnd
			r.ok, r.rewind = w.endUnit(ctx, ending)
			done <- r
		}()
		closing, u, next = done, next, ending
		return true
	}
	for {
		select {
		case b := <-full:
			if b.prepared != nil {
				b.prepared.Seal()
			}
			if u.empty() {
				age.Reset(unitMaxAge)
			}
			ok, again := w.streamBatch(ctx, ss, u, b)
			w.release(b)
			if !ok {
				return again
			}
			quiet := b.quiet
			u.add(b)
			b.reset()
			free <- b
			// Without a stream (the sink could not open one) the batch was written on its own: commit it now.
			if (quiet || u.messages >= unitMaxMessages || u.st == nil) && !end() {
				return rewind
			}
		case <-age.C:
			if !end() {
				return rewind
			}
		case r := <-closing: // a failure must not wait for the next unit to end: there may be none
			if !settle(r) {
				return rewind
			}
		case <-ctx.Done():
			return false
		}
	}
}

// streamBatch writes b's dead letters, then adds its events to the unit, opening a stream for the unit's first
// events. ok is false when ctx ended or the sink failed (rewind).
func (w *worker) streamBatch(ctx context.Context, ss StreamingSink, u *unit, b *batch) (ok, rewind bool) {
	if err := w.writeDeadLetters(ctx, b); err != nil {
		return false, false
	}
	if b.events == 0 {
		return true, false
	}
	if u.st == nil {
		st, streaming, err := w.openStream(ctx, ss)
		if err != nil {
			return false, false
		}
		if !streaming { // written on its own, retried in place; the unit ends with it
			return w.writeEvents(ctx, b) == nil, false
		}
		u.st = st
	}
	start := time.Now()
	err := u.st.Write(b.prepared)
	w.metrics.stageSeconds.write.Add(time.Since(start).Seconds())
	w.metrics.batchWriteDuration.Observe(time.Since(start).Seconds())
	if err != nil {
		if ctx.Err() != nil {
			return false, false
		}
		w.metrics.writeErrors.Inc()
		w.log.Warn("streaming a batch into the sink failed; reading again from the last committed offsets",
			"events", b.events, "err", err)
		return false, true
	}
	return true, false
}

// openStream opens a stream, retrying until it succeeds or ctx ends.
func (w *worker) openStream(ctx context.Context, ss StreamingSink) (Stream, bool, error) {
	for attempt := 1; ; attempt++ {
		st, ok, err := ss.OpenStream(ctx)
		if err == nil {
			return st, ok, nil
		}
		if ctx.Err() != nil {
			return nil, false, ctx.Err()
		}
		w.metrics.writeErrors.Inc()
		delay := backoff(attempt)
		w.log.Warn("opening an insert failed; retrying, the offsets of what is read meanwhile stay uncommitted",
			"attempt", attempt, "retry_in", delay, "err", err)
		if !sleep(ctx, delay) {
			return nil, false, ctx.Err()
		}
	}
}

// endUnit closes the unit's stream and commits its offsets. ok is false when ctx ended or closing failed (rewind).
func (w *worker) endUnit(ctx context.Context, u *unit) (ok, rewind bool) {
	if u.empty() {
		return true, false
	}
	if u.st != nil {
		start := time.Now()
		err := u.st.Close()
		w.metrics.stageSeconds.write.Add(time.Since(start).Seconds())
		u.st = nil
		if err != nil {
			if ctx.Err() != nil {
				return false, false
			}
			w.metrics.writeErrors.Inc()
			w.log.Warn("an insert failed; reading again from the last committed offsets", "messages", u.messages, "err", err)
			return false, true
		}
		w.metrics.batches.Add(float64(u.batches))
		w.countTypes(u.types)
	}
	start := time.Now()
	err := w.commit(ctx, u.offsets.msgs)
	w.metrics.stageSeconds.commit.Add(time.Since(start).Seconds())
	if err != nil {
		return false, false
	}
	u.reset()
	return true, false
}
