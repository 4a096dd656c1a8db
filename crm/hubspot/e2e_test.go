package hubspot_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/leadthrough/leadthrough/crm/hubspot"
	"github.com/leadthrough/leadthrough/event"
	"github.com/leadthrough/leadthrough/indicator"
	"github.com/leadthrough/leadthrough/ingest"
	"github.com/leadthrough/leadthrough/internal/pipelinetest"
)

// webhook is one HubSpot subscription event as HubSpot posts it.
type webhook struct {
	EventID          int64   `json:"eventId"`
	SubscriptionID   int64   `json:"subscriptionId"`
	PortalID         int64   `json:"portalId"`
	AppID            int64   `json:"appId"`
	OccurredAt       int64   `json:"occurredAt"`
	SubscriptionType string  `json:"subscriptionType"`
	AttemptNumber    int     `json:"attemptNumber"`
	ObjectID         int64   `json:"objectId,omitempty"`
	PropertyName     string  `json:"propertyName,omitempty"`
	PropertyValue    *string `json:"propertyValue,omitempty"`
	ChangeSource     string  `json:"changeSource"`
	SourceID         string  `json:"sourceId,omitempty"`
}

const (
	portal  = 12345678
	manager = "101" // HubSpot owner ids double as leadthrough user ids
	rep     = "201"
	dealA   = 40001 // the rep's deal the manager takes over and wins
	dealB   = 40002 // the rep wins alone
)

func at(month time.Month, day, hour int) int64 {
	return time.Date(2026, month, day, hour, 0, 0, 0, time.UTC).UnixMilli()
}

var nextEventID int64 = 900

// change is a deal.propertyChange of deal at t made by HubSpot user byUser.
func change(t int64, deal int64, prop, value, byUser string) webhook {
	nextEventID++
	return webhook{EventID: nextEventID, SubscriptionID: 7, PortalID: portal, AppID: 3, OccurredAt: t,
		SubscriptionType: "deal.propertyChange", ObjectID: deal, PropertyName: prop, PropertyValue: &value,
		ChangeSource: "CRM_UI", SourceID: "userId:" + byUser}
}

// created is the deal.creation of deal at t; like HubSpot's, it carries no properties.
func created(t int64, deal int64) webhook {
	nextEventID++
	return webhook{EventID: nextEventID, SubscriptionID: 5, PortalID: portal, AppID: 3, OccurredAt: t,
		SubscriptionType: "deal.creation", ObjectID: deal, ChangeSource: "CRM_UI"}
}

func batch(t *testing.T, ws ...webhook) kafka.Message {
	t.Helper()
	body, err := json.Marshal(ws)
	if err != nil {
		t.Fatal(err)
	}
	return kafka.Message{Key: []byte(fmt.Sprint(portal)), Value: body}
}

// TestEndToEndHubSpotTakeoverThroughKafkaAndClickHouse publishes raw HubSpot webhook bodies to one topic and the
// reporting line as canonical events to another, runs the real ingest worker into a fresh ClickHouse database, and
// checks the manager's indicators against a hand computation. The takeover arrives as a hubspot_owner_id change
// carrying only the new owner: the previous owner must come from the deal's own history.
//
// Scenario (window (2026-03-01, 2026-03-31]; rep 201 reports to manager 101 from Jan 1):
//
//	batch 1, Mar 2:  deal A created with owner 201 and amount 5000 (+ a contact.creation, ignored)
//	                 → deal.created(201), deal.owner_changed(201), deal.amount_changed(5000)
//	batch 2, Mar 3:  deal B created with owner 201 and amount 1000 → the same three events
//	batch 3, Mar 9:  deal A hubspot_owner_id → 101 (only the new owner) → deal.owner_changed(101)
//	batch 4, Mar 12: deal A dealstage → closedwon → deal.stage_changed, deal.closed(won)
//	batch 5, Mar 13: deal B dealstage → closedwon → deal.stage_changed, deal.closed(won)
//	batch 6:         HubSpot's retry of batch 3 (attemptNumber 1) → the same id: stored once
//	batch 7:         an element without objectId → the whole body is dead-lettered (missing_field)
//
// Stored: 3 canonical user events + 3 + 3 + 1 + 2 + 2 = 14 distinct events.
//
// By hand, for manager 101:
//   - A: owners 201 (Mar 2), 101 (Mar 9); closed won Mar 12. Closer C(A) = 101. Rep of record R(A) = 201 (101 was
//     a manager when he became owner), so M(A) = manager of 201 = 101. The Mar 9 change is a takeover: the owner
//     just before it was 201 (from the history, not the payload), the deal was open, and 101 manages 201.
//   - B: owner 201 throughout, closed won Mar 13: C(B) = R(B) = 201, M(B) = 101, no takeover.
//   - closed_deals 2, won_deals 2; takeover_rate = deals with a takeover by M before t_c ÷ closed = 1/2 = 0.5;
//     takeovers = takeover events by 101 in the window = 1; manager_closed_share = 1/2 (A);
//     manager_closed_revenue_share = 5000 / (5000 + 1000); team_reps 1 (201); reps_coached 0, coaching_coverage 0;
//     rep_growth null (201 self-closed nothing in the previous window).
func TestEndToEndHubSpotTakeoverThroughKafkaAndClickHouse(t *testing.T) {
	env := pipelinetest.New(t, "hubspot_e2e")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	hsTopic, crmTopic := env.Name("e2e.hubspot."), env.Name("e2e.crm.")

	// HubSpot has no reporting lines: they come as canonical events keyed by HubSpot owner ids.
	jan1 := time.Date(2026, time.January, 1, 9, 0, 0, 0, time.UTC)
	org := []event.Event{
		{Source: "e2e/org", ID: "u-101", Type: event.UserUpserted, Time: jan1, Data: event.Data{UserID: manager, Name: "Maria"}},
		{Source: "e2e/org", ID: "u-201", Type: event.UserUpserted, Time: jan1, Data: event.Data{UserID: rep, Name: "Rita"}},
		{Source: "e2e/org", ID: "m-201", Type: event.UserManagerChanged, Time: jan1,
			Data: event.Data{UserID: rep, ManagerID: event.Ptr(manager)}},
	}
	env.PublishEvents(ctx, t, crmTopic, org)

	mar2, mar3 := at(time.March, 2, 10), at(time.March, 3, 10)
	takeover := change(at(time.March, 9, 15), dealA, "hubspot_owner_id", manager, "45101")
	retry := takeover
	retry.AttemptNumber = 1
	bodies := []kafka.Message{
		batch(t, created(mar2, dealA), change(mar2, dealA, "hubspot_owner_id", rep, "45201"),
			change(mar2, dealA, "amount", "5000", "45201"),
			webhook{EventID: 1, SubscriptionID: 9, PortalID: portal, AppID: 3, OccurredAt: mar2,
				SubscriptionType: "contact.creation", ObjectID: 551, ChangeSource: "CRM_UI"}),
		batch(t, created(mar3, dealB), change(mar3, dealB, "hubspot_owner_id", rep, "45201"),
			change(mar3, dealB, "amount", "1000", "45201")),
		batch(t, takeover),
		batch(t, change(at(time.March, 12, 11), dealA, "dealstage", "closedwon", "45101")),
		batch(t, change(at(time.March, 13, 15), dealB, "dealstage", "closedwon", "45201")),
		batch(t, retry),
		{Key: []byte("bad"), Value: []byte(`[{"eventId":5,"portalId":12345678,"occurredAt":1773313200000,` +
			`"subscriptionType":"deal.deletion"}]`)},
	}
	env.PublishRaw(ctx, t, hsTopic, bodies)

	worker := env.Ingest(ctx, t, ingest.Config{
		Topics: []ingest.Topic{
			{Name: hsTopic, Decoder: hubspot.New(hubspot.Config{})},
			{Name: crmTopic, Decoder: ingest.CloudEvents},
		},
	})
	const want = 14 // see the scenario above
	worker.WaitStored(ctx, t, want)
	worker.Stop(t)

	rows := env.Indicators(ctx, t, indicator.Params{AsOf: time.Date(2026, time.March, 31, 0, 0, 0, 0, time.UTC),
		Window: 30 * 24 * time.Hour})
	if len(rows) != 1 || rows[0].ManagerID != manager {
		t.Fatalf("indicator rows %+v, want exactly one for manager %s", rows, manager)
	}
	r := rows[0]
	near, show := pipelinetest.Near, pipelinetest.Show
	if !near(r.TakeoverRate, 0.5) || r.Takeovers != 1 {
		t.Errorf("takeover_rate %s, takeovers %d; want 0.5 and 1 (the owner change carrying only the new owner "+
			"must count as a takeover)", show(r.TakeoverRate), r.Takeovers)
	}
	if r.ManagerName != "Maria" || r.WonDeals != 2 || r.ClosedDeals != 2 || !near(r.ManagerClosedShare, 0.5) ||
		!near(r.ManagerClosedRevenueShare, 5000.0/6000.0) || r.TeamReps != 1 || r.RepsCoached != 0 ||
		!near(r.CoachingCoverage, 0) || r.RepGrowth != nil {
		got, _ := json.Marshal(r)
		t.Errorf("indicators differ from the hand computation: %s", got)
	}

	dead := pipelinetest.ReadMessages(t, ctx, env.Kafka, hsTopic+".dlq", 1)[0]
	h := pipelinetest.Headers(dead)
	if h[ingest.HeaderReason] != string(event.ReasonMissingField) || h[ingest.HeaderDecoder] != "hubspot" ||
		h[ingest.HeaderOriginalTopic] != hsTopic {
		t.Errorf("dead letter headers %v, want reason missing_field from decoder hubspot of topic %s", h, hsTopic)
	}
}
