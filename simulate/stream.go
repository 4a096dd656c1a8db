package simulate

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/leadthrough/leadthrough/event"
)

// Stats counts the events Stream passed to emit.
type Stats struct {
	Events     int // all of them, redelivered copies included
	Late       int // events delivered late (ShuffleRatio)
	Duplicates int // redelivered copies (DuplicateRatio)
}

// Distinct is the number of distinct events, by source and id, among those emitted.
func (s Stats) Distinct() int { return s.Events - s.Duplicates }

// Stream simulates the organisation described by cfg like Generate, and passes each event to emit as soon as its
// place in the output is settled: exactly Generate's events in Generate's order. It first plays the deals once
// without emitting anything, then generates again and emits as it goes.
//
// Memory is bounded by the events in flight, those already generated for the deals open at the time being
// emitted, which depends on the size of the organisation but not on the length of the period. For n events,
// DuplicateRatio and ShuffleRatio add a table of 4 bytes per event while Stream starts, then a bit per event and
// 12 bytes per copy, and hold each event they move or copy until its place comes, up to max(10, n/20) events
// later: with ratios 0.1 and 0.05, about n/250 events at a time; with a ShuffleRatio close to 1, nearly all.
//
// An invalid cfg is reported before anything is emitted, with an error that wraps ErrInvalidConfig. Generation
// stops at the first error emit returns, or when ctx is done, and Stream returns that error. Stats tell what was
// emitted until then.
func Stream(ctx context.Context, cfg Config, emit func(event.Event) error) (Stats, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return Stats{}, err
	}
	return run(ctx, cfg, emit)
}

// setupStream selects the random stream of the set-up, deals and routines, for a seed (the delivery extras have
// their own).
const setupStream = 0x1ead_7404

// item is an event being built; phase and seq break ties between equal times, so the order never depends on
// sorting details: the set-up's events first, then the deals' in the order played, then the routines'.
type item struct {
	phase, seq int
	ev         event.Event
	ref        dealRef // to complete ev when it is released
}

// run generates in two passes. Generating one stream at a time, as the scenario was defined, the set-up draws
// from the random stream first, then every deal, then the manager routines, week after week; so the routines'
// draws begin where the last deal's end. The first pass plays every deal, keeping nothing, to find that point
// (and counts the events when the delivery extras need their number before the first one goes out). The second
// pass plays deals and routine weeks interleaved in time, each generator with its own copy of the stream, and
// releases each event once neither can still produce an earlier one: a deal's events are never before its
// opening, and deals are played in the order opened; a week's are never before its Monday 08:00.
func run(ctx context.Context, cfg Config, emit func(event.Event) error) (Stats, error) {
	o := &company{cfg: cfg, start: cfg.End.Add(-time.Duration(cfg.Days) * day), end: cfg.End}
	src := rand.NewPCG(cfg.Seed, setupStream)
	var setup []item
	g := newGen(o, src, 0, func(it item) { setup = append(setup, it) })
	g.buildOrg()
	plans := g.planArrivals(src)
	dealsFrom := *src

	// First pass.
	s := dealsFrom
	dg := newGen(o, &s, 1, nil)
	for ops := newOpenings(o, plans); ; {
		if err := ctx.Err(); err != nil {
			return Stats{}, err
		}
		if _, ok := ops.peek(); !ok {
			break
		}
		dg.playDeal(ops.pop())
	}
	routinesFrom := s
	total := g.added + dg.added
	if cfg.ShuffleRatio > 0 || cfg.DuplicateRatio > 0 {
		// Which deal a review or joint call is about changes neither what is drawn nor how many events there are,
		// so the routines can be counted without the deals.
		s := routinesFrom
		rt := newRoutines(newGen(o, &s, 2, nil))
		for !rt.done() {
			rt.playWeek()
		}
		total += rt.g.added
	}

	var stats Stats
	out, err := newDelivery(cfg, total, &stats, emit)
	if err != nil {
		return stats, err
	}
	sorted := &sorter{out: out, base: o.start.Add(-day), refs: map[int64]dealRef{}}
	for _, it := range setup {
		sorted.push(it)
	}

	// Second pass.
	s1, s2 := dealsFrom, routinesFrom
	dg = newGen(o, &s1, 1, sorted.push)
	dg.spans = true
	rt := newRoutines(newGen(o, &s2, 2, sorted.push))
	ops := newOpenings(o, plans)
	for {
		if err := ctx.Err(); err != nil {
			return stats, err
		}
		next, deals := ops.peek()
		switch {
		case deals && (rt.done() || next.Before(rt.from())):
			dg.playDeal(ops.pop())
		case !rt.done():
			// A routine released from now on asks about a time at most 90 minutes before its own.
			o.dropSpans(sorted.last.Add(-2 * time.Hour))
			rt.playWeek()
		default:
			return stats, sorted.release(ctx, time.Time{}, true)
		}
		var until time.Time
		if next, deals = ops.peek(); deals {
			until = next
		}
		if !rt.done() && (!deals || rt.from().Before(until)) {
			until = rt.from()
		}
		if err := sorted.release(ctx, until, !deals && rt.done()); err != nil {
			return stats, err
		}
	}
}

// sorter holds generated events until their turn, then completes, numbers, checks and passes them on in time
// order.
type sorter struct {
	q          queue[event.Event]
	base       time.Time         // times are kept as offsets from base, a day before the period
	refs       map[int64]dealRef // by the tie-breaking part of the key, for events completed on release
	last       time.Time         // of the latest event released
	events     int
	activities int
	out        func(event.Event) error
}

func (s *sorter) push(it item) {
	k := qkey{a: int64(it.ev.Time.Sub(s.base)), b: int64(it.phase)<<48 | int64(it.seq)}
	if it.ref.rep != nil {
		s.refs[k.b] = it.ref
	}
	s.q.push(k, it.ev)
}

// release passes on the events before until, or all of them, unless ctx is done.
func (s *sorter) release(ctx context.Context, until time.Time, all bool) error {
	before := int64(until.Sub(s.base))
	for s.q.len() > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		k := s.q.top()
		if !all && k.a >= before {
			return nil
		}
		ev := s.q.pop()
		if ref, ok := s.refs[k.b]; ok {
			delete(s.refs, k.b)
			ref.resolve(&ev.Data)
		}
		s.last = ev.Time
		s.events++
		ev.ID = eventID(s.events)
		if ev.Type == event.ActivityLogged {
			s.activities++
			ev.Data.ActivityID = activityID(s.activities)
		}
		if err := event.Validate(ev); err != nil {
			return fmt.Errorf("simulate: generated an invalid %s event %s: %w", ev.Type, ev.ID, err)
		}
		if err := s.out(ev); err != nil {
			return err
		}
	}
	return nil
}

// queue is a min-heap of values by key, with four children per node. The values stay in place, in fixed-size
// chunks that are never copied, and sifting moves only keys.
type queue[T any] struct {
	keys   []qkey
	chunks [][]T
	free   []int32 // slots to reuse
	slots  int32   // slots ever used
}

// qkey orders the queue by a, then b.
type qkey struct {
	a, b int64
	slot int32
}

const chunkBits = 12

func (k qkey) less(o qkey) bool { return k.a < o.a || k.a == o.a && k.b < o.b }

func (q *queue[T]) len() int  { return len(q.keys) }
func (q *queue[T]) top() qkey { return q.keys[0] }

func (q *queue[T]) at(slot int32) *T { return &q.chunks[slot>>chunkBits][slot&(1<<chunkBits-1)] }

func (q *queue[T]) push(k qkey, v T) {
	if n := len(q.free); n > 0 {
		k.slot = q.free[n-1]
		q.free = q.free[:n-1]
	} else {
		if int(q.slots>>chunkBits) == len(q.chunks) {
			q.chunks = append(q.chunks, make([]T, 1<<chunkBits))
		}
		k.slot = q.slots
		q.slots++
	}
	*q.at(k.slot) = v
	q.keys = append(q.keys, k)
	i := len(q.keys) - 1
	for i > 0 {
		p := (i - 1) / 4
		if !k.less(q.keys[p]) {
			break
		}
		q.keys[i] = q.keys[p]
		i = p
	}
	q.keys[i] = k
}

// pop removes and returns the value with the least key.
func (q *queue[T]) pop() T {
	slot := q.keys[0].slot
	p := q.at(slot)
	v := *p
	var zero T
	*p = zero
	q.free = append(q.free, slot)
	n := len(q.keys) - 1
	k := q.keys[n]
	q.keys = q.keys[:n]
	if n == 0 {
		return v
	}
	i := 0
	for {
		c := 4*i + 1
		if c >= n {
			break
		}
		m := c
		for j := c + 1; j < min(c+4, n); j++ {
			if q.keys[j].less(q.keys[m]) {
				m = j
			}
		}
		if !q.keys[m].less(k) {
			break
		}
		q.keys[i] = q.keys[m]
		i = m
	}
	q.keys[i] = k
	return v
}
