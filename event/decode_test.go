package event

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

const valid = `{"specversion":"1.0","id":"evt-81723","source":"crm/acme-salesforce","type":"deal.owner_changed",
 "time":"2026-03-02T14:05:00Z","data":{"deal_id":"D-1001","owner_id":"U-7","previous_owner_id":"U-42","changed_by":"U-7"}}`

func TestDecodeDesignExample(t *testing.T) {
	ev, err := Decode([]byte(valid))
	if err != nil {
		t.Fatal(err)
	}
	want := Event{Source: "crm/acme-salesforce", ID: "evt-81723", Type: DealOwnerChanged,
		Time: time.Date(2026, 3, 2, 14, 5, 0, 0, time.UTC),
		Data: Data{DealID: "D-1001", OwnerID: "U-7", PreviousOwnerID: "U-42", ChangedBy: "U-7"}}
	if !reflect.DeepEqual(ev, want) {
		t.Fatalf("got %+v\nwant %+v", ev, want)
	}
	if ev.Key() != "D-1001" {
		t.Errorf("key %q, want the deal id", ev.Key())
	}
}

func TestDecodeAcceptsWhiteSpaceAroundTheDocument(t *testing.T) {
	for _, raw := range []string{valid + "\n", " \t" + valid + "\r\n  "} {
		if _, err := Decode([]byte(raw)); err != nil {
			t.Errorf("%q: %v", raw, err)
		}
	}
}

// with replaces one top-level attribute or data field (path "data.x") of the valid example; nil deletes it.
func with(t *testing.T, base, path string, v any) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(base), &m); err != nil {
		t.Fatal(err)
	}
	target, key := m, path
	if rest, ok := strings.CutPrefix(path, "data."); ok {
		target, key = m["data"].(map[string]any), rest
	}
	if v == nil {
		delete(target, key)
	} else {
		target[key] = v
	}
	b, _ := json.Marshal(m)
	return b
}

func TestDecodeRejectsBadInputWithReasonAndFieldPath(t *testing.T) {
	closed := `{"specversion":"1.0","id":"1","source":"s","type":"deal.closed","time":"2026-03-02T14:05:00Z",
		"data":{"deal_id":"D","outcome":"won","amount":10}}`
	mgr := `{"specversion":"1.0","id":"1","source":"s","type":"user.manager_changed","time":"2026-03-02T14:05:00Z",
		"data":{"user_id":"U1","manager_id":"U2"}}`
	act := `{"specversion":"1.0","id":"1","source":"s","type":"activity.logged","time":"2026-03-02T14:05:00Z",
		"data":{"activity_id":"A","kind":"one_on_one","actor_id":"M","subject_user_ids":["R"]}}`
	tests := []struct {
		name   string
		input  []byte
		reason Reason
		msg    string
	}{
		{"malformed JSON", []byte(`{"specversion":"1.0",`), ReasonMalformedJSON, "malformed JSON"},
		{"not an object", []byte(`[1,2]`), ReasonMalformedJSON, "malformed JSON"},
		{"trailing data", []byte(valid + ` {}`), ReasonMalformedJSON, "trailing data"},
		{"trailing closing brace", []byte(valid + `}`), ReasonMalformedJSON, "trailing data"},
		{"trailing closing bracket", []byte(valid + "\n]"), ReasonMalformedJSON, "trailing data"},
		{"trailing text", []byte(valid + ` trailing`), ReasonMalformedJSON, "trailing data"},
		{"trailing form feed", []byte(valid + "\f"), ReasonMalformedJSON, "trailing data"},
		{"trailing no-break space", []byte(valid + "\u00a0"), ReasonMalformedJSON, "trailing data"},
		{"invalid UTF-8", []byte("{\"specversion\":\"1.0\",\"id\":\"\xff\"}"), ReasonInvalidUTF8, "UTF-8"},
		{"wrong spec version", with(t, valid, "specversion", "0.3"), ReasonSpecVersion, "specversion: must be"},
		{"missing id", with(t, valid, "id", nil), ReasonMissingField, "id: required"},
		{"empty source", with(t, valid, "source", ""), ReasonMissingField, "source: must not be empty"},
		{"unknown type", with(t, valid, "type", "deal.exploded"), ReasonUnknownType, "type: unknown event type"},
		{"unparseable time", with(t, valid, "time", "yesterday"), ReasonInvalidTime, "time: not an RFC 3339"},
		{"missing time", with(t, valid, "time", nil), ReasonMissingField, "time: required"},
		{"missing data", with(t, valid, "data", nil), ReasonMissingField, "data: required"},
		{"data not an object", with(t, valid, "data", "x"), ReasonWrongType, "data: must be an object"},
		{"missing required field", with(t, valid, "data.owner_id", nil), ReasonMissingField, "data.owner_id: required"},
		{"empty id field", with(t, valid, "data.deal_id", ""), ReasonMissingField, "data.deal_id: must not be empty"},
		{"wrong type", with(t, valid, "data.owner_id", 7), ReasonWrongType, "data.owner_id: must be a string"},
		{"negative amount", with(t, closed, "data.amount", -1), ReasonNegativeAmount, "data.amount: must be >= 0"},
		{"amount as string", with(t, closed, "data.amount", "10"), ReasonWrongType, "data.amount: must be a number"},
		{"bad outcome", with(t, closed, "data.outcome", "maybe"), ReasonInvalidValue, "data.outcome: must be"},
		{"manager_id missing", with(t, mgr, "data.manager_id", nil), ReasonMissingField, "data.manager_id: required"},
		{"own manager", with(t, mgr, "data.manager_id", "U1"), ReasonInvalidValue, "own manager"},
		{"subjects not strings", with(t, act, "data.subject_user_ids", []int{1}), ReasonWrongType, "data.subject_user_ids"},
		{"no subjects", with(t, act, "data.subject_user_ids", []string{}), ReasonMissingField, "data.subject_user_ids"},
		{"binary data", with(t, valid, "data_base64", "AAAA"), ReasonUnsupportedMode, "data_base64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(tt.input)
			if err == nil {
				t.Fatal("accepted")
			}
			if got := ReasonOf(err); got != tt.reason {
				t.Errorf("reason %q, want %q (%v)", got, tt.reason, err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("message %q does not contain %q", err, tt.msg)
			}
		})
	}
}

func TestDecodeAcceptsNullManagerAndOptionalFields(t *testing.T) {
	ev, err := Decode([]byte(`{"specversion":"1.0","id":"1","source":"s","type":"user.manager_changed",
		"time":"2026-03-02T16:05:00.123+02:00","data":{"user_id":"U1","manager_id":null},"extension":"ignored"}`))
	if err != nil {
		t.Fatal(err)
	}
	if ev.Data.ManagerID != nil {
		t.Errorf("manager_id %v, want nil (no manager)", *ev.Data.ManagerID)
	}
	if want := time.Date(2026, 3, 2, 14, 5, 0, 123e6, time.UTC); !ev.Time.Equal(want) || ev.Time.Location() != time.UTC {
		t.Errorf("time %v, want %v in UTC", ev.Time, want)
	}
}

func TestEncodeRoundTripsEveryType(t *testing.T) {
	at := time.Date(2026, 3, 2, 14, 5, 0, 0, time.UTC)
	events := []Event{
		{Type: UserUpserted, Data: Data{UserID: "U1", Name: "Ann", Email: "a@x", Title: "AE"}},
		{Type: UserManagerChanged, Data: Data{UserID: "U1", ManagerID: Ptr("M1")}},
		{Type: UserManagerChanged, Data: Data{UserID: "U1"}},
		{Type: UserDeactivated, Data: Data{UserID: "U1"}},
		{Type: DealCreated, Data: Data{DealID: "D1", OwnerID: "U1", Name: "n", Amount: Ptr(0.0), Currency: "EUR", Stage: "s"}},
		{Type: DealOwnerChanged, Data: Data{DealID: "D1", OwnerID: "M1", PreviousOwnerID: "U1", ChangedBy: "M1"}},
		{Type: DealStageChanged, Data: Data{DealID: "D1", Stage: "b", PreviousStage: "a"}},
		{Type: DealAmountChanged, Data: Data{DealID: "D1", Amount: Ptr(12.5), Currency: "EUR"}},
		{Type: DealClosed, Data: Data{DealID: "D1", Outcome: OutcomeLost}},
		{Type: DealReopened, Data: Data{DealID: "D1"}},
		{Type: DealDeleted, Data: Data{DealID: "D1"}},
		{Type: ActivityLogged, Data: Data{ActivityID: "A1", Kind: "call", ActorID: "M1", SubjectUserIDs: []string{"U1", "U2"},
			DealID: "D1", DurationMinutes: Ptr(30.0)}},
	}
	for _, e := range events {
		e.Source, e.ID, e.Time = "s", "1", at
		t.Run(e.Type, func(t *testing.T) {
			b, err := Encode(e)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Decode(b)
			if err != nil {
				t.Fatalf("%v\n%s", err, b)
			}
			if !reflect.DeepEqual(got, e) {
				t.Errorf("round trip\n got %+v\nwant %+v\n%s", got, e, b)
			}
		})
	}
}

func TestEncodeRefusesInvalidEvents(t *testing.T) {
	_, err := Encode(Event{Source: "s", ID: "1", Type: DealClosed, Time: time.Now(), Data: Data{DealID: "D"}})
	if ReasonOf(err) != ReasonMissingField || !strings.Contains(err.Error(), "data.outcome") {
		t.Fatalf("got %v, want data.outcome: required", err)
	}
}

// FuzzDecode: no input panics, and whatever decodes re-encodes to something that decodes to the same event.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(valid))
	f.Add([]byte(`{"specversion":"1.0","id":"1","source":"s","type":"activity.logged","time":"2026-03-02T14:05:00Z",
		"data":{"activity_id":"A","kind":"one_on_one","actor_id":"M","subject_user_ids":["R"],"duration_minutes":5}}`))
	f.Add([]byte(`{"specversion":"1.0","id":"1","source":"s","type":"user.manager_changed","time":"2026-03-02T14:05:00Z","data":{"user_id":"U","manager_id":null}}`))
	f.Add([]byte(`{"specversion":"1.0","id":"1","source":"s","type":"deal.closed","time":"2026-03-02T14:05:00Z","data":{"deal_id":"D","outcome":"won","amount":1e308}}`))
	f.Add([]byte(`{}`))
	f.Add([]byte("\xff"))
	f.Add([]byte(valid + "}"))
	f.Add([]byte(valid + " \n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		ev, err := Decode(raw)
		if err != nil {
			if ReasonOf(err) == "" {
				t.Fatalf("error without a reason: %v", err)
			}
			return
		}
		if !json.Valid(raw) {
			t.Fatalf("accepted a message that is not one JSON value: %q", raw)
		}
		b, err := Encode(ev)
		if err != nil {
			t.Fatalf("decoded event does not re-encode: %v", err)
		}
		again, err := Decode(b)
		if err != nil {
			t.Fatalf("re-encoded event does not decode: %v\n%s", err, b)
		}
		if !reflect.DeepEqual(again, ev) {
			t.Fatalf("round trip changed the event:\n%+v\n%+v", ev, again)
		}
	})
}
