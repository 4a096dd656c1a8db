package hubspot

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/leadthrough/leadthrough/internal/golden"

	"github.com/leadthrough/leadthrough/event"
)

// goldenCases are the inputs testdata/<name>.json, each decoded with cfg into testdata/<name>.golden: one
// event.Encode line per canonical event, or one "error reason=…: …" line for a rejected message.
var goldenCases = []struct {
	name string
	cfg  Config
}{
	{"sample_batch", Config{}},                      // shared sample: a move to an open custom stage; a creation without owner emits nothing
	{"creation_with_owner_in_same_batch", Config{}}, // deal.created only where an owner change shares the creation's occurredAt
	{"owner_change", Config{}},                      // only the new owner; changed_by only from "userId:NNN"
	{"owner_removed", Config{}},                     // empty or null hubspot_owner_id: no event
	{"stage_change_to_open_stage", Config{}},        // stage_changed + reopened
	{"won", Config{}},                               // closedwon: stage_changed + closed(won)
	{"lost", Config{}},                              // closedlost: stage_changed + closed(lost)
	{"custom_stages", customStages},                 // configured ids replace the defaults: closedwon is then an open stage
	{"amount_change", Config{}},                     // decimal string → number ("-0" → 0); empty → no event
	{"deletion", Config{}},                          // deal.deleted
	{"repeated_event_id", Config{}},                 // same eventId on two deals: two ids; the same element twice: the same id twice
	{"unrelated_subscription", Config{}},            // contacts, companies, other deal properties, merges: no events, no error
	{"malformed_not_json", Config{}},                // malformed_json
	{"malformed_not_array", Config{}},               // malformed_json
	{"malformed_missing_object_id", Config{}},       // one bad element rejects the whole batch
	{"malformed_non_numeric_amount", Config{}},      // wrong_type
	{"malformed_negative_amount", Config{}},         // negative_amount
}

// customStages is a portal whose custom pipeline closes deals in numeric stages.
var customStages = Config{WonStages: []string{"1234567"}, LostStages: []string{"1234568"}}

// render is the golden form of a Decode result.
func render(t testing.TB, evs []event.Event, err error) []byte {
	t.Helper()
	var b bytes.Buffer
	if err != nil {
		fmt.Fprintf(&b, "error reason=%s: %v\n", event.ReasonOf(err), err)
		return b.Bytes()
	}
	for _, e := range evs {
		line, err := event.Encode(e)
		if err != nil {
			t.Fatalf("decoder emitted an event that breaks the contract: %v\n%+v", err, e)
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func TestDecodeMatchesGoldenFiles(t *testing.T) {
	for _, c := range goldenCases {
		t.Run(c.name, func(t *testing.T) {
			in, err := os.ReadFile(filepath.Join("testdata", c.name+".json"))
			if err != nil {
				t.Fatal(err)
			}
			evs, err := New(c.cfg).Decode(in)
			got := render(t, evs, err)
			path := filepath.Join("testdata", c.name+".golden")
			golden.Check(t, path, got)
		})
	}
}

// TestGoldenCasesCoverEveryTestdataFile keeps the table and testdata/ in step: an input without a golden case would
// only ever be a fuzz seed, and a golden file without an input would never be checked.
func TestGoldenCasesCoverEveryTestdataFile(t *testing.T) {
	listed := map[string]bool{}
	for _, c := range goldenCases {
		listed[c.name] = true
	}
	for _, pattern := range []string{"*.json", "*.golden"} {
		files, err := filepath.Glob(filepath.Join("testdata", pattern))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if name := strings.TrimSuffix(filepath.Base(f), filepath.Ext(f)); !listed[name] {
				t.Errorf("%s has no entry in goldenCases", f)
			}
		}
	}
}

// base is a valid deal.propertyChange element; with derives variants of it.
const base = `{"eventId": 1, "subscriptionId": 2, "portalId": 3, "appId": 4, "occurredAt": 1772445600000,
	"subscriptionType": "deal.propertyChange", "attemptNumber": 0, "objectId": 5, "propertyName": "amount",
	"propertyValue": "10", "changeSource": "CRM_UI", "sourceId": "userId:6"}`

// with returns a one-element batch: base with key set to the JSON value v, or removed when v is "-".
func with(t *testing.T, key, v string) string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(base), &m); err != nil {
		t.Fatal(err)
	}
	if v == "-" {
		delete(m, key)
	} else {
		m[key] = json.RawMessage(v)
	}
	out, err := json.Marshal([]any{m})
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func TestDecodeRejectsBadInputWithReasonAndFieldPath(t *testing.T) {
	if _, err := New(Config{}).Decode([]byte("[" + base + "]")); err != nil {
		t.Fatalf("base element is rejected: %v", err)
	}
	cases := []struct {
		name, in string
		reason   event.Reason
		field    string
	}{
		{"invalid UTF-8", "[\"\xff\"]", event.ReasonInvalidUTF8, ""},
		{"empty message", "", event.ReasonMalformedJSON, ""},
		{"trailing data", "[] x", event.ReasonMalformedJSON, ""},
		{"null", "null", event.ReasonMalformedJSON, ""},
		{"object instead of array", base, event.ReasonMalformedJSON, ""},
		{"element not an object", "[1]", event.ReasonWrongType, "[0]"},
		{"element null", "[null]", event.ReasonWrongType, "[0]"},
		{"second element bad", "[" + base + ",[]]", event.ReasonWrongType, "[1]"},
		{"no subscriptionType", "[{}]", event.ReasonMissingField, "[0].subscriptionType"},
		{"subscriptionType not a string", with(t, "subscriptionType", `7`), event.ReasonWrongType, "[0].subscriptionType"},
		{"no propertyName", with(t, "propertyName", `-`), event.ReasonMissingField, "[0].propertyName"},
		{"no propertyValue", with(t, "propertyValue", `-`), event.ReasonMissingField, "[0].propertyValue"},
		{"propertyValue a number", with(t, "propertyValue", `10`), event.ReasonWrongType, "[0].propertyValue"},
		{"amount NaN", with(t, "propertyValue", `"NaN"`), event.ReasonWrongType, "[0].propertyValue"},
		{"amount hex", with(t, "propertyValue", `"0x10"`), event.ReasonWrongType, "[0].propertyValue"},
		{"amount with space", with(t, "propertyValue", `" 10"`), event.ReasonWrongType, "[0].propertyValue"},
		{"amount with plus", with(t, "propertyValue", `"+10"`), event.ReasonWrongType, "[0].propertyValue"},
		{"amount overflows", with(t, "propertyValue", `"1e999"`), event.ReasonInvalidValue, "[0].propertyValue"},
		{"amount negative", with(t, "propertyValue", `"-0.01"`), event.ReasonNegativeAmount, "[0].propertyValue"},
		{"no objectId", with(t, "objectId", `-`), event.ReasonMissingField, "[0].objectId"},
		{"objectId null", with(t, "objectId", `null`), event.ReasonMissingField, "[0].objectId"},
		{"objectId a string", with(t, "objectId", `"5"`), event.ReasonWrongType, "[0].objectId"},
		{"objectId a fraction", with(t, "objectId", `5.5`), event.ReasonInvalidValue, "[0].objectId"},
		{"objectId an exponent", with(t, "objectId", `5e3`), event.ReasonInvalidValue, "[0].objectId"},
		{"objectId zero", with(t, "objectId", `0`), event.ReasonInvalidValue, "[0].objectId"},
		{"objectId negative", with(t, "objectId", `-5`), event.ReasonInvalidValue, "[0].objectId"},
		{"objectId beyond int64", with(t, "objectId", `9223372036854775808`), event.ReasonInvalidValue, "[0].objectId"},
		{"no portalId", with(t, "portalId", `-`), event.ReasonMissingField, "[0].portalId"},
		{"no eventId", with(t, "eventId", `-`), event.ReasonMissingField, "[0].eventId"},
		{"eventId negative", with(t, "eventId", `-1`), event.ReasonInvalidValue, "[0].eventId"},
		{"no occurredAt", with(t, "occurredAt", `-`), event.ReasonMissingField, "[0].occurredAt"},
		{"occurredAt zero", with(t, "occurredAt", `0`), event.ReasonInvalidTime, "[0].occurredAt"},
		{"occurredAt after 2106", with(t, "occurredAt", `4294967296000`), event.ReasonInvalidTime, "[0].occurredAt"},
		{"occurredAt an ISO string", with(t, "occurredAt", `"2026-03-02T10:00:00Z"`), event.ReasonWrongType, "[0].occurredAt"},
		{"sourceId not a string", with(t, "sourceId", `6`), event.ReasonWrongType, "[0].sourceId"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			evs, err := New(Config{}).Decode([]byte(c.in))
			if err == nil {
				t.Fatalf("accepted, emitted %d events", len(evs))
			}
			var e *event.Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is not an *event.Error", err)
			}
			if e.Reason != c.reason || e.Field != c.field {
				t.Errorf("reason %q field %q (%v), want reason %q field %q", e.Reason, e.Field, err, c.reason, c.field)
			}
			if evs != nil {
				t.Errorf("events returned along with the error: %v", evs)
			}
		})
	}
}

// TestDecodeIgnoresUnmappedElementsWithoutExaminingThem: an element that can produce no event is not validated
// beyond its subscriptionType (and propertyName), so a field leadthrough does not use never rejects a batch.
func TestDecodeIgnoresUnmappedElementsWithoutExaminingThem(t *testing.T) {
	for _, in := range []string{
		`[]`,
		`[{"subscriptionType": "contact.creation"}]`,
		`[{"subscriptionType": "deal.restore", "objectId": "not a number"}]`,
		`[{"subscriptionType": "deal.propertyChange", "propertyName": "dealname", "propertyValue": 5}]`,
		`[{"subscriptionType": "object.propertyChange", "objectTypeId": "0-3", "propertyName": "dealstage"}]`,
		// A mapped property is case-sensitive, as HubSpot's internal names are.
		`[{"subscriptionType": "deal.propertyChange", "propertyName": "DealStage", "propertyValue": "closedwon"}]`,
	} {
		evs, err := New(Config{}).Decode([]byte(in))
		if err != nil || len(evs) != 0 {
			t.Errorf("Decode(%s) = %v, %v; want no events and no error", in, evs, err)
		}
	}
}

// TestEmptyValuesAreValidatedButEmitNothing: a cleared owner, amount or stage still needs a well-formed element.
func TestEmptyValuesAreValidatedButEmitNothing(t *testing.T) {
	for _, prop := range []string{"hubspot_owner_id", "amount", "dealstage"} {
		for _, v := range []string{`""`, `null`} {
			in := strings.Replace(with(t, "propertyValue", v), `"amount"`, `"`+prop+`"`, 1)
			if evs, err := New(Config{}).Decode([]byte(in)); err != nil || len(evs) != 0 {
				t.Errorf("%s = %s: got %v, %v; want nothing", prop, v, evs, err)
			}
			bad := strings.Replace(in, `"objectId":5`, `"objectId":0`, 1)
			if _, err := New(Config{}).Decode([]byte(bad)); event.ReasonOf(err) != event.ReasonInvalidValue {
				t.Errorf("%s = %s with objectId 0: err %v, want invalid_value", prop, v, err)
			}
		}
	}
}

// TestEventIDsDependOnTheFactNotTheDelivery: a retry (attemptNumber, subscriptionId, batch position) keeps every
// id; each identifying field changes it; one element's fan-out gets one id per type.
func TestEventIDsDependOnTheFactNotTheDelivery(t *testing.T) {
	stage := strings.NewReplacer(`"amount"`, `"dealstage"`, `"10"`, `"closedwon"`)
	ids := func(in string) []string {
		t.Helper()
		evs, err := New(Config{}).Decode([]byte(stage.Replace(in)))
		if err != nil || len(evs) != 2 {
			t.Fatalf("Decode(%s) = %v, %v; want stage_changed and closed", in, evs, err)
		}
		return []string{evs[0].Source + " " + evs[0].ID, evs[1].Source + " " + evs[1].ID}
	}
	orig := ids(with(t, "attemptNumber", `0`))
	if orig[0] == orig[1] {
		t.Fatalf("fan-out shares one id: %v", orig)
	}
	for _, same := range [][2]string{{"attemptNumber", `3`}, {"subscriptionId", `99`}, {"appId", `99`},
		{"changeSource", `"API"`}, {"sourceId", `"userId:7"`}} {
		if got := ids(with(t, same[0], same[1])); !slices.Equal(got, orig) {
			t.Errorf("%s=%s changed the ids: %v, was %v", same[0], same[1], got, orig)
		}
	}
	for _, other := range [][2]string{{"eventId", `9`}, {"occurredAt", `1772445600001`}, {"objectId", `9`},
		{"portalId", `9`}} {
		if got := ids(with(t, other[0], other[1])); got[0] == orig[0] || got[1] == orig[1] {
			t.Errorf("%s=%s kept an id: %v, was %v", other[0], other[1], got, orig)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []struct {
		cfg Config
		ok  bool
	}{
		{Config{}, true},
		{Config{Source: "hubspot-eu", WonStages: []string{"closedwon", "1234567"}, LostStages: []string{"closedlost"}}, true},
		{Config{WonStages: []string{"closedwon"}, LostStages: []string{"closedwon"}}, false},
		{Config{LostStages: []string{"closedwon"}}, false}, // overlaps the default won stage
		{Config{WonStages: []string{""}}, false},
		{Config{LostStages: []string{"closedlost", ""}}, false},
	} {
		if err := c.cfg.Validate(); (err == nil) != c.ok {
			t.Errorf("%+v: Validate() = %v, want ok=%v", c.cfg, err, c.ok)
		}
	}
}

func TestNameAndSource(t *testing.T) {
	if n := New(Config{}).Name(); n != "hubspot" {
		t.Errorf("Name() = %q", n)
	}
	in := []byte(with(t, "portalId", `42`))
	for cfg, want := range map[string]string{"": "hubspot/42", "hs-eu": "hs-eu/42"} {
		evs, err := New(Config{Source: cfg}).Decode(in)
		if err != nil || len(evs) != 1 || evs[0].Source != want {
			t.Errorf("Source %q: got %v, %v; want one event from %s", cfg, evs, err, want)
		}
	}
}

// TestDecodeDoesNotKeepValue: the worker reuses message buffers (ingest.Decoder contract).
func TestDecodeDoesNotKeepValue(t *testing.T) {
	in, err := os.ReadFile(filepath.Join("testdata", "creation_with_owner_in_same_batch.json"))
	if err != nil {
		t.Fatal(err)
	}
	buf := slices.Clone(in)
	evs, err := New(Config{}).Decode(buf)
	if err != nil {
		t.Fatal(err)
	}
	for i := range buf {
		buf[i] = 'x'
	}
	want, _ := New(Config{}).Decode(in)
	if !reflect.DeepEqual(evs, want) {
		t.Errorf("events changed when the input buffer was overwritten")
	}
}

// FuzzDecode: no input panics; every rejection carries a Reason and no events; every event passes event.Validate
// and survives the canonical decoder; events sharing (source, id) describe the same change of the same deal.
func FuzzDecode(f *testing.F) {
	inputs, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range inputs {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("[" + base + "]"))
	f.Add([]byte(`[{"subscriptionType":"deal.creation","objectId":1,"portalId":1,"eventId":0,"occurredAt":1},` +
		`{"subscriptionType":"deal.propertyChange","propertyName":"hubspot_owner_id","propertyValue":"o",` +
		`"objectId":1,"portalId":1,"eventId":0,"occurredAt":1}]`))
	decoders := []*Decoder{New(Config{}), New(customStages)}
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, d := range decoders {
			evs, err := d.Decode(in)
			if err != nil {
				if event.ReasonOf(err) == "" {
					t.Fatalf("error without a Reason: %v", err)
				}
				if evs != nil {
					t.Fatalf("events returned along with error %v", err)
				}
				continue
			}
			seen := map[[2]string]event.Event{}
			for _, e := range evs {
				if err := event.Validate(e); err != nil {
					t.Fatalf("invalid event %+v: %v", e, err)
				}
				raw, err := event.Encode(e)
				if err != nil {
					t.Fatalf("encode %+v: %v", e, err)
				}
				if _, err := event.Decode(raw); err != nil {
					t.Fatalf("canonical decoder rejects %s: %v", raw, err)
				}
				k := [2]string{e.Source, e.ID}
				if prev, ok := seen[k]; ok && (prev.Type != e.Type || prev.Data.DealID != e.Data.DealID || !prev.Time.Equal(e.Time)) {
					t.Fatalf("id %v names two different facts: %+v and %+v", k, prev, e)
				}
				seen[k] = e
			}
		}
	})
}
