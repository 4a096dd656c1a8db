package pipedrive_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/leadthrough/leadthrough/crm/pipedrive"
	"github.com/leadthrough/leadthrough/event"
	"github.com/leadthrough/leadthrough/indicator"
	"github.com/leadthrough/leadthrough/ingest"
	"github.com/leadthrough/leadthrough/internal/pipelinetest"
)

const (
	rep     = 3001 // Pipedrive user id of Rita, a rep
	manager = 3002 // Pipedrive user id of Manny, Rita's manager
	company = "7700"
)

// webhook renders one Pipedrive webhooks v2 body.
func webhook(t *testing.T, id, entity, action string, entityID int, at time.Time, by int, data, previous map[string]any) kafka.Message {
	t.Helper()
	body := map[string]any{
		"data":     data,
		"previous": previous,
		"meta": map[string]any{
			"action": action, "company_id": company, "entity": entity, "entity_id": fmt.Sprint(entityID), "id": id,
			"is_bulk_edit": false, "timestamp": at.Format("2006-01-02T15:04:05.000Z07:00"), "type": "general",
			"user_id": fmt.Sprint(by), "version": "2.0", "webhook_id": "4710827", "change_source": "app", "attempt": 1,
			"host": "e2e.pipedrive.com",
		},
	}
	v, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	return kafka.Message{Key: []byte(fmt.Sprintf("%s/%d", entity, entityID)), Value: v}
}

func deal(id, owner int, value float64, status string) map[string]any {
	return map[string]any{"id": id, "owner_id": owner, "title": fmt.Sprintf("Deal %d", id), "value": value,
		"currency": "EUR", "stage_id": 1, "pipeline_id": 1, "status": status, "custom_fields": map[string]any{}}
}

func at(month time.Month, day, hour int) time.Time {
	return time.Date(2026, month, day, hour, 0, 0, 0, time.UTC)
}

// TestPipedriveTakeoverReachesIndicatorsThroughKafkaAndClickHouse publishes raw Pipedrive webhooks and canonical
// reporting lines to the real Kafka, runs the ingest worker with this decoder into the real ClickHouse, and checks
// the manager's indicators against a hand computation.
//
// Scenario (all 2026, UTC). Rita (3001) reports to Manny (3002) from Jan 1 (a canonical user.manager_changed: Pipedrive
// has no manager field); both are created as Pipedrive users.
//
//	D501: Rita creates it (5000) Mar 2; Manny takes it over Mar 5 (owner_id 3001 → 3002); won Mar 10.
//	D502: Rita creates it (2000) Mar 3 and wins it alone Mar 12.
//	Noise: the takeover webhook delivered again (meta.attempt 2, same meta.id), the shared sample (a change of a custom
//	field only), a person webhook, and a body that is not JSON (dead-lettered).
//
// Window (Mar 1, Mar 31]. By hand, for Manny: D501 and D502 are both closed in the window; both have Rita as rep of
// record, so M(d) = Rita's manager = Manny: closed_deals 2, won_deals 2. The owner change of Mar 5 is a takeover
// (the deal was open, the new owner is the previous owner's manager), before D501's close: takeover_rate 1/2 = 0.5,
// takeovers 1. Manny closed D501: manager_closed_share 1/2, revenue share 5000/7000. Team {Rita}: team_reps 1, no
// coaching: coverage 0. Rita won nothing in the previous window: rep_growth null. Rita manages nobody: one row.
func TestPipedriveTakeoverReachesIndicatorsThroughKafkaAndClickHouse(t *testing.T) {
	env := pipelinetest.New(t, "pd_e2e")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	pdTopic, crmTopic := env.Name("e2e.pipedrive."), env.Name("e2e.crm.")

	user := func(id int, name string) map[string]any {
		return map[string]any{"id": id, "name": name, "email": fmt.Sprintf("u%d@example.com", id), "active_flag": true}
	}
	takeover := webhook(t, "e2e-0004", "deal", "change", 501, at(time.March, 5, 10), manager,
		deal(501, manager, 5000, "open"), map[string]any{"owner_id": rep})
	sample, err := os.ReadFile("testdata/sample_custom_field_change.json") // the shared sample, verbatim
	if err != nil {
		t.Fatal(err)
	}
	var retry map[string]any
	if err := json.Unmarshal(takeover.Value, &retry); err != nil {
		t.Fatal(err)
	}
	retry["meta"].(map[string]any)["attempt"] = 2
	retried, _ := json.Marshal(retry)
	webhooks := []kafka.Message{
		webhook(t, "e2e-0001", "user", "create", rep, at(time.January, 1, 9), manager, user(rep, "Rita Rep"), nil),
		webhook(t, "e2e-0002", "user", "create", manager, at(time.January, 1, 9), manager, user(manager, "Manny Manager"), nil),
		webhook(t, "e2e-0003", "deal", "create", 501, at(time.March, 2, 10), rep, deal(501, rep, 5000, "open"), nil),
		takeover,
		webhook(t, "e2e-0005", "deal", "change", 501, at(time.March, 10, 16), manager,
			deal(501, manager, 5000, "won"), map[string]any{"status": "open"}),
		webhook(t, "e2e-0006", "deal", "create", 502, at(time.March, 3, 10), rep, deal(502, rep, 2000, "open"), nil),
		webhook(t, "e2e-0007", "deal", "change", 502, at(time.March, 12, 11), rep,
			deal(502, rep, 2000, "won"), map[string]any{"status": "open"}),
		{Key: []byte("deal/501"), Value: retried},
		{Key: []byte("deal/8"), Value: sample},
		webhook(t, "e2e-0008", "person", "create", 8, at(time.March, 1, 10), rep,
			map[string]any{"id": 8, "name": "Pat Person", "owner_id": rep}, nil),
		{Key: []byte("bad"), Value: []byte(`{"meta": {"entity": "deal"`)},
	}
	managerID := fmt.Sprint(manager)
	lines := []event.Event{{Source: "crm/e2e-reporting-lines", ID: "line-1", Type: event.UserManagerChanged,
		Time: at(time.January, 1, 9), Data: event.Data{UserID: fmt.Sprint(rep), ManagerID: &managerID}}}

	env.PublishRaw(ctx, t, pdTopic, webhooks)
	env.PublishEvents(ctx, t, crmTopic, lines)

	worker := env.Ingest(ctx, t, ingest.Config{
		Topics: []ingest.Topic{
			{Name: pdTopic, Decoder: pipedrive.New(pipedrive.Config{})},
			{Name: crmTopic, Decoder: ingest.CloudEvents},
		},
	})
	defer worker.Stop(t)

	// 2 user.upserted + 1 user.manager_changed + D501 created/owner_changed/closed + D502 created/closed; the retry
	// is the same 3 events again, stored once.
	const want = 8
	worker.WaitStored(ctx, t, want)

	rows := env.Indicators(ctx, t, indicator.Params{AsOf: at(time.March, 31, 0), Window: 30 * 24 * time.Hour})
	if len(rows) != 1 {
		t.Fatalf("got %d indicator rows, want 1 (Manny): %+v", len(rows), rows)
	}
	r := rows[0]
	if r.ManagerID != managerID || r.ManagerName != "Manny Manager" {
		t.Errorf("row for %q %q, want %q \"Manny Manager\"", r.ManagerID, r.ManagerName, managerID)
	}
	near, show := pipelinetest.Near, pipelinetest.Show
	if !near(r.TakeoverRate, 0.5) || r.Takeovers != 1 {
		t.Errorf("takeover_rate %v takeovers %d, want 0.5 and 1", show(r.TakeoverRate), r.Takeovers)
	}
	if r.ClosedDeals != 2 || r.WonDeals != 2 || !near(r.ManagerClosedShare, 0.5) ||
		!near(r.ManagerClosedRevenueShare, 5000.0/7000.0) || r.TeamReps != 1 || !near(r.CoachingCoverage, 0) ||
		r.RepsCoached != 0 || r.RepGrowth != nil {
		t.Errorf("indicators differ from the hand computation: %+v (shares %s %s, coverage %s, growth %s)", r,
			show(r.ManagerClosedShare), show(r.ManagerClosedRevenueShare), show(r.CoachingCoverage), show(r.RepGrowth))
	}

	dead := pipelinetest.ReadMessages(t, ctx, env.Kafka, pdTopic+".dlq", 1)[0]
	h := pipelinetest.Headers(dead)
	if h[ingest.HeaderReason] != string(event.ReasonMalformedJSON) || h[ingest.HeaderDecoder] != "pipedrive" {
		t.Errorf("dead letter %q has headers %v, want reason malformed_json from decoder pipedrive", dead.Value, h)
	}
}
