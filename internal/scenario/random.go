// Package scenario generates small random CRM histories that stress the indicator definitions: multi-level and
// changing reporting lines, deactivations, takeovers and handoffs, reopened and deleted deals, missing amounts,
// events at identical times, late events past as-of, and duplicated events. Tests feed the same events to the
// reference model and to ClickHouse and compare.
package scenario

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/leadthrough/leadthrough/event"
)

// Random returns a random event history around asOf, in random order, with some duplicates.
func Random(seed uint64, asOf time.Time) []event.Event {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	g := &gen{r: r, asOf: asOf, source: "crm/test"}
	nUsers := 4 + r.IntN(8)
	users := make([]string, nUsers)
	for i := range users {
		users[i] = fmt.Sprintf("U%d", i+1)
		if r.IntN(5) > 0 {
			g.emit(event.UserUpserted, g.when(), event.Data{UserID: users[i], Name: fmt.Sprintf("User %d", i+1)})
		}
	}
	// Reporting lines: an initial tree (users[0] on top), then random changes, some at the same instant.
	bossOf := map[string]string{}
	for i := 1; i < nUsers; i++ {
		boss := users[r.IntN(i)]
		bossOf[users[i]] = boss
		g.emit(event.UserManagerChanged, g.early(), event.Data{UserID: users[i], ManagerID: event.Ptr(boss)})
	}
	for range r.IntN(nUsers * 2) {
		u := users[r.IntN(nUsers)]
		switch r.IntN(6) {
		case 0:
			g.emit(event.UserManagerChanged, g.when(), event.Data{UserID: u})
		case 1:
			g.emit(event.UserDeactivated, g.when(), event.Data{UserID: u})
		default:
			m := users[r.IntN(nUsers)]
			if m != u {
				g.emit(event.UserManagerChanged, g.when(), event.Data{UserID: u, ManagerID: event.Ptr(m)})
			}
		}
	}
	nDeals := 5 + r.IntN(40)
	for d := range nDeals {
		id := fmt.Sprintf("D%d", d+1)
		t := g.when()
		owner := users[r.IntN(nUsers)]
		data := event.Data{DealID: id, OwnerID: owner}
		if r.IntN(3) > 0 {
			data.Amount = event.Ptr(float64(100 * (1 + r.IntN(50))))
		}
		if r.IntN(10) > 0 { // some deals are never created: events arrive for an unknown deal
			g.emit(event.DealCreated, t, data)
		}
		for range r.IntN(6) {
			t = t.Add(time.Duration(r.IntN(72)) * time.Hour)
			switch k := r.IntN(10); {
			case k < 4:
				g.emit(event.DealOwnerChanged, t, event.Data{DealID: id, OwnerID: users[r.IntN(nUsers)],
					PreviousOwnerID: users[r.IntN(nUsers)]}) // deliberately often stale
			case k < 6:
				outcome := event.OutcomeLost
				if r.IntN(2) == 0 {
					outcome = event.OutcomeWon
				}
				c := event.Data{DealID: id, Outcome: outcome}
				if r.IntN(2) == 0 {
					c.Amount = event.Ptr(float64(100 * (1 + r.IntN(50))))
				}
				g.emit(event.DealClosed, t, c)
			case k < 7:
				g.emit(event.DealReopened, t, event.Data{DealID: id})
			case k < 8:
				g.emit(event.DealAmountChanged, t, event.Data{DealID: id, Amount: event.Ptr(float64(50 * r.IntN(100)))})
			case k < 9:
				g.emit(event.DealStageChanged, t, event.Data{DealID: id, Stage: "proposal"})
			default:
				if r.IntN(4) == 0 {
					g.emit(event.DealDeleted, t, event.Data{DealID: id})
				}
			}
		}
		if boss := bossOf[owner]; boss != "" && r.IntN(2) == 0 {
			// Likely a takeover: the creator's manager in the initial tree takes the deal, then often closes it.
			t = t.Add(time.Duration(1+r.IntN(48)) * time.Hour)
			g.emit(event.DealOwnerChanged, t, event.Data{DealID: id, OwnerID: boss, ChangedBy: boss})
			if r.IntN(2) == 0 {
				g.emit(event.DealClosed, t.Add(time.Duration(r.IntN(72))*time.Hour),
					event.Data{DealID: id, Outcome: []string{event.OutcomeWon, event.OutcomeLost}[r.IntN(2)]})
			}
		}
	}
	kinds := append([]string{"call", "email", "meeting"}, event.DefaultCoachingKinds...)
	for a := range r.IntN(40) {
		// Mostly a manager (in the initial tree) with one of their reports, sometimes anyone with anyone.
		subject := users[1+r.IntN(nUsers-1)]
		actor := bossOf[subject]
		if r.IntN(4) == 0 {
			actor = users[r.IntN(nUsers)]
		}
		subjects := []string{subject}
		if r.IntN(3) == 0 {
			subjects = append(subjects, users[r.IntN(nUsers)])
		}
		g.emit(event.ActivityLogged, g.when(), event.Data{ActivityID: fmt.Sprintf("A%d", a+1),
			Kind: kinds[r.IntN(len(kinds))], ActorID: actor, SubjectUserIDs: subjects})
	}
	// Duplicates, then arrival order shuffled.
	for range len(g.out) / 10 {
		g.out = append(g.out, g.out[r.IntN(len(g.out))])
	}
	r.Shuffle(len(g.out), func(i, j int) { g.out[i], g.out[j] = g.out[j], g.out[i] })
	return g.out
}

type gen struct {
	r      *rand.Rand
	asOf   time.Time
	source string
	out    []event.Event
	n      int
}

// when is a random time from 100 days before asOf to 10 days after, on whole hours (so ties happen) or with
// milliseconds.
func (g *gen) when() time.Time {
	t := g.asOf.Add(-100 * 24 * time.Hour).Add(time.Duration(g.r.IntN(110*24)) * time.Hour)
	if g.r.IntN(4) == 0 {
		t = t.Add(time.Duration(g.r.IntN(3_600_000)) * time.Millisecond)
	}
	return t
}

func (g *gen) early() time.Time {
	return g.asOf.Add(-200 * 24 * time.Hour).Add(time.Duration(g.r.IntN(48)) * time.Hour)
}

func (g *gen) emit(typ string, t time.Time, d event.Data) {
	g.n++
	g.out = append(g.out, event.Event{Source: g.source, ID: fmt.Sprintf("e%04d", g.n), Type: typ, Time: t.UTC(), Data: d})
}
