package store

import (
	"context"
	"fmt"
	"time"

	"github.com/leadthrough/leadthrough/indicator"
)

// Attribution is one deal closed in a window with the people DESIGN.md attributes it to.
type Attribution struct {
	DealID    string
	CloseTime time.Time // t_c, the last close
	Won       bool
	Amount    float64 // the close event's amount, else the latest known at t_c, else 0
	CloserID  string  // C(d): owner at t_c
	RepID     string  // R(d): last owner at or before t_c who was a rep when they became owner; "" if none
	ManagerID string  // M(d): team manager; "" when the deal cannot be attributed
	TakenOver bool    // M(d) took the deal over before t_c
}

// dealAttributionQuery lists the deals closed in the window (@start, @as_of] with their attribution.
const dealAttributionQuery = `
SELECT deal_id, tc, won, amount, closer, rep, manager, taken
FROM {{attribution}}
WHERE closed AND tc > @start AND tc <= @as_of
ORDER BY tc, deal_id`

var expandedAttribution = expand(dealAttributionQuery)

// DealAttribution returns every deal closed in the window (p.AsOf − p.Window, p.AsOf], ordered by close time.
func (s *Store) DealAttribution(ctx context.Context, p indicator.Params) ([]Attribution, error) {
	p = p.WithDefaults()
	if err := p.Validate(); err != nil {
		return nil, err
	}
	rows, err := s.conn.Query(ctx, expandedAttribution, params(p)...)
	if err != nil {
		return nil, fmt.Errorf("query deal attribution: %w", err)
	}
	defer rows.Close()
	var out []Attribution
	for rows.Next() {
		var a Attribution
		var tc int64
		var won, taken uint8
		if err := rows.Scan(&a.DealID, &tc, &won, &a.Amount, &a.CloserID, &a.RepID, &a.ManagerID, &taken); err != nil {
			return nil, fmt.Errorf("scan deal attribution: %w", err)
		}
		a.CloseTime, a.Won, a.TakenOver = time.UnixMilli(tc).UTC(), won == 1, taken == 1
		out = append(out, a)
	}
	return out, rows.Err()
}
