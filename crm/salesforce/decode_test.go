package salesforce_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/leadthrough/leadthrough/internal/golden"

	"github.com/leadthrough/leadthrough/crm/salesforce"
	"github.com/leadthrough/leadthrough/event"
)

// inputs returns the testdata inputs by case name (file name without .json).
func inputs(t testing.TB) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata inputs: %v", err)
	}
	out := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimSuffix(filepath.Base(f), ".json")] = b
	}
	return out
}

// render is the golden form of a decode: the events as a JSON array, one event.Encode document per line, or for an
// error a JSON object with its reason and message.
func render(t *testing.T, evs []event.Event, err error) []byte {
	t.Helper()
	if err != nil {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(struct {
			Reason event.Reason `json:"reason"`
			Error  string       `json:"error"`
		}{event.ReasonOf(err), err.Error()}); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	var buf bytes.Buffer
	buf.WriteString("[")
	for i, ev := range evs {
		b, err := event.Encode(ev)
		if err != nil {
			t.Fatalf("event %d does not encode: %v", i, err)
		}
		if i > 0 {
			buf.WriteString(",")
		}
		buf.WriteString("\n")
		buf.Write(b)
	}
	if len(evs) > 0 {
		buf.WriteString("\n")
	}
	buf.WriteString("]\n")
	return buf.Bytes()
}

// TestDecodeGolden decodes every testdata/<case>.json and compares with testdata/<case>.golden (go test -update
// rewrites them; review the diff).
func TestDecodeGolden(t *testing.T) {
	dec := salesforce.New(salesforce.Config{Source: "salesforce/acme"})
	for name, in := range inputs(t) {
		t.Run(name, func(t *testing.T) {
			evs, err := dec.Decode(in)
			got := render(t, evs, err)
			goldenPath := filepath.Join("testdata", name+".golden")
			golden.Check(t, goldenPath, got)
		})
	}
}

func decode(t *testing.T, in []byte) []event.Event {
	t.Helper()
	evs, err := salesforce.New(salesforce.Config{}).Decode(in)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	return evs
}

func types(evs []event.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Type)
	}
	return out
}

// The owner change of the golden case, over CometD and over the Pub/Sub API, must be the same canonical events: the
// decoder never depends on the changedFields bitmap.
func TestCometDAndBareShapesDecodeToTheSameEvents(t *testing.T) {
	in := inputs(t)
	cometd, bare := decode(t, in["owner_change_cometd"]), decode(t, in["owner_change_bare"])
	if len(cometd) != 1 || !reflect.DeepEqual(cometd, bare) {
		t.Fatalf("CometD: %+v\nbare:   %+v", cometd, bare)
	}
	in2 := inputs(t)
	if a, b := decode(t, in2["user_manager_nulled"]), decode(t, in2["user_manager_nulled_bare"]); !reflect.DeepEqual(a, b) {
		t.Fatalf("manager nulled, CometD: %+v\nbare: %+v", a, b)
	}
}

func TestOwnerChangeCarriesOnlyTheNewOwnerAndWhoChangedIt(t *testing.T) {
	evs := decode(t, inputs(t)["owner_change_cometd"])
	want := event.Event{Source: "salesforce", Type: event.DealOwnerChanged,
		ID:   "0000049b-a2f1-1d2e-8c3d-4e0f9a1b2c3d/0000000001/006SM0000001Tb3YAE/2-deal.owner_changed",
		Time: time.UnixMilli(1653038000000).UTC(),
		Data: event.Data{DealID: "006SM0000001Tb3YAE", OwnerID: "005SM00000014QxYAI", ChangedBy: "005SM00000014QxYAI"}}
	if len(evs) != 1 || !reflect.DeepEqual(evs[0], want) {
		t.Fatalf("got %+v\nwant %+v", evs, want)
	}
}

func TestNameAndDefaultSource(t *testing.T) {
	d := salesforce.New(salesforce.Config{})
	if d.Name() != "salesforce-cdc" {
		t.Errorf("Name() = %q", d.Name())
	}
	for _, e := range decode(t, inputs(t)["opportunity_create"]) {
		if e.Source != salesforce.DefaultSource {
			t.Errorf("source %q, want %q", e.Source, salesforce.DefaultSource)
		}
	}
}

// A redelivered change event must produce the very same ids, and the events of one message must never share an id.
func TestIDsAreDeterministicAndUniquePerRecordAndType(t *testing.T) {
	for name, in := range inputs(t) {
		a, errA := salesforce.New(salesforce.Config{}).Decode(in)
		b, errB := salesforce.New(salesforce.Config{}).Decode(in)
		if !reflect.DeepEqual(a, b) || (errA == nil) != (errB == nil) {
			t.Errorf("%s: two decodes differ", name)
		}
		seen := map[string]bool{}
		for _, e := range a {
			if seen[e.ID] {
				t.Errorf("%s: id %s twice", name, e.ID)
			}
			seen[e.ID] = true
		}
	}
}

// The store breaks ties of the same millisecond by (source, id): ids must sort in the order the events are emitted,
// per record, and changes of one transaction by sequenceNumber numerically (9 before 10).
func TestIDsSortInEmitOrder(t *testing.T) {
	in := []byte(`{"ChangeEventHeader":{"entityName":"User","recordIds":["005A"],"changeType":"CREATE",
		"transactionKey":"tx","sequenceNumber":9,"commitTimestamp":1652977933000,"commitUser":"005X"},
		"Name":{"FirstName":"Ann","LastName":"Lee"},"ManagerId":"005M","IsActive":false}`)
	evs := decode(t, in)
	if got := types(evs); !slices.Equal(got, []string{event.UserUpserted, event.UserManagerChanged, event.UserDeactivated}) {
		t.Fatalf("types %v", got)
	}
	later := decode(t, bytes.Replace(in, []byte(`"sequenceNumber":9`), []byte(`"sequenceNumber":10`), 1))
	ids := []string{evs[0].ID, evs[1].ID, evs[2].ID, later[0].ID}
	if !slices.IsSorted(ids) {
		t.Errorf("ids do not sort in emit order: %q", ids)
	}

	evs = decode(t, []byte(`{"ChangeEventHeader":{"entityName":"Opportunity","recordIds":["006A"],"changeType":"UPDATE",
		"transactionKey":"tx","sequenceNumber":1,"commitTimestamp":1652977933000,"commitUser":"005M"},
		"OwnerId":"005M","StageName":"Closed Won","Amount":10,"IsClosed":true,"IsWon":true}`))
	if got := types(evs); !slices.Equal(got, []string{event.DealOwnerChanged, event.DealStageChanged,
		event.DealAmountChanged, event.DealClosed}) {
		t.Fatalf("types %v", got)
	}
	if ids := []string{evs[0].ID, evs[1].ID, evs[2].ID, evs[3].ID}; !slices.IsSorted(ids) {
		t.Errorf("ids do not sort in emit order: %q", ids)
	}
}

func TestMultiRecordChangeFansOutInRecordOrder(t *testing.T) {
	evs := decode(t, inputs(t)["multi_record_update"])
	var deals []string
	for _, e := range evs {
		deals = append(deals, e.Data.DealID+" "+e.Type)
	}
	want := []string{
		"006SM0000001Tb3YAE deal.owner_changed", "006SM0000001Tb3YAE deal.stage_changed",
		"006SM0000001Tc7YAE deal.owner_changed", "006SM0000001Tc7YAE deal.stage_changed",
		"006SM0000001TdBYAU deal.owner_changed", "006SM0000001TdBYAU deal.stage_changed",
	}
	if !slices.Equal(deals, want) {
		t.Fatalf("got %q\nwant %q", deals, want)
	}
}

// decodeJSON decodes a bare Pub/Sub-shaped change event with the given header overrides and fields.
func decodeJSON(header, fields map[string]any) ([]event.Event, error) {
	h := map[string]any{"entityName": "Opportunity", "recordIds": []string{"006A"}, "changeType": "UPDATE",
		"transactionKey": "tx-1", "sequenceNumber": 1, "commitTimestamp": 1652977933000, "commitUser": "005U"}
	for k, v := range header {
		if v == nil {
			delete(h, k)
		} else {
			h[k] = v
		}
	}
	m := map[string]any{"ChangeEventHeader": h}
	for k, v := range fields {
		m[k] = v
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return salesforce.New(salesforce.Config{}).Decode(b)
}

func TestDecodeMapping(t *testing.T) {
	null := json.RawMessage("null")
	for _, tc := range []struct {
		name           string
		header, fields map[string]any
		want           []string // "<type> <key data>"
	}{
		{"ClosedLostToClosedWonIsANewWonClose", nil, map[string]any{"IsWon": true, "StageName": "Closed Won"},
			[]string{"deal.stage_changed Closed Won", "deal.closed won"}},
		{"ClosedWonToClosedLostIsANewLostClose", nil, map[string]any{"IsWon": false}, []string{"deal.closed lost"}},
		{"ReopenIgnoresIsWon", nil, map[string]any{"IsClosed": false, "IsWon": false}, []string{"deal.reopened"}},
		{"UnchangedFieldsAreNull", nil, map[string]any{"OwnerId": null, "Amount": null, "IsClosed": null}, nil},
		{"OtherFieldsAreIgnored", nil, map[string]any{"Probability": 20, "CloseDate": 1653955200000}, nil},
		{"AmountNulledIsIgnored", map[string]any{"nulledFields": []string{"Amount"}}, map[string]any{"Amount": null}, nil},
		{"CreateClosedLost", map[string]any{"changeType": "CREATE"},
			map[string]any{"OwnerId": "005R", "IsClosed": true, "IsWon": false, "Amount": 5},
			[]string{"deal.created 005R", "deal.closed lost"}},
		{"UserUpdateWithoutProfileFieldsEmitsNoUpsert", map[string]any{"entityName": "User"},
			map[string]any{"LastLoginDate": 1652977933000, "IsActive": true}, nil},
		{"UserPartialNameChangeStoresNoHalfName", map[string]any{"entityName": "User"},
			map[string]any{"Name": map[string]any{"LastName": "Smith"}}, nil},
		{"UserFlatFirstAndLastName", map[string]any{"entityName": "User"},
			map[string]any{"FirstName": "Ann", "LastName": "Lee", "Title": "AE"}, []string{"user.upserted Ann Lee"}},
		{"UserNullManagerNotNamedIsUnchanged", map[string]any{"entityName": "User", "changedFields": []string{"0x01"}},
			map[string]any{"ManagerId": null}, nil},
		{"UserCreateWithoutManagerHasNoManager", map[string]any{"entityName": "User", "changeType": "CREATE"},
			map[string]any{"LastName": "Lee"}, []string{"user.upserted Lee", "user.manager_changed <nil>"}},
		{"UserDelete", map[string]any{"entityName": "User", "changeType": "DELETE"}, nil, []string{"user.deactivated"}},
		{"UserUndeleteIsLikeCreate", map[string]any{"entityName": "User", "changeType": "UNDELETE"},
			map[string]any{"Name": "Ann Lee", "ManagerId": "005M"}, []string{"user.upserted Ann Lee", "user.manager_changed 005M"}},
		{"DuplicateRecordIdsEmitOnce", map[string]any{"recordIds": []string{"006A", "006A"}},
			map[string]any{"StageName": "Qualification"}, []string{"deal.stage_changed Qualification"}},
		{"UnknownEntityWithBrokenHeaderIsIgnored", map[string]any{"entityName": "Contact", "commitTimestamp": "x"},
			map[string]any{"OwnerId": "005R"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			evs, err := decodeJSON(tc.header, tc.fields)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range evs {
				key := ""
				switch e.Type {
				case event.DealStageChanged:
					key = e.Data.Stage
				case event.DealClosed:
					key = e.Data.Outcome
				case event.DealCreated:
					key = e.Data.OwnerID
				case event.UserUpserted:
					key = e.Data.Name
				case event.UserManagerChanged:
					key = "<nil>"
					if e.Data.ManagerID != nil {
						key = *e.Data.ManagerID
					}
				}
				got = append(got, strings.TrimSpace(e.Type+" "+key))
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	for _, tc := range []struct {
		name           string
		header, fields map[string]any
		reason         event.Reason
		field          string
	}{
		{"MissingCommitTimestamp", map[string]any{"commitTimestamp": nil}, nil, event.ReasonMissingField, "ChangeEventHeader.commitTimestamp"},
		{"CommitTimestampInAString", map[string]any{"commitTimestamp": "1652977933000"}, nil, event.ReasonWrongType, "ChangeEventHeader.commitTimestamp"},
		{"SequenceNumberInAString", map[string]any{"sequenceNumber": "1"}, nil, event.ReasonWrongType, "ChangeEventHeader.sequenceNumber"},
		{"FractionalCommitTimestamp", map[string]any{"commitTimestamp": 1.5}, nil, event.ReasonInvalidTime, "ChangeEventHeader.commitTimestamp"},
		{"NegativeCommitTimestamp", map[string]any{"commitTimestamp": -1}, nil, event.ReasonInvalidTime, "ChangeEventHeader.commitTimestamp"},
		{"CommitTimestampAfterYear9999", map[string]any{"commitTimestamp": 253402300800000}, nil, event.ReasonInvalidTime, "ChangeEventHeader.commitTimestamp"},
		{"EmptyRecordIds", map[string]any{"recordIds": []string{}}, nil, event.ReasonMissingField, "ChangeEventHeader.recordIds"},
		{"EmptyRecordId", map[string]any{"recordIds": []string{"006A", ""}}, nil, event.ReasonMissingField, "ChangeEventHeader.recordIds[1]"},
		{"RecordIdsNotAList", map[string]any{"recordIds": "006A"}, nil, event.ReasonWrongType, "ChangeEventHeader.recordIds"},
		{"MissingTransactionKey", map[string]any{"transactionKey": nil}, nil, event.ReasonMissingField, "ChangeEventHeader.transactionKey"},
		{"MissingSequenceNumber", map[string]any{"sequenceNumber": nil}, nil, event.ReasonMissingField, "ChangeEventHeader.sequenceNumber"},
		{"UnknownChangeType", map[string]any{"changeType": "MERGE"}, nil, event.ReasonInvalidValue, "ChangeEventHeader.changeType"},
		{"MissingEntityName", map[string]any{"entityName": nil}, nil, event.ReasonMissingField, "ChangeEventHeader.entityName"},
		{"CommitUserNotAString", map[string]any{"commitUser": 5}, nil, event.ReasonWrongType, "ChangeEventHeader.commitUser"},
		{"IsClosedNotABoolean", nil, map[string]any{"IsClosed": "true"}, event.ReasonWrongType, "IsClosed"},
		{"AmountNotANumber", nil, map[string]any{"Amount": "40000"}, event.ReasonWrongType, "Amount"},
		{"NegativeAmount", nil, map[string]any{"Amount": -1}, event.ReasonNegativeAmount, "Amount"},
		{"EmptyOwner", nil, map[string]any{"OwnerId": ""}, event.ReasonMissingField, "OwnerId"},
		{"CreateWithoutOwner", map[string]any{"changeType": "CREATE"}, map[string]any{"Name": "x"}, event.ReasonMissingField, "OwnerId"},
		{"OwnManager", map[string]any{"entityName": "User", "recordIds": []string{"005A"}}, map[string]any{"ManagerId": "005A"},
			event.ReasonInvalidValue, "ManagerId"},
		{"UserNameNotAStringOrObject", map[string]any{"entityName": "User"}, map[string]any{"Name": 7}, event.ReasonWrongType, "Name"},
		{"OpportunityUndelete", map[string]any{"changeType": "UNDELETE"}, map[string]any{"OwnerId": "005R"},
			event.ReasonInvalidValue, "ChangeEventHeader.changeType"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			evs, err := decodeJSON(tc.header, tc.fields)
			var ve *event.Error
			if err == nil || !errors.As(err, &ve) {
				t.Fatalf("got %v, %v; want an *event.Error", evs, err)
			}
			if ve.Reason != tc.reason || ve.Field != tc.field {
				t.Errorf("got %s at %q (%v), want %s at %q", ve.Reason, ve.Field, err, tc.reason, tc.field)
			}
		})
	}
}

func TestEveryGapEventIsDeadLettered(t *testing.T) {
	for _, ct := range []string{"GAP_CREATE", "GAP_UPDATE", "GAP_DELETE", "GAP_UNDELETE", "GAP_OVERFLOW"} {
		for _, entity := range []string{"Opportunity", "User"} {
			_, err := decodeJSON(map[string]any{"changeType": ct, "entityName": entity, "recordIds": []string{"006*"}}, nil)
			if event.ReasonOf(err) != event.ReasonInvalidValue || !strings.Contains(err.Error(), "gap event") {
				t.Errorf("%s %s: got %v, want an invalid_value gap event error", entity, ct, err)
			}
		}
	}
}

func TestCometDEnvelopeErrorsNameThePayloadPath(t *testing.T) {
	for in, field := range map[string]string{
		`{"data":{"payload":{"ChangeEventHeader":{"entityName":"User","changeType":"UPDATE","recordIds":["005A"],"transactionKey":"t","sequenceNumber":1}}}}`: "data.payload.ChangeEventHeader.commitTimestamp",
		`{"data":{"schema":"s","event":{"replayId":1}},"channel":"/data/UserChangeEvent"}`:                                                                    "data.payload",
		`{"data":[1]}`:                        "data",
		`{"channel":"/data/UserChangeEvent"}`: "ChangeEventHeader",
	} {
		_, err := salesforce.New(salesforce.Config{}).Decode([]byte(in))
		var ve *event.Error
		if !errors.As(err, &ve) || ve.Field != field {
			t.Errorf("%s: got %v, want an error at %q", in, err, field)
		}
	}
}

func TestInvalidUTF8IsRejected(t *testing.T) {
	in := bytes.Replace(inputs(t)["opportunity_create"], []byte("Acme"), []byte("Ac\xffme"), 1)
	if _, err := salesforce.New(salesforce.Config{}).Decode(in); event.ReasonOf(err) != event.ReasonInvalidUTF8 {
		t.Fatalf("got %v, want invalid_utf8", err)
	}
}
