package simulate

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/leadthrough/leadthrough/event"
)

// The delivery extras disturb the time-ordered events as they pass, the way a batch of all n of them was once
// disturbed: ShuffleRatio moves round(ratio·n) events, never the last, to a later position, each after at least one
// of the events that stayed in place and originally followed it, at most max(10, n/20) of those later, and events
// that stay keep their relative order; DuplicateRatio then re-emits round(ratio·n) distinct events verbatim, each
// copy somewhere after its original, at most max(10, n/20) events later. Both draw from a stream of their own, so
// they never change the scenario itself: first the choice of moved events (a permutation of n−1), then each moved
// event's landing place in output order, then the choice of duplicated events (a permutation of n), then each
// copy's place, in the permutation's order.
//
// The permutations are drawn up front, into a table of 4 bytes per event; what must be known of them is kept (a bit
// per event, and 12 bytes per duplicate), and the events moved or copied are held back until their place comes.

// newDelivery returns the function that takes the n time-ordered events, one after the other, applies the delivery
// extras and passes the result to emit, counting it in stats.
func newDelivery(cfg Config, n int, stats *Stats, emit func(event.Event) error) (func(event.Event) error, error) {
	out := func(ev event.Event) error {
		stats.Events++
		return emit(ev)
	}
	late := min(int(math.Round(cfg.ShuffleRatio*float64(n))), n-1)
	dups := int(math.Round(cfg.DuplicateRatio * float64(n)))
	if late <= 0 && dups <= 0 {
		return out, nil
	}
	if n > math.MaxUint32 {
		return nil, fmt.Errorf("simulate: %d events are too many for ShuffleRatio or DuplicateRatio (at most %d)", n, uint64(math.MaxUint32))
	}
	maxShift := max(10, n/20)
	src := rand.NewPCG(cfg.Seed, 0xde11_7e47)
	rng := rand.New(src)
	var table []uint32
	var ls *lateStage
	if late > 0 {
		table = perm(rng, n-1, table)
		ls = &lateStage{n: n, k: late, maxShift: maxShift, moved: make([]uint64, (n+63)/64), stats: stats}
		for _, i := range table[:late] {
			ls.moved[i/64] |= 1 << (i % 64)
		}
		state := *src
		ls.rng = rand.New(&state)
		// Skip the draws the stage will make for the landing places.
		kept := 0
		for i := range n - 1 {
			if ls.isMoved(i) {
				rng.IntN(min(maxShift, n-late-kept))
			} else {
				kept++
			}
		}
	}
	var ds *dupStage
	if dups > 0 {
		table = perm(rng, n, table)
		ds = &dupStage{copies: make([]dupCopy, dups), stats: stats}
		for r, i := range table[:dups] {
			at := min(n-1, int(i)+rng.IntN(maxShift))
			ds.copies[r] = dupCopy{of: i, at: uint32(at), rank: uint32(r)}
		}
		slices.SortFunc(ds.copies, func(a, b dupCopy) int { return cmp.Compare(a.of, b.of) })
		ds.out = out
		out = ds.put
	}
	if ls != nil {
		ls.out = out
		out = ls.put
	}
	return out, nil
}

// perm returns the permutation rng.Perm(n) returns, drawing exactly the same numbers, in buf's storage if it is
// large enough.
func perm(rng *rand.Rand, n int, buf []uint32) []uint32 {
	p := slices.Grow(buf[:0], n)[:n]
	for i := range p {
		p[i] = uint32(i)
	}
	rng.Shuffle(n, func(i, j int) { p[i], p[j] = p[j], p[i] })
	return p
}

// lateStage moves the chosen events later.
type lateStage struct {
	n, k, maxShift int
	moved          []uint64 // bit set of the indexes of the events to move
	rng            *rand.Rand
	in, kept       int                // events taken, and among them those that stayed in place
	held           queue[event.Event] // moved events by (index among the kept events to land after, arrival)
	arrivals       int64
	stats          *Stats
	out            func(event.Event) error
}

func (s *lateStage) isMoved(i int) bool { return s.moved[i/64]&(1<<(i%64)) != 0 }

func (s *lateStage) put(ev event.Event) error {
	i := s.in
	s.in++
	if i < s.n-1 && s.isMoved(i) {
		// The next kept event is the first that originally followed ev; land after it or a later one.
		first := s.kept
		pos := first + s.rng.IntN(min(s.maxShift, s.n-s.k-first))
		s.held.push(qkey{a: int64(pos), b: s.arrivals}, ev)
		s.arrivals++
		return nil
	}
	j := int64(s.kept)
	s.kept++
	if err := s.out(ev); err != nil {
		return err
	}
	for s.held.len() > 0 && s.held.top().a == j {
		s.stats.Late++
		if err := s.out(s.held.pop()); err != nil {
			return err
		}
	}
	return nil
}

// dupStage re-emits the chosen events.
type dupStage struct {
	copies []dupCopy // by original's index
	next   int       // in copies
	in     int
	held   queue[event.Event] // copies by (index of the event to follow, rank)
	stats  *Stats
	out    func(event.Event) error
}

type dupCopy struct {
	of, at uint32 // index of the original; index of the event the copy follows
	rank   uint32 // position in the permutation: orders copies that follow the same event
}

func (s *dupStage) put(ev event.Event) error {
	i := s.in
	s.in++
	if err := s.out(ev); err != nil {
		return err
	}
	if s.next < len(s.copies) && int(s.copies[s.next].of) == i {
		c := s.copies[s.next]
		s.next++
		s.held.push(qkey{a: int64(c.at), b: int64(c.rank)}, clone(ev))
	}
	for s.held.len() > 0 && s.held.top().a == int64(i) {
		s.stats.Duplicates++
		if err := s.out(s.held.pop()); err != nil {
			return err
		}
	}
	return nil
}

// clone copies ev deeply, so a duplicate shares no memory with its original.
func clone(ev event.Event) event.Event {
	d := &ev.Data
	if d.ManagerID != nil {
		d.ManagerID = event.Ptr(*d.ManagerID)
	}
	if d.Amount != nil {
		d.Amount = event.Ptr(*d.Amount)
	}
	if d.DurationMinutes != nil {
		d.DurationMinutes = event.Ptr(*d.DurationMinutes)
	}
	d.SubjectUserIDs = slices.Clone(d.SubjectUserIDs)
	return ev
}
