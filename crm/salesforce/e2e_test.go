package salesforce_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/leadthrough/leadthrough/crm/salesforce"
	"github.com/leadthrough/leadthrough/event"
	"github.com/leadthrough/leadthrough/indicator"
	"github.com/leadthrough/leadthrough/ingest"
	"github.com/leadthrough/leadthrough/internal/pipelinetest"
)

// Salesforce ids of the end-to-end scenario.
const (
	maria = "005SM00000014QxYAI" // manager
	rita  = "005SM000000146PYAQ" // rep, reports to Maria
	opp1  = "006SM0000001Tb3YAE" // Rita's deal that Maria takes over and wins
	opp2  = "006SM0000001Tc7YAE" // Rita's deal that she wins alone
)

func march(d, hour int) int64 {
	return time.Date(2026, time.March, d, hour, 0, 0, 0, time.UTC).UnixMilli()
}

// changeEvent is a Pub/Sub-API-shaped change event; cometd wraps it in the CometD envelope instead.
func changeEvent(t *testing.T, entity, changeType, record, tx string, at int64, user string, cometd bool,
	fields map[string]any) kafka.Message {
	t.Helper()
	payload := map[string]any{"ChangeEventHeader": map[string]any{
		"entityName": entity, "recordIds": []string{record}, "changeType": changeType, "changeOrigin": "",
		"transactionKey": tx, "sequenceNumber": 1, "commitTimestamp": at, "commitNumber": at * 1000, "commitUser": user,
		"nulledFields": []string{}, "diffFields": []string{}, "changedFields": []string{},
	}}
	for k, v := range fields {
		payload[k] = v
	}
	var v any = payload
	if cometd {
		v = map[string]any{"data": map[string]any{"schema": "IeRuaY6cbI_HsV8Rv1Mc5g", "payload": payload,
			"event": map[string]any{"replayId": at}}, "channel": "/data/" + entity + "ChangeEvent"}
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return kafka.Message{Key: []byte(record), Value: b}
}

// TestEndToEndSalesforceThroughKafkaAndClickHouse publishes Salesforce change events (both shapes) to one real Kafka
// topic and a canonical coaching activity to another, runs the ingest worker with the Salesforce decoder into a real
// ClickHouse, and checks the indicators against a hand computation.
//
// Scenario, all in March 2026; window (Mar 1, Mar 31] (as_of Mar 31, W = 30 days):
//
//	Mar 1  UserChangeEvent CREATE Maria (no manager) and Rita (ManagerId = Maria)
//	Mar 5  Rita creates Opp 1 (5000)                       (bare)
//	Mar 6  Rita creates Opp 2 (1000)                       (CometD)
//	Mar 8  UPDATE Opp 1 OwnerId = Maria, commitUser Maria  (bare; delivered twice)
//	Mar 10 canonical activity.logged: Maria coaches Rita   (the CloudEvents topic)
//	Mar 12 UPDATE Opp 1 Closed Won by Maria                (CometD)
//	Mar 15 UPDATE Opp 2 Closed Won by Rita                 (bare)
//	plus a GAP_UPDATE (dead-lettered) and an AccountChangeEvent (ignored).
//
// By hand, for Maria: Opp 1 and Opp 2 are both won in the window. Rep of record is Rita for both (Maria was a manager
// when she became Opp 1's owner), so M(d) = Rita's manager = Maria: won_deals = closed_deals = 2. Opp 1 was closed by
// Maria, Opp 2 by Rita: manager_closed_share = 1/2 = 0.5, manager_closed_revenue_share = 5000 / 6000. The Mar 8 owner
// change moved open Opp 1 from Rita to Rita's manager: a takeover before its close, so takeover_rate = 1 of 2 closed
// deals = 0.5 and takeovers = 1 (the redelivered copy has the same id and counts once). Team = {Rita}, coached on
// Mar 10: team_reps 1, reps_coached 1, coaching_coverage 1. Rita won nothing in the previous window: rep_growth null.
func TestEndToEndSalesforceThroughKafkaAndClickHouse(t *testing.T) {
	env := pipelinetest.New(t, "sf_e2e")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	sfTopic, crmTopic := env.Name("e2e.salesforce."), env.Name("e2e.crm.")

	takeover := changeEvent(t, "Opportunity", "UPDATE", opp1, "tx-takeover", march(8, 10), maria, false,
		map[string]any{"OwnerId": maria, "LastModifiedById": maria, "StageName": nil, "Amount": nil, "IsClosed": nil})
	sf := []kafka.Message{
		changeEvent(t, "User", "CREATE", maria, "tx-users", march(1, 9), "005SM00000011aBYAQ", false,
			map[string]any{"Name": map[string]any{"FirstName": "Maria", "LastName": "Manager"}, "Email": "maria@acme.example",
				"Title": "Sales Manager", "IsActive": true, "ManagerId": nil}),
		changeEvent(t, "User", "CREATE", rita, "tx-users-2", march(1, 9), "005SM00000011aBYAQ", true,
			map[string]any{"Name": map[string]any{"FirstName": "Rita", "LastName": "Rep"}, "Email": "rita@acme.example",
				"Title": "Account Executive", "IsActive": true, "ManagerId": maria}),
		changeEvent(t, "Opportunity", "CREATE", opp1, "tx-opp1", march(5, 10), rita, false,
			map[string]any{"Name": "Acme - 400 Widgets", "OwnerId": rita, "StageName": "Prospecting", "Amount": 5000,
				"IsClosed": false, "IsWon": false}),
		changeEvent(t, "Opportunity", "CREATE", opp2, "tx-opp2", march(6, 10), rita, true,
			map[string]any{"Name": "Globex - 20 Servers", "OwnerId": rita, "StageName": "Qualification", "Amount": 1000,
				"IsClosed": false, "IsWon": false}),
		takeover,
		changeEvent(t, "Opportunity", "UPDATE", opp1, "tx-opp1-won", march(12, 10), maria, true,
			map[string]any{"StageName": "Closed Won", "IsClosed": true, "IsWon": true, "Probability": 100}),
		changeEvent(t, "Opportunity", "UPDATE", opp2, "tx-opp2-won", march(15, 10), rita, false,
			map[string]any{"StageName": "Closed Won", "IsClosed": true, "IsWon": true, "OwnerId": nil}),
		takeover, // redelivered
		changeEvent(t, "Opportunity", "GAP_UPDATE", opp2, "tx-gap", march(16, 10), rita, false, nil),
		changeEvent(t, "Account", "UPDATE", "001SM0000000iibYAA", "tx-account", march(16, 11), rita, true,
			map[string]any{"Name": "Acme Corporation"}),
	}
	// Distinct events: 2 per user CREATE (upserted, manager_changed), 1 per Opportunity CREATE, 1 owner change (its
	// copy is the same event), 2 per win (stage_changed, closed): 4 + 2 + 1 + 4 = 11, and the coaching activity.
	const want = 12
	coaching := []event.Event{{Source: "crm/e2e", ID: "act-1", Type: event.ActivityLogged,
		Time: time.UnixMilli(march(10, 15)).UTC(),
		Data: event.Data{ActivityID: "A-1", Kind: "coaching_session", ActorID: maria, SubjectUserIDs: []string{rita}}}}

	env.PublishRaw(ctx, t, sfTopic, sf)
	env.PublishEvents(ctx, t, crmTopic, coaching)

	worker := env.Ingest(ctx, t, ingest.Config{
		Topics: []ingest.Topic{
			{Name: sfTopic, Decoder: salesforce.New(salesforce.Config{Source: "salesforce/e2e"})},
			{Name: crmTopic, Decoder: ingest.CloudEvents},
		},
	})
	worker.WaitStored(ctx, t, want)
	dead := pipelinetest.ReadMessages(t, ctx, env.Kafka, sfTopic+ingest.DefaultDLQSuffix, 1)
	worker.Stop(t)
	h := pipelinetest.Headers(dead[0])
	if h[ingest.HeaderReason] != string(event.ReasonInvalidValue) || h[ingest.HeaderDecoder] != "salesforce-cdc" {
		t.Errorf("dead letter headers %v, want reason invalid_value from decoder salesforce-cdc (the gap event)", h)
	}

	rows := env.Indicators(ctx, t, indicator.Params{AsOf: time.Date(2026, time.March, 31, 0, 0, 0, 0, time.UTC),
		Window: 30 * 24 * time.Hour})
	if len(rows) != 1 {
		t.Fatalf("got %d manager rows, want Maria's only: %+v", len(rows), rows)
	}
	r := rows[0]
	eq, fmtPtr := pipelinetest.Near, pipelinetest.Show
	if r.ManagerID != maria || r.ManagerName != "Maria Manager" {
		t.Errorf("manager %q %q, want %q Maria Manager", r.ManagerID, r.ManagerName, maria)
	}
	if !eq(r.TakeoverRate, 0.5) || r.Takeovers != 1 || !eq(r.ManagerClosedShare, 0.5) {
		t.Errorf("takeover_rate %v, takeovers %d, manager_closed_share %v; want 0.5, 1, 0.5",
			fmtPtr(r.TakeoverRate), r.Takeovers, fmtPtr(r.ManagerClosedShare))
	}
	if r.WonDeals != 2 || r.ClosedDeals != 2 || !eq(r.ManagerClosedRevenueShare, 5000.0/6000.0) ||
		r.TeamReps != 1 || r.RepsCoached != 1 || !eq(r.CoachingCoverage, 1) || r.RepGrowth != nil {
		b, _ := json.Marshal(r)
		t.Errorf("row %s; want won 2, closed 2, revenue share 5000/6000, team 1, coached 1, coverage 1, growth null", b)
	}
}
