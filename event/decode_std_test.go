package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"time"
	"unicode/utf8"
)

// decodeStd is the decoder Decode replaced, kept verbatim as the oracle of the differential fuzz test
// (FuzzDecodeMatchesStd): it decodes with encoding/json into maps of raw values, then checks them field by field.
// Decode must give the same event or the same rejection (reason and field path) on every input.
func decodeStd(raw []byte) (Event, error) {
	var ev Event
	if !utf8.Valid(raw) {
		return ev, fail(ReasonInvalidUTF8, "", "message is not valid UTF-8")
	}
	var top map[string]json.RawMessage
	if err := strictUnmarshal(raw, &top); err != nil || top == nil {
		if err == nil {
			err = errors.New("not a JSON object")
		}
		return ev, fail(ReasonMalformedJSON, "", "malformed JSON: %v", err)
	}
	var spec string
	if err := requiredStringStd(top, "specversion", &spec); err != nil {
		return ev, err
	}
	if spec != SpecVersion {
		return ev, fail(ReasonSpecVersion, "specversion", "must be %q, got %q", SpecVersion, spec)
	}
	for _, a := range []struct {
		name string
		dst  *string
	}{{"id", &ev.ID}, {"source", &ev.Source}, {"type", &ev.Type}} {
		if err := requiredStringStd(top, a.name, a.dst); err != nil {
			return ev, err
		}
	}
	fields, ok := schema[ev.Type]
	if !ok {
		return ev, fail(ReasonUnknownType, "type", "unknown event type %q", ev.Type)
	}
	var ts string
	if err := requiredStringStd(top, "time", &ts); err != nil {
		return ev, err
	}
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return ev, fail(ReasonInvalidTime, "time", "not an RFC 3339 timestamp: %q", ts)
	}
	ev.Time = t.UTC()
	if ct, ok := top["datacontenttype"]; ok {
		var s string
		if json.Unmarshal(ct, &s) != nil || (s != "application/json" && s != "") {
			return ev, fail(ReasonUnsupportedMode, "datacontenttype", "must be application/json")
		}
	}
	if _, ok := top["data_base64"]; ok {
		return ev, fail(ReasonUnsupportedMode, "data_base64", "binary data is not supported; send data as a JSON object")
	}
	rawData, ok := top["data"]
	if !ok || isNullStd(rawData) {
		return ev, fail(ReasonMissingField, "data", "required")
	}
	var data map[string]json.RawMessage
	if err := json.Unmarshal(rawData, &data); err != nil {
		return ev, fail(ReasonWrongType, "data", "must be an object")
	}
	for _, f := range fields {
		if err := decodeFieldStd(data, f, &ev.Data); err != nil {
			return ev, err
		}
	}
	return ev, Validate(ev)
}

func decodeFieldStd(data map[string]json.RawMessage, f field, d *Data) error {
	path := "data." + f.name
	raw, present := data[f.name]
	if !present || (isNullStd(raw) && f.kind != kNullableString) {
		if f.required {
			return fail(ReasonMissingField, path, "required")
		}
		return nil
	}
	switch f.kind {
	case kString, kNullableString:
		if isNullStd(raw) { // only reachable for kNullableString: explicit null means "no manager"
			return nil
		}
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return fail(ReasonWrongType, path, "must be a string")
		}
		if s == "" && identifiers[f.name] {
			return fail(ReasonMissingField, path, "must not be empty")
		}
		setStringStd(d, f.name, s)
	case kNumber:
		var n float64
		if err := json.Unmarshal(raw, &n); err != nil {
			return fail(ReasonWrongType, path, "must be a number")
		}
		switch f.name {
		case "amount":
			d.Amount = &n
		case "duration_minutes":
			d.DurationMinutes = &n
		}
	case kStringArray:
		var ss []string
		if json.Unmarshal(raw, &ss) != nil {
			return fail(ReasonWrongType, path, "must be an array of strings")
		}
		d.SubjectUserIDs = ss
	}
	return nil
}

func requiredStringStd(top map[string]json.RawMessage, name string, dst *string) error {
	raw, ok := top[name]
	if !ok || isNullStd(raw) {
		return fail(ReasonMissingField, name, "required")
	}
	if json.Unmarshal(raw, dst) != nil {
		return fail(ReasonWrongType, name, "must be a string")
	}
	if *dst == "" {
		return fail(ReasonMissingField, name, "must not be empty")
	}
	return nil
}

func isNullStd(raw json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("null")) }

// strictUnmarshal rejects anything but JSON white space (space, tab, CR, LF) after the JSON value, as json.Unmarshal
// does; kept separate so the rule is explicit. (Decoder.More is no test for it: it reports false before a stray '}'
// or ']'. Nor is bytes.TrimSpace, which also trims what JSON does not count as white space, such as a form feed or
// a no-break space.)
func strictUnmarshal(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if len(bytes.TrimLeft(raw[dec.InputOffset():], jsonSpace)) > 0 {
		return errors.New("trailing data after the JSON object")
	}
	return nil
}

// setStringStd is the reference's own map from field names to Data's fields (the decoder's is stringSlot).
func setStringStd(d *Data, name, v string) {
	switch name {
	case "user_id":
		d.UserID = v
	case "name":
		d.Name = v
	case "email":
		d.Email = v
	case "title":
		d.Title = v
	case "manager_id":
		d.ManagerID = Ptr(v) // a copy of v's header: taking &v would move v to the heap on every call
	case "deal_id":
		d.DealID = v
	case "owner_id":
		d.OwnerID = v
	case "previous_owner_id":
		d.PreviousOwnerID = v
	case "changed_by":
		d.ChangedBy = v
	case "stage":
		d.Stage = v
	case "previous_stage":
		d.PreviousStage = v
	case "currency":
		d.Currency = v
	case "outcome":
		d.Outcome = v
	case "activity_id":
		d.ActivityID = v
	case "kind":
		d.Kind = v
	case "actor_id":
		d.ActorID = v
	}
}
