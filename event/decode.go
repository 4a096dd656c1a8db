package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// Reason is a bounded classification of why an input was rejected. It is used as a metric label and a dead-letter
// header, so it must stay a small fixed set.
type Reason string

// Rejection reasons.
const (
	ReasonMalformedJSON   Reason = "malformed_json"
	ReasonInvalidUTF8     Reason = "invalid_utf8"
	ReasonOversized       Reason = "oversized"
	ReasonSpecVersion     Reason = "unsupported_specversion"
	ReasonUnknownType     Reason = "unknown_type"
	ReasonMissingField    Reason = "missing_field"
	ReasonWrongType       Reason = "wrong_type"
	ReasonInvalidTime     Reason = "invalid_time"
	ReasonNegativeAmount  Reason = "negative_amount"
	ReasonInvalidValue    Reason = "invalid_value"
	ReasonUnsupportedMode Reason = "unsupported_content_mode"
)

// Error is a validation failure. Its message names the field path and the reason, e.g. "data.amount: must be >= 0".
type Error struct {
	Reason Reason
	Field  string // JSON path such as "data.amount"; empty when the whole message is at fault
	Detail string
}

func (e *Error) Error() string {
	if e.Field == "" {
		return e.Detail
	}
	return e.Field + ": " + e.Detail
}

// ReasonOf returns the Reason of err if it is (or wraps) an *Error, else "".
func ReasonOf(err error) Reason {
	var ve *Error
	if errors.As(err, &ve) {
		return ve.Reason
	}
	return ""
}

func fail(r Reason, field, format string, args ...any) *Error {
	return &Error{Reason: r, Field: field, Detail: fmt.Sprintf(format, args...)}
}

// fieldKind is the JSON shape a data field must have.
type fieldKind int

const (
	kString fieldKind = iota
	kNullableString
	kNumber
	kStringArray
)

type field struct {
	name     string
	kind     fieldKind
	required bool

	index int        // dataFieldIndex[name], set by init
	ident bool       // identifiers[name], set by init
	slot  stringSlot // which of Data's strings a kString field is, set by init; noSlot for the other kinds
}

// schema lists each type's data fields exactly as in DESIGN.md; required fields first.
var schema = map[string][]field{
	UserUpserted:       {req("user_id", kString), opt("name", kString), opt("email", kString), opt("title", kString)},
	UserManagerChanged: {req("user_id", kString), req("manager_id", kNullableString)},
	UserDeactivated:    {req("user_id", kString)},
	DealCreated: {req("deal_id", kString), req("owner_id", kString), opt("name", kString), opt("amount", kNumber),
		opt("currency", kString), opt("stage", kString)},
	DealOwnerChanged: {req("deal_id", kString), req("owner_id", kString), opt("previous_owner_id", kString),
		opt("changed_by", kString)},
	DealStageChanged:  {req("deal_id", kString), req("stage", kString), opt("previous_stage", kString)},
	DealAmountChanged: {req("deal_id", kString), req("amount", kNumber), opt("currency", kString)},
	DealClosed: {req("deal_id", kString), req("outcome", kString), opt("amount", kNumber),
		opt("currency", kString)},
	DealReopened: {req("deal_id", kString)},
	DealDeleted:  {req("deal_id", kString)},
	ActivityLogged: {req("activity_id", kString), req("kind", kString), req("actor_id", kString),
		req("subject_user_ids", kStringArray), opt("deal_id", kString), opt("duration_minutes", kNumber)},
}

func req(name string, kind fieldKind) field { return field{name: name, kind: kind, required: true} }
func opt(name string, kind fieldKind) field { return field{name: name, kind: kind} }

// identifiers are fields that name an entity; they must not be empty when present.
var identifiers = map[string]bool{
	"user_id": true, "manager_id": true, "deal_id": true, "owner_id": true, "previous_owner_id": true,
	"changed_by": true, "activity_id": true, "actor_id": true, "kind": true, "stage": true,
}

// Decode parses and strictly validates one structured-mode CloudEvents JSON document.
// Every failure is an *Error whose Reason classifies it and whose Field names the JSON path at fault.
//
// The whole document is checked against JSON's grammar before any attribute is looked at, so a syntax error
// anywhere is ReasonMalformedJSON. Attributes are then checked in a fixed order (specversion, id, source, type,
// time, datacontenttype, data_base64, data, then the type's data fields in schema order), and the first failure
// is returned. A repeated key counts with its last value, as in encoding/json, whose results Decode reproduces
// exactly (FuzzDecodeMatchesStd) at a fraction of its cost.
//
// The strings of the returned Event share raw's memory instead of copying it: raw must not be modified afterwards.
func Decode(raw []byte) (Event, error) {
	var ev Event
	if !utf8.Valid(raw) {
		return ev, fail(ReasonInvalidUTF8, "", "message is not valid UTF-8")
	}
	var top struct{ spec, id, source, typ, time, contentType, base64, data span }
	var values [numDataFields]span // the members of data
	s := scanner{data: raw, dataFields: &values}
	s.skipSpace()
	ok := s.pos < len(raw) && raw[s.pos] == '{' && s.object(func(key, value span) {
		switch text(raw, key) {
		case "specversion":
			top.spec = value
		case "id":
			top.id = value
		case "source":
			top.source = value
		case "type":
			top.typ = value
		case "time":
			top.time = value
		case "datacontenttype":
			top.contentType = value
		case "data_base64":
			top.base64 = value
		case "data":
			top.data = value
		}
	})
	if s.skipSpace(); !ok || s.pos != len(raw) {
		return ev, fail(ReasonMalformedJSON, "", "malformed JSON: %s", syntaxProblem(raw, s.pos, ok))
	}
	at := func(v span) jsonValue { return raw[v.start:v.end] }

	spec, err := requiredText(raw, top.spec, "specversion")
	if err != nil {
		return ev, err
	}
	if spec != SpecVersion {
		return ev, fail(ReasonSpecVersion, "specversion", "must be %q, got %q", SpecVersion, spec)
	}
	if ev.ID, err = requiredText(raw, top.id, "id"); err != nil {
		return ev, err
	}
	if ev.Source, err = requiredText(raw, top.source, "source"); err != nil {
		return ev, err
	}
	if ev.Type, err = requiredText(raw, top.typ, "type"); err != nil {
		return ev, err
	}
	typ, ok := typesByName.get(ev.Type)
	if !ok {
		return ev, fail(ReasonUnknownType, "type", "unknown event type %q", ev.Type)
	}
	ev.Type = typ.name // shares the constant's memory instead of a copy per event
	fields := typ.fields
	ts, err := requiredText(raw, top.time, "time")
	if err != nil {
		return ev, err
	}
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return ev, fail(ReasonInvalidTime, "time", "not an RFC 3339 timestamp: %q", ts)
	}
	ev.Time = t.UTC()
	if ct := at(top.contentType); top.contentType.present() && !ct.isNull() &&
		!(ct.isString() && (ct.equals("application/json") || ct.equals(""))) {
		return ev, fail(ReasonUnsupportedMode, "datacontenttype", "must be application/json")
	}
	if top.base64.present() {
		return ev, fail(ReasonUnsupportedMode, "data_base64", "binary data is not supported; send data as a JSON object")
	}
	data := at(top.data)
	if !top.data.present() || data.isNull() {
		return ev, fail(ReasonMissingField, "data", "required")
	}
	if !data.isObject() {
		return ev, fail(ReasonWrongType, "data", "must be an object")
	}
	for _, f := range fields {
		if err := decodeField(raw, values[f.index], f, &ev.Data); err != nil {
			return ev, err
		}
	}
	return ev, validateData(&ev, typ)
}

// requiredText is the string value of a required attribute, at sp in raw.
func requiredText(raw []byte, sp span, name string) (string, error) {
	v := jsonValue(raw[sp.start:sp.end])
	switch {
	case len(v) == 0 || v.isNull():
		return "", fail(ReasonMissingField, name, "required")
	case !v.isString():
		return "", fail(ReasonWrongType, name, "must be a string")
	}
	s := text(raw, sp)
	if s == "" {
		return "", fail(ReasonMissingField, name, "must not be empty")
	}
	return s, nil
}

// decodeField sets one data field from its value at sp in raw (absent when sp is). The field path is built only for
// an error: this runs for every field of every event.
func decodeField(raw []byte, sp span, f field, d *Data) error {
	v := jsonValue(raw[sp.start:sp.end])
	if len(v) == 0 || (v.isNull() && f.kind != kNullableString) {
		if f.required {
			return fail(ReasonMissingField, "data."+f.name, "required")
		}
		return nil
	}
	switch f.kind {
	case kString, kNullableString:
		if v.isNull() { // only reachable for kNullableString: explicit null means "no manager"
			return nil
		}
		if !v.isString() {
			return fail(ReasonWrongType, "data."+f.name, "must be a string")
		}
		s := text(raw, sp)
		if s == "" && f.ident {
			return fail(ReasonMissingField, "data."+f.name, "must not be empty")
		}
		if f.slot != noSlot {
			*d.stringAt(f.slot) = s
		} else { // manager_id, the only kNullableString
			d.ManagerID = Ptr(s) // a copy of s's header: taking &s would move s to the heap on every call
		}
	case kNumber:
		n, ok := v.float()
		if !v.isNumber() || !ok {
			return fail(ReasonWrongType, "data."+f.name, "must be a number")
		}
		switch f.name {
		case "amount":
			d.Amount = &n
		case "duration_minutes":
			d.DurationMinutes = &n
		}
	case kStringArray:
		ss, ok := stringArray(v)
		if !ok {
			return fail(ReasonWrongType, "data."+f.name, "must be an array of strings")
		}
		d.SubjectUserIDs = ss
	}
	return nil
}

// stringArray converts an array of strings; a null element becomes "", as in encoding/json.
func stringArray(v jsonValue) ([]string, bool) {
	if !v.isArray() {
		return nil, false
	}
	ss := []string{}
	s := scanner{data: v, pos: 1}
	for {
		s.skipSpace()
		if v[s.pos] == ']' {
			return ss, true
		}
		e, _ := s.value() // validated: cannot fail
		switch el := v[e.start:e.end]; {
		case el.isString():
			ss = append(ss, text(v, e))
		case el.isNull():
			ss = append(ss, "")
		default:
			return nil, false
		}
		s.skipSpace()
		if v[s.pos] == ',' {
			s.pos++
		}
	}
}

// syntaxProblem describes where a document stopped being JSON, for the dead letter's reason text.
func syntaxProblem(raw []byte, pos int, parsed bool) string {
	switch trimmed := bytes.TrimLeft(raw, jsonSpace); {
	case parsed:
		return fmt.Sprintf("trailing data after the JSON object at offset %d", pos)
	case len(trimmed) > 0 && trimmed[0] != '{':
		return "not a JSON object"
	case pos >= len(raw):
		return "unexpected end of JSON input"
	default:
		return fmt.Sprintf("invalid character %q at offset %d", raw[pos], pos)
	}
}

// jsonSpace is the white space JSON allows around values (RFC 8259, section 2).
const jsonSpace = " \t\r\n"

// numDataFields is the number of distinct data field names in schema.
const numDataFields = 19

// dataFieldIndex numbers the data fields of every type, 0 to numDataFields-1.
var dataFieldIndex = func() map[string]int {
	index := map[string]int{}
	for _, typ := range Types {
		for _, f := range schema[typ] {
			if _, ok := index[f.name]; !ok {
				index[f.name] = len(index)
			}
		}
	}
	if len(index) != numDataFields {
		panic(fmt.Sprintf("event: schema has %d data fields, numDataFields says %d", len(index), numDataFields))
	}
	return index
}()

// eventType is a type's constant and its data fields.
type eventType struct {
	name   string
	fields []field
}

// typesByName and dataFieldsByName are what Decode looks up for every document and key: schema and
// dataFieldIndex without hashing.
var (
	typesByName      names[eventType]
	dataFieldsByName names[int]
)

func init() {
	for name, i := range dataFieldIndex {
		dataFieldsByName.add(name, i)
	}
	for _, typ := range Types {
		fields := schema[typ]
		for i := range fields {
			fields[i].index, fields[i].ident = dataFieldIndex[fields[i].name], identifiers[fields[i].name]
			if fields[i].kind == kString {
				fields[i].slot = stringSlotOf(fields[i].name)
			}
		}
		typesByName.add(typ, eventType{name: typ, fields: fields})
	}
}

// names finds a name among a fixed few without hashing it: they are bucketed by length, so a lookup is an index
// and a comparison or two. (Hashing each key of each document was ~5% of an ingest worker's CPU.)
type names[T any] struct {
	byLen [][]named[T]
}

type named[T any] struct {
	name  string
	value T
}

func (n *names[T]) add(name string, v T) {
	for len(n.byLen) <= len(name) {
		n.byLen = append(n.byLen, nil)
	}
	n.byLen[len(name)] = append(n.byLen[len(name)], named[T]{name, v})
}

func (n *names[T]) get(name string) (T, bool) {
	if len(name) < len(n.byLen) {
		for _, e := range n.byLen[len(name)] {
			if e.name == name {
				return e.value, true
			}
		}
	}
	var zero T
	return zero, false
}

// Validate checks the rules that do not depend on JSON shape. Decode calls it; producers call it before sending.
func Validate(ev Event) error { return validate(&ev) }

// validate is Validate without a copy of the event.
func validate(ev *Event) error {
	if ev.ID == "" {
		return fail(ReasonMissingField, "id", "must not be empty")
	}
	if ev.Source == "" {
		return fail(ReasonMissingField, "source", "must not be empty")
	}
	typ, ok := typesByName.get(ev.Type)
	if !ok {
		return fail(ReasonUnknownType, "type", "unknown event type %q", ev.Type)
	}
	return validateData(ev, typ)
}

// validateData is the rest of validate once ID, Source and Type passed and typ is ev's type: what Decode calls,
// which checked those itself.
func validateData(ev *Event, typ eventType) error {
	if ev.Time.IsZero() { // "0001-01-01T00:00:00Z" parses
		return fail(ReasonInvalidTime, "time", "required")
	}
	d := &ev.Data
	for _, f := range typ.fields {
		if f.required && f.kind == kString && *d.stringAt(f.slot) == "" {
			return fail(ReasonMissingField, "data."+f.name, "required")
		}
	}
	if d.Amount != nil && *d.Amount < 0 {
		return fail(ReasonNegativeAmount, "data.amount", "must be >= 0")
	}
	if d.DurationMinutes != nil && *d.DurationMinutes < 0 {
		return fail(ReasonInvalidValue, "data.duration_minutes", "must be >= 0")
	}
	switch ev.Type {
	case DealClosed:
		if d.Outcome != OutcomeWon && d.Outcome != OutcomeLost {
			return fail(ReasonInvalidValue, "data.outcome", "must be %q or %q, got %q", OutcomeWon, OutcomeLost, d.Outcome)
		}
	case DealAmountChanged:
		if d.Amount == nil {
			return fail(ReasonMissingField, "data.amount", "required")
		}
	case UserManagerChanged:
		if d.ManagerID != nil && *d.ManagerID == d.UserID {
			return fail(ReasonInvalidValue, "data.manager_id", "a user cannot be their own manager")
		}
	case ActivityLogged:
		if len(d.SubjectUserIDs) == 0 {
			return fail(ReasonMissingField, "data.subject_user_ids", "must name at least one user")
		}
		if i := slices.Index(d.SubjectUserIDs, ""); i >= 0 {
			return fail(ReasonInvalidValue, fmt.Sprintf("data.subject_user_ids[%d]", i), "must not be empty")
		}
	}
	return nil
}

// stringSlot names one of Data's string fields, so that decoding sets and checks them without comparing field
// names (a switch on a number, and no function value through which Data would escape to the heap).
type stringSlot uint8

const (
	noSlot stringSlot = iota
	slotUserID
	slotName
	slotEmail
	slotTitle
	slotDealID
	slotOwnerID
	slotPreviousOwnerID
	slotChangedBy
	slotStage
	slotPreviousStage
	slotCurrency
	slotOutcome
	slotActivityID
	slotKind
	slotActorID
)

// stringSlotOf is the slot of the data field name; init panics on a schema entry without one.
func stringSlotOf(name string) stringSlot {
	switch name {
	case "user_id":
		return slotUserID
	case "name":
		return slotName
	case "email":
		return slotEmail
	case "title":
		return slotTitle
	case "deal_id":
		return slotDealID
	case "owner_id":
		return slotOwnerID
	case "previous_owner_id":
		return slotPreviousOwnerID
	case "changed_by":
		return slotChangedBy
	case "stage":
		return slotStage
	case "previous_stage":
		return slotPreviousStage
	case "currency":
		return slotCurrency
	case "outcome":
		return slotOutcome
	case "activity_id":
		return slotActivityID
	case "kind":
		return slotKind
	case "actor_id":
		return slotActorID
	}
	panic("event: no string field " + name + " in Data")
}

// stringAt is the field of d in slot k.
func (d *Data) stringAt(k stringSlot) *string {
	switch k {
	case slotUserID:
		return &d.UserID
	case slotName:
		return &d.Name
	case slotEmail:
		return &d.Email
	case slotTitle:
		return &d.Title
	case slotDealID:
		return &d.DealID
	case slotOwnerID:
		return &d.OwnerID
	case slotPreviousOwnerID:
		return &d.PreviousOwnerID
	case slotChangedBy:
		return &d.ChangedBy
	case slotStage:
		return &d.Stage
	case slotPreviousStage:
		return &d.PreviousStage
	case slotCurrency:
		return &d.Currency
	case slotOutcome:
		return &d.Outcome
	case slotActivityID:
		return &d.ActivityID
	case slotKind:
		return &d.Kind
	case slotActorID:
		return &d.ActorID
	}
	panic("event: no string field in slot " + strconv.Itoa(int(k)))
}

// Encode renders ev as a structured-mode CloudEvents JSON document. It validates first so producers cannot emit what
// consumers would dead-letter.
func Encode(ev Event) ([]byte, error) {
	if err := Validate(ev); err != nil {
		return nil, err
	}
	type wire struct {
		SpecVersion     string `json:"specversion"`
		ID              string `json:"id"`
		Source          string `json:"source"`
		Type            string `json:"type"`
		Time            string `json:"time"`
		DataContentType string `json:"datacontenttype"`
		Data            any    `json:"data"`
	}
	var data any = ev.Data
	if ev.Type == UserManagerChanged && ev.Data.ManagerID == nil {
		// manager_id is required but nullable: omitempty would drop the explicit null.
		data = struct {
			UserID    string  `json:"user_id"`
			ManagerID *string `json:"manager_id"`
		}{ev.Data.UserID, nil}
	}
	return json.Marshal(wire{SpecVersion, ev.ID, ev.Source, ev.Type, ev.Time.UTC().Format(time.RFC3339Nano), "application/json", data})
}
