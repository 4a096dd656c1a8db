package pipedrive

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/leadthrough/leadthrough/internal/golden"

	"github.com/leadthrough/leadthrough/event"
)

// render is the golden form of a decode: each event as event.Encode renders it, one per line, or one line naming
// the rejection's reason and message.
func render(t testing.TB, evs []event.Event, err error) []byte {
	t.Helper()
	var b bytes.Buffer
	if err != nil {
		b.WriteString("error " + string(event.ReasonOf(err)) + ": " + err.Error() + "\n")
		return b.Bytes()
	}
	for _, e := range evs {
		line, err := event.Encode(e)
		if err != nil {
			t.Fatalf("event %s breaks the contract: %v", e.ID, err)
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func inputs(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata/*.json: %v", err)
	}
	return files
}

// TestDecodeGolden decodes every testdata/<case>.json and compares with testdata/<case>.golden (go test -update
// rewrites them; review the diff).
func TestDecodeGolden(t *testing.T) {
	d := New(Config{})
	for _, in := range inputs(t) {
		name := strings.TrimSuffix(filepath.Base(in), ".json")
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			evs, err := d.Decode(raw)
			got := render(t, evs, err)
			goldenPath := strings.TrimSuffix(in, ".json") + ".golden"
			golden.Check(t, goldenPath, got)
		})
	}
}

// TestMalformedBodiesAreRejectedWithReasonAndField pins the reason and field of every malformed case, so a golden
// update cannot silently change how bad input is classified.
func TestMalformedBodiesAreRejectedWithReasonAndField(t *testing.T) {
	tests := []struct {
		file   string
		reason event.Reason
		field  string
	}{
		{"malformed_not_json", event.ReasonMalformedJSON, ""},
		{"malformed_missing_meta", event.ReasonMissingField, "meta"},
		{"malformed_missing_entity_id", event.ReasonMissingField, "meta.entity_id"},
		{"malformed_bad_timestamp", event.ReasonInvalidTime, "meta.timestamp"},
		{"malformed_negative_value", event.ReasonNegativeAmount, "data.value"},
		{"malformed_owner_id_wrong_type", event.ReasonWrongType, "data.owner_id"},
		{"malformed_webhooks_v1", event.ReasonSpecVersion, "meta.v"},
	}
	d := New(Config{})
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("testdata", tt.file+".json"))
			if err != nil {
				t.Fatal(err)
			}
			evs, err := d.Decode(raw)
			var ve *event.Error
			if !asError(err, &ve) {
				t.Fatalf("got events %v and error %v, want an *event.Error", evs, err)
			}
			if ve.Reason != tt.reason || ve.Field != tt.field {
				t.Errorf("got reason %q field %q (%v), want %q %q", ve.Reason, ve.Field, err, tt.reason, tt.field)
			}
		})
	}
}

func asError(err error, target **event.Error) bool { return errors.As(err, target) }

// mutate decodes testdata/<file>.json, applies f to it, and re-encodes it.
func mutate(t *testing.T, file string, f func(body map[string]any)) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", file+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil {
		t.Fatal(err)
	}
	f(body)
	out, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func section(body map[string]any, name string) map[string]any {
	m, _ := body[name].(map[string]any)
	return m
}

// TestRetriedDeliveryYieldsTheSameEventIDs: Pipedrive retries with the same meta.id and a higher meta.attempt;
// the retry must produce identical events so the store keeps one copy.
func TestRetriedDeliveryYieldsTheSameEventIDs(t *testing.T) {
	d := New(Config{})
	first, err := d.Decode(mutate(t, "deal_takeover_and_win_in_one_edit", func(map[string]any) {}))
	if err != nil {
		t.Fatal(err)
	}
	retry, err := d.Decode(mutate(t, "deal_takeover_and_win_in_one_edit", func(b map[string]any) {
		section(b, "meta")["attempt"] = 3
	}))
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != 3 || !reflect.DeepEqual(first, retry) {
		t.Fatalf("retry decoded differently:\n%+v\n%+v", first, retry)
	}
	seen := map[string]bool{}
	for _, e := range first {
		if seen[e.ID] {
			t.Errorf("id %s emitted twice by one webhook", e.ID)
		}
		seen[e.ID] = true
	}
}

func TestSourceIsConfiguredPrefixPlusCompanyID(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "deal_create.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ cfg, want string }{{"", "pipedrive/8087566"}, {"crm/acme-pd", "crm/acme-pd/8087566"}} {
		evs, err := New(Config{Source: tt.cfg}).Decode(raw)
		if err != nil {
			t.Fatal(err)
		}
		if evs[0].Source != tt.want {
			t.Errorf("Config{Source: %q}: source %q, want %q", tt.cfg, evs[0].Source, tt.want)
		}
	}
	if got := New(Config{}).Name(); got != "pipedrive" {
		t.Errorf("Name() = %q", got)
	}
}

func TestUpdateTimeIsTheFallbackEventTime(t *testing.T) {
	raw := mutate(t, "deal_owner_change", func(b map[string]any) { delete(section(b, "meta"), "timestamp") })
	evs, err := New(Config{}).Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	if got := evs[0].Time.Format("2006-01-02T15:04:05Z07:00"); got != "2026-03-05T14:30:00Z" {
		t.Errorf("time %s, want data.update_time 2026-03-05T14:30:00Z", got)
	}
}

func TestMetaIDsMayBeIntegers(t *testing.T) {
	raw := mutate(t, "deal_owner_change", func(b map[string]any) {
		m := section(b, "meta")
		m["entity_id"], m["company_id"], m["user_id"] = 101, 8087566, 2002
	})
	evs, err := New(Config{}).Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	if e := evs[0]; e.Data.DealID != "101" || e.Source != "pipedrive/8087566" || e.Data.ChangedBy != "2002" {
		t.Errorf("got %+v", e)
	}
}

// TestBadInputIsRejected covers the rules of the package documentation's "Validation" section that the golden
// cases do not.
func TestBadInputIsRejected(t *testing.T) {
	tests := []struct {
		name   string
		file   string
		edit   func(b map[string]any)
		reason event.Reason
		field  string
	}{
		{"invalid UTF-8", "", nil, event.ReasonInvalidUTF8, ""},
		{"array body", "", nil, event.ReasonMalformedJSON, ""},
		{"trailing data", "", nil, event.ReasonMalformedJSON, ""},
		{"meta not an object", "deal_create", func(b map[string]any) { b["meta"] = "x" }, event.ReasonWrongType, "meta"},
		{"version 1.0", "deal_create", func(b map[string]any) { section(b, "meta")["version"] = "1.0" },
			event.ReasonSpecVersion, "meta.version"},
		{"no version", "deal_create", func(b map[string]any) { delete(section(b, "meta"), "version") },
			event.ReasonMissingField, "meta.version"},
		{"no entity", "deal_create", func(b map[string]any) { delete(section(b, "meta"), "entity") },
			event.ReasonMissingField, "meta.entity"},
		{"unknown action", "deal_create", func(b map[string]any) { section(b, "meta")["action"] = "merge" },
			event.ReasonInvalidValue, "meta.action"},
		{"no meta.id", "deal_create", func(b map[string]any) { delete(section(b, "meta"), "id") },
			event.ReasonMissingField, "meta.id"},
		{"no company", "deal_create", func(b map[string]any) { delete(section(b, "meta"), "company_id") },
			event.ReasonMissingField, "meta.company_id"},
		{"entity id not a scalar", "deal_create", func(b map[string]any) { section(b, "meta")["entity_id"] = []int{1} },
			event.ReasonWrongType, "meta.entity_id"},
		{"data.id of another deal", "deal_create", func(b map[string]any) { section(b, "data")["id"] = 7 },
			event.ReasonInvalidValue, "data.id"},
		{"create without data", "deal_create", func(b map[string]any) { b["data"] = nil },
			event.ReasonMissingField, "data"},
		{"create without owner", "deal_create", func(b map[string]any) { section(b, "data")["owner_id"] = nil },
			event.ReasonMissingField, "data.owner_id"},
		{"owner id zero", "deal_create", func(b map[string]any) { section(b, "data")["owner_id"] = 0 },
			event.ReasonInvalidValue, "data.owner_id"},
		{"owner id fractional", "deal_create", func(b map[string]any) { section(b, "data")["owner_id"] = 1.5 },
			event.ReasonWrongType, "data.owner_id"},
		{"owner id as string", "deal_create", func(b map[string]any) { section(b, "data")["owner_id"] = "2001" },
			event.ReasonWrongType, "data.owner_id"},
		{"value as string", "deal_create", func(b map[string]any) { section(b, "data")["value"] = "12000" },
			event.ReasonWrongType, "data.value"},
		{"unknown status", "deal_create", func(b map[string]any) { section(b, "data")["status"] = "archived" },
			event.ReasonInvalidValue, "data.status"},
		{"time before 1970", "deal_create", func(b map[string]any) { section(b, "meta")["timestamp"] = "1969-12-31T23:59:59Z" },
			event.ReasonInvalidTime, "meta.timestamp"},
		{"time after 2106", "deal_create", func(b map[string]any) { section(b, "meta")["timestamp"] = "2106-02-07T06:28:16Z" },
			event.ReasonInvalidTime, "meta.timestamp"},
		{"no time at all", "deal_delete", func(b map[string]any) { delete(section(b, "meta"), "timestamp") },
			event.ReasonMissingField, "meta.timestamp"},
		{"previous owner of wrong type", "deal_owner_change", func(b map[string]any) { section(b, "previous")["owner_id"] = "x" },
			event.ReasonWrongType, "previous.owner_id"},
		{"owner change to nobody", "deal_owner_change", func(b map[string]any) { section(b, "data")["owner_id"] = nil },
			event.ReasonMissingField, "data.owner_id"},
		{"value change to null", "deal_value_change", func(b map[string]any) { section(b, "data")["value"] = nil },
			event.ReasonMissingField, "data.value"},
		{"status change without status", "deal_won", func(b map[string]any) { delete(section(b, "data"), "status") },
			event.ReasonMissingField, "data.status"},
		{"user name not a string", "user_create", func(b map[string]any) { section(b, "data")["name"] = 5 },
			event.ReasonWrongType, "data.name"},
		{"active_flag not a boolean", "user_create", func(b map[string]any) { section(b, "data")["active_flag"] = 0 },
			event.ReasonWrongType, "data.active_flag"},
	}
	valid, err := os.ReadFile(filepath.Join("testdata", "deal_create.json"))
	if err != nil {
		t.Fatal(err)
	}
	raw := map[string][]byte{
		"invalid UTF-8": append([]byte(`{"meta":{"entity":"`), 0xff, '"', '}', '}'),
		"array body":    []byte(`[` + string(valid) + `]`),
		"trailing data": append(bytes.Clone(valid), []byte(" {}")...),
	}
	d := New(Config{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := raw[tt.name]
			if tt.file != "" {
				in = mutate(t, tt.file, tt.edit)
			}
			evs, err := d.Decode(in)
			var ve *event.Error
			if !asError(err, &ve) {
				t.Fatalf("got events %+v and error %v, want an *event.Error", evs, err)
			}
			if ve.Reason != tt.reason || ve.Field != tt.field {
				t.Errorf("got reason %q field %q (%v), want %q %q", ve.Reason, ve.Field, err, tt.reason, tt.field)
			}
		})
	}
}

// TestChangeMappingsWithoutGoldenFiles pins mapping rules of the package documentation by the event types they emit.
func TestChangeMappingsWithoutGoldenFiles(t *testing.T) {
	tests := []struct {
		name string
		file string
		edit func(b map[string]any)
		want []string
	}{
		{"change without previous emits nothing", "deal_owner_change", func(b map[string]any) { b["previous"] = nil }, nil},
		{"lost to won closes again as won", "deal_won", func(b map[string]any) { section(b, "previous")["status"] = "lost" },
			[]string{event.DealStageChanged, event.DealClosed}},
		{"restore from deleted emits nothing", "deal_reopen", func(b map[string]any) { section(b, "previous")["status"] = "deleted" }, nil},
		{"open after open is not a reopen", "deal_reopen", func(b map[string]any) { section(b, "previous")["status"] = nil }, nil},
		{"currency change is an amount change", "deal_value_change", func(b map[string]any) {
			b["previous"] = map[string]any{"currency": "USD"}
		}, []string{event.DealAmountChanged}},
		{"stage set from none has no previous stage", "deal_stage_change", func(b map[string]any) {
			section(b, "previous")["stage_id"] = nil
		}, []string{event.DealStageChanged}},
		{"user delete deactivates", "user_create", func(b map[string]any) {
			section(b, "meta")["action"] = "delete"
			b["previous"], b["data"] = b["data"], nil
		}, []string{event.UserDeactivated}},
		{"user created inactive", "user_create", func(b map[string]any) { section(b, "data")["active_flag"] = false },
			[]string{event.UserUpserted, event.UserDeactivated}},
		{"reactivation is only an upsert", "user_deactivated", func(b map[string]any) {
			section(b, "data")["active_flag"], section(b, "previous")["active_flag"] = true, false
		}, []string{event.UserUpserted}},
	}
	d := New(Config{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, err := d.Decode(mutate(t, tt.file, tt.edit))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range evs {
				got = append(got, e.Type)
				if err := event.Validate(e); err != nil {
					t.Errorf("%s: %v", e.Type, err)
				}
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("emitted %v, want %v", got, tt.want)
			}
		})
	}
}

// TestIgnoredEntitiesAreNotValidated: a body for an entity leadthrough does not map emits nothing even when its
// data is odd, so unrelated webhooks never fill the dead-letter topic.
func TestIgnoredEntitiesAreNotValidated(t *testing.T) {
	raw := mutate(t, "person_create", func(b map[string]any) {
		b["data"] = "not an object"
		delete(section(b, "meta"), "timestamp")
	})
	evs, err := New(Config{}).Decode(raw)
	if err != nil || len(evs) != 0 {
		t.Fatalf("got %v, %v; want nothing", evs, err)
	}
}

// FuzzDecode: no input panics, every rejection carries a Reason, and every event passes event.Validate and has a
// unique id within its message.
func FuzzDecode(f *testing.F) {
	for _, in := range inputs(f) {
		raw, err := os.ReadFile(in)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	d := New(Config{})
	f.Fuzz(func(t *testing.T, raw []byte) {
		evs, err := d.Decode(raw)
		if err != nil {
			if event.ReasonOf(err) == "" {
				t.Fatalf("error without a reason: %v", err)
			}
			if evs != nil {
				t.Fatalf("events %v returned with error %v", evs, err)
			}
			return
		}
		ids := map[string]bool{}
		for _, e := range evs {
			if err := event.Validate(e); err != nil {
				t.Fatalf("event breaks the contract: %v\n%+v", err, e)
			}
			if ids[e.ID] {
				t.Fatalf("id %s twice in one message", e.ID)
			}
			ids[e.ID] = true
			if _, err := event.Encode(e); err != nil {
				t.Fatalf("event does not encode: %v", err)
			}
		}
	})
}
