package event

import (
	"reflect"
	"strings"
	"testing"
)

// FuzzDecodeMatchesStd is the differential test of Decode against decodeStd, the encoding/json decoder it
// replaced: on any input both give the same event, or both reject it with the same reason and field path. (The
// detail text of a syntax error may differ: encoding/json words it its own way.)
func FuzzDecodeMatchesStd(f *testing.F) {
	for _, seed := range differentialSeeds {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, gotErr := Decode(raw)
		want, wantErr := decodeStd(raw)
		if (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("input %q:\nDecode:    %v\ndecodeStd: %v", raw, gotErr, wantErr)
		}
		if wantErr != nil {
			g, w := gotErr.(*Error), wantErr.(*Error)
			if g.Reason != w.Reason || g.Field != w.Field {
				t.Fatalf("input %q:\nDecode rejects with    %s %q (%v)\ndecodeStd rejects with %s %q (%v)",
					raw, g.Reason, g.Field, g, w.Reason, w.Field, w)
			}
			if g.Reason != ReasonMalformedJSON && g.Detail != w.Detail {
				t.Fatalf("input %q: detail %q, decodeStd says %q", raw, g.Detail, w.Detail)
			}
			return
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("input %q:\nDecode:    %+v\ndecodeStd: %+v", raw, got, want)
		}
	})
}

// differentialSeeds reach every branch of both decoders: each attribute missing, null, of the wrong type or
// empty; escapes and surrogates; repeated keys; numbers at the edges of float64; nesting; trailing data.
var differentialSeeds = func() []string {
	head := `{"specversion":"1.0","id":"1","source":"s","type":`
	tm := `"time":"2026-03-02T14:05:00Z"`
	seeds := []string{
		valid, valid + "\n", " \t" + valid + "\r\n", valid + "}", valid + "x", "{}", "[]", "null", `"x"`, "1", "",
		"\xff", "{\"a\":\"\xff\"}", `{"a":01}`, `{"a":1.}`, `{"a":-}`, `{"a":1e}`, `{"a":tru}`, `{"a":[1,]}`,
		`{"a":{"b":}}`, `{"a" 1}`, `{,}`, `{"a":"\x01"}`, `{"a":"\q"}`, `{"a":"\u12"}`, "\f{}",
		head + `"deal.closed",` + tm + `,"data":{"deal_id":"D","outcome":"won","amount":1e400}}`,
		head + `"deal.closed",` + tm + `,"data":{"deal_id":"D","outcome":"won","amount":-0}}`,
		head + `"deal.closed",` + tm + `,"data":{"deal_id":"D","outcome":"won","amount":"1"}}`,
		head + `"deal.closed",` + tm + `,"data":{"deal_id":"D","outcome":"won","amount":-1.5E-3}}`,
		head + `"deal.closed",` + tm + `,"data":{"deal_id":"D\u0000","outcome":"w\u006fn","amount":null}}`,
		head + `"deal.closed",` + tm + `,"data":{"deal_id":"D","deal_id":"","outcome":"won"}}`,
		head + `"user.manager_changed",` + tm + `,"data":{"user_id":"U","manager_id":null}}`,
		head + `"user.manager_changed",` + tm + `,"data":{"user_id":"U","manager_id":"U"}}`,
		head + `"user.manager_changed",` + tm + `,"data":{"user_id":"U"}}`,
		head + `"user.upserted",` + tm + `,"data":{"user_id":"\ud83d\ude00\ud800x\udc00\ud800\u0041","name":7}}`,
		head + `"activity.logged",` + tm + `,"data":{"activity_id":"A","kind":"call","actor_id":"M","subject_user_ids":["R",null]}}`,
		head + `"activity.logged",` + tm + `,"data":{"activity_id":"A","kind":"call","actor_id":"M","subject_user_ids":[]}}`,
		head + `"activity.logged",` + tm + `,"data":{"activity_id":"A","kind":"call","actor_id":"M","subject_user_ids":[1]}}`,
		head + `"activity.logged",` + tm + `,"data":{"activity_id":"A","kind":"call","actor_id":"M","subject_user_ids":"R","duration_minutes":-1}}`,
		head + `"deal.reopened",` + tm + `,"data":[]}`,
		head + `"deal.reopened",` + tm + `,"data":null}`,
		head + `"deal.reopened",` + tm + `,"data_base64":null,"data":{"deal_id":"D"}}`,
		head + `"deal.reopened",` + tm + `,"datacontenttype":null,"data":{"deal_id":"D"}}`,
		head + `"deal.reopened",` + tm + `,"datacontenttype":"","data":{"deal_id":"D"}}`,
		head + `"deal.reopened",` + tm + `,"datacontenttype":"text/plain","data":{"deal_id":"D"}}`,
		head + `"deal.reopened",` + tm + `,"datacontenttype":1,"data":{"deal_id":"D"}}`,
		head + `"deal.reopened","time":"2026-03-02T14:05:00+02:00","data":{"deal_id":"D"}}`,
		head + `"deal.reopened","time":"0001-01-01T00:00:00Z","data":{"deal_id":"D"}}`,
		head + `"deal.reopened","time":"yesterday","data":{"deal_id":"D"}}`,
		head + `"deal.reopened","time":1,"data":{"deal_id":"D"}}`,
		head + `"deal.nope",` + tm + `,"data":{}}`,
		head + `7,` + tm + `,"data":{}}`,
		`{"specversion":"0.3","id":"1"}`, `{"specversion":null}`, `{"specversion":""}`, `{"specversion":1}`,
		`{"spec\u0076ersion":"1.0","id":"1","source":"s","type":"deal.reopened",` + tm + `,"data":{"deal\u005fid":"D"}}`,
		`{"specversion":"1.0","id":"","source":"s"}`, `{"specversion":"1.0","id":"1","source":[]}`,
		`{"specversion":"1.0","id":"1","source":"s","type":"deal.reopened","type":"deal.deleted",` + tm + `,"data":{"deal_id":"D"}}`,
		strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
		`{"a":` + strings.Repeat("[", 9999) + strings.Repeat("]", 9999) + `}`,
		`{"a":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}`,
	}
	return seeds
}()

// TestDecodeMatchesStdOnSeeds runs the differential check on its seeds in every `go test`, fuzzing or not.
func TestDecodeMatchesStdOnSeeds(t *testing.T) {
	for _, seed := range differentialSeeds {
		got, gotErr := Decode([]byte(seed))
		want, wantErr := decodeStd([]byte(seed))
		if (gotErr == nil) != (wantErr == nil) || !reflect.DeepEqual(got, want) && gotErr == nil ||
			gotErr != nil && (ReasonOf(gotErr) != ReasonOf(wantErr) || gotErr.(*Error).Field != wantErr.(*Error).Field) {
			t.Errorf("input %.80q:\nDecode:    %+v, %v\ndecodeStd: %+v, %v", seed, got, gotErr, want, wantErr)
		}
	}
}
