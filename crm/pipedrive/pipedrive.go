package pipedrive

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/leadthrough/leadthrough/event"
)

// DefaultSource is Config.Source when none is given.
const DefaultSource = "pipedrive"

// Config configures a Decoder.
type Config struct {
	// Source prefixes the source of every event, which is Source + "/" + meta.company_id, so that two Pipedrive
	// companies (or a Pipedrive company and another CRM) never share an event identity.
	//
	// Default: "pipedrive" (DefaultSource).
	Source string
}

// Decoder decodes Pipedrive webhooks v2 bodies. It implements ingest.Decoder; it is stateless and safe for
// concurrent use.
type Decoder struct {
	source string
}

// New returns a Decoder for cfg.
func New(cfg Config) *Decoder {
	if cfg.Source == "" {
		cfg.Source = DefaultSource
	}
	return &Decoder{source: cfg.Source}
}

// Name is the decoder's name in dead-letter headers: "pipedrive".
func (*Decoder) Name() string { return "pipedrive" }

// Pipedrive actions and deal statuses, as webhooks v2 spells them.
const (
	actionCreate = "create"
	actionChange = "change"
	actionDelete = "delete"

	statusOpen    = "open"
	statusWon     = "won"
	statusLost    = "lost"
	statusDeleted = "deleted"
)

// ClickHouse's DateTime (UInt32 seconds) holds 1970-01-01T00:00:00Z to 2106-02-07T06:28:15Z. An event time outside
// it would make every insert of its batch fail, and the worker retries a failed batch forever, so such a time is
// rejected here as bad input instead.
var (
	minTime = time.Unix(0, 0).UTC()
	maxTime = time.Unix(math.MaxUint32, int64(time.Second-time.Millisecond)).UTC()
)

// Decode maps one webhooks v2 body (a JSON object with meta, data and previous) to canonical events: none for an
// entity or a change leadthrough does not track, one or more otherwise. Every rejection is an *event.Error. See the
// package documentation for the mapping and the validation rules.
func (d *Decoder) Decode(value []byte) ([]event.Event, error) {
	if !utf8.Valid(value) {
		return nil, fail(event.ReasonInvalidUTF8, "", "message is not valid UTF-8")
	}
	root, err := parse(value)
	if err != nil {
		return nil, err
	}
	meta, ok, err := root.object("meta")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fail(event.ReasonMissingField, "meta", "required: not a Pipedrive webhooks v2 body")
	}
	if err := checkVersion(meta); err != nil {
		return nil, err
	}
	entity, err := meta.requiredString("entity")
	if err != nil {
		return nil, err
	}
	if entity != "deal" && entity != "user" {
		return nil, nil // persons, organizations, activities, leads, …: nothing leadthrough tracks
	}

	h, err := d.header(root, meta)
	if err != nil {
		return nil, err
	}
	if entity == "deal" {
		return h.deal()
	}
	return h.user()
}

// checkVersion accepts webhooks v2 ("2.0"). A v1 body (meta.v = 1, no meta.version) is told apart from a body
// without a version so the dead letter says what to fix.
func checkVersion(meta object) error {
	v, ok, err := meta.string("version")
	if err != nil {
		return err
	}
	if !ok {
		if meta.has("v") {
			return fail(event.ReasonSpecVersion, "meta.v",
				"webhooks v1 body: create the Pipedrive webhook with version \"2.0\"")
		}
		return fail(event.ReasonMissingField, "meta.version", "required")
	}
	if major, _, _ := strings.Cut(v, "."); major != "2" {
		return fail(event.ReasonSpecVersion, "meta.version", "must be 2.x (webhooks v2), got %s", quote(v))
	}
	return nil
}

// header is what every event of one webhook shares, plus the body's data and previous objects.
type header struct {
	source    string
	id        string // meta.id
	action    string
	entityID  string // the deal or user id
	changedBy string // meta.user_id, may be empty
	time      time.Time
	data      object // empty when absent or null
	hasData   bool
	previous  object // empty when absent or null: only fields that changed, with their old values
}

func (d *Decoder) header(root, meta object) (header, error) {
	var h header
	var err error
	if h.action, err = meta.requiredString("action"); err != nil {
		return h, err
	}
	if h.action != actionCreate && h.action != actionChange && h.action != actionDelete {
		return h, fail(event.ReasonInvalidValue, "meta.action", "must be %q, %q or %q, got %s",
			actionCreate, actionChange, actionDelete, quote(h.action))
	}
	if h.id, err = meta.requiredString("id"); err != nil {
		return h, err
	}
	company, ok, err := meta.identifier("company_id")
	if err != nil {
		return h, err
	}
	if !ok {
		return h, fail(event.ReasonMissingField, "meta.company_id", "required")
	}
	h.source = d.source + "/" + company
	if h.entityID, ok, err = meta.identifier("entity_id"); err != nil {
		return h, err
	} else if !ok {
		return h, fail(event.ReasonMissingField, "meta.entity_id", "required")
	}
	if h.changedBy, _, err = meta.identifier("user_id"); err != nil {
		return h, err
	}
	if h.data, h.hasData, err = root.object("data"); err != nil {
		return h, err
	}
	if h.previous, _, err = root.object("previous"); err != nil {
		return h, err
	}
	if h.action != actionDelete {
		if !h.hasData {
			return h, fail(event.ReasonMissingField, "data", "required for action %q", h.action)
		}
		// data.id, when sent, must name the same entity as meta.entity_id.
		if id, ok, err := h.data.integer("id"); err != nil {
			return h, err
		} else if ok && id != h.entityID {
			return h, fail(event.ReasonInvalidValue, "data.id", "%s does not match meta.entity_id %s", id, quote(h.entityID))
		}
	}
	h.time, err = eventTime(meta, h.data)
	return h, err
}

// eventTime is meta.timestamp, the moment of the change in Pipedrive; data.update_time when meta.timestamp is
// absent.
func eventTime(meta, data object) (time.Time, error) {
	field := "meta.timestamp"
	s, ok, err := meta.string("timestamp")
	if err != nil {
		return time.Time{}, err
	}
	if !ok {
		field = "data.update_time"
		if s, ok, err = data.string("update_time"); err != nil {
			return time.Time{}, err
		}
		if !ok {
			return time.Time{}, fail(event.ReasonMissingField, "meta.timestamp", "required (no data.update_time either)")
		}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil && field == "data.update_time" {
		// Older Pipedrive payloads write update_time as "2006-01-02 15:04:05", in UTC.
		t, err = time.Parse(time.DateTime, s)
	}
	if err != nil {
		return time.Time{}, fail(event.ReasonInvalidTime, field, "not an RFC 3339 timestamp: %s", quote(s))
	}
	t = t.UTC()
	if t.Before(minTime) || t.After(maxTime) {
		return time.Time{}, fail(event.ReasonInvalidTime, field, "%s is outside 1970-01-01 to 2106-02-07", quote(s))
	}
	return t, nil
}

// ev builds one event; its id is meta.id plus the event type, since one webhook emits at most one event per type.
func (h header) ev(typ string, data event.Data) event.Event {
	return event.Event{Source: h.source, ID: h.id + ":" + typ, Type: typ, Time: h.time, Data: data}
}

// dealFields are the deal fields of data that leadthrough reads.
type dealFields struct {
	owner, stage, title, currency, status string
	value                                 *float64
}

func parseDeal(o object) (dealFields, error) {
	var f dealFields
	var err error
	if f.owner, _, err = o.integer("owner_id"); err != nil {
		return f, err
	}
	if f.stage, _, err = o.integer("stage_id"); err != nil {
		return f, err
	}
	if f.title, _, err = o.string("title"); err != nil {
		return f, err
	}
	if f.currency, _, err = o.string("currency"); err != nil {
		return f, err
	}
	if f.value, err = o.amount("value"); err != nil {
		return f, err
	}
	var ok bool
	if f.status, ok, err = o.string("status"); err != nil {
		return f, err
	} else if ok && !knownStatus(f.status) {
		return f, fail(event.ReasonInvalidValue, o.path+"status", "must be open, won, lost or deleted, got %s", quote(f.status))
	}
	return f, nil
}

func knownStatus(s string) bool {
	return s == statusOpen || s == statusWon || s == statusLost || s == statusDeleted
}

func (h header) deal() ([]event.Event, error) {
	if h.action == actionDelete {
		return []event.Event{h.ev(event.DealDeleted, event.Data{DealID: h.entityID})}, nil
	}
	cur, err := parseDeal(h.data)
	if err != nil {
		return nil, err
	}
	if h.action == actionCreate {
		if cur.owner == "" {
			return nil, fail(event.ReasonMissingField, "data.owner_id", "required: a deal is created with an owner")
		}
		evs := []event.Event{h.ev(event.DealCreated, event.Data{DealID: h.entityID, OwnerID: cur.owner,
			Name: cur.title, Amount: cur.value, Currency: cur.currency, Stage: cur.stage})}
		return append(evs, h.statusEvents(cur, "")...), nil
	}

	// A change: previous names exactly the fields that changed, with their old values.
	prev := h.previous
	var evs []event.Event
	if prev.has("owner_id") {
		old, _, err := prev.integer("owner_id")
		if err != nil {
			return nil, err
		}
		if cur.owner == "" {
			return nil, fail(event.ReasonMissingField, "data.owner_id", "required when previous.owner_id is sent")
		}
		if old != cur.owner {
			// previous_owner_id is informational: indicators take the previous owner from the deal's history.
			evs = append(evs, h.ev(event.DealOwnerChanged, event.Data{DealID: h.entityID, OwnerID: cur.owner,
				PreviousOwnerID: old, ChangedBy: h.changedBy}))
		}
	}
	if prev.has("stage_id") {
		old, _, err := prev.integer("stage_id")
		if err != nil {
			return nil, err
		}
		if cur.stage == "" {
			return nil, fail(event.ReasonMissingField, "data.stage_id", "required when previous.stage_id is sent")
		}
		if old != cur.stage {
			evs = append(evs, h.ev(event.DealStageChanged, event.Data{DealID: h.entityID, Stage: cur.stage,
				PreviousStage: old}))
		}
	}
	if prev.has("value") || prev.has("currency") {
		if cur.value == nil {
			return nil, fail(event.ReasonMissingField, "data.value", "required when previous.value or previous.currency is sent")
		}
		evs = append(evs, h.ev(event.DealAmountChanged, event.Data{DealID: h.entityID, Amount: cur.value,
			Currency: cur.currency}))
	}
	if prev.has("status") {
		old, _, err := prev.string("status")
		if err != nil {
			return nil, err
		}
		if cur.status == "" {
			return nil, fail(event.ReasonMissingField, "data.status", "required when previous.status is sent")
		}
		if old != cur.status {
			evs = append(evs, h.statusEvents(cur, old)...)
		}
	}
	return evs, nil
}

// statusEvents maps a deal's status (after a creation, or a status change from old) to close, reopen and delete
// events. Reopening needs a closed old status: open after nothing or after open is no event.
func (h header) statusEvents(cur dealFields, old string) []event.Event {
	switch cur.status {
	case statusWon, statusLost:
		return []event.Event{h.ev(event.DealClosed, event.Data{DealID: h.entityID, Outcome: cur.status,
			Amount: cur.value, Currency: cur.currency})}
	case statusOpen:
		if old == statusWon || old == statusLost {
			return []event.Event{h.ev(event.DealReopened, event.Data{DealID: h.entityID})}
		}
	case statusDeleted:
		return []event.Event{h.ev(event.DealDeleted, event.Data{DealID: h.entityID})}
	}
	return nil
}

func (h header) user() ([]event.Event, error) {
	if h.action == actionDelete {
		return []event.Event{h.ev(event.UserDeactivated, event.Data{UserID: h.entityID})}, nil
	}
	name, _, err := h.data.string("name")
	if err != nil {
		return nil, err
	}
	email, _, err := h.data.string("email")
	if err != nil {
		return nil, err
	}
	active, hasActive, err := h.data.boolean("active_flag")
	if err != nil {
		return nil, err
	}
	evs := []event.Event{h.ev(event.UserUpserted, event.Data{UserID: h.entityID, Name: name, Email: email})}
	// Deactivation is emitted when it happens (a creation as inactive, or a change of active_flag), not on every
	// later edit of an inactive user: a repeated user.deactivated would end a reporting line set after it.
	if hasActive && !active && (h.action == actionCreate || h.previous.has("active_flag")) {
		evs = append(evs, h.ev(event.UserDeactivated, event.Data{UserID: h.entityID}))
	}
	return evs, nil
}

// object is a JSON object at a path ("" for the root, "meta." for meta, …). Its accessors treat null as absent
// and return *event.Error naming the field.
type object struct {
	path string
	m    map[string]any
}

// parse decodes the body as one JSON object, keeping numbers as written (json.Number) so ids stay exact.
func parse(value []byte) (object, error) {
	dec := json.NewDecoder(bytes.NewReader(value))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return object{}, fail(event.ReasonMalformedJSON, "", "malformed JSON: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return object{}, fail(event.ReasonMalformedJSON, "", "malformed JSON: trailing data after the object")
	}
	m, ok := v.(map[string]any)
	if !ok {
		return object{}, fail(event.ReasonMalformedJSON, "", "malformed JSON: not an object")
	}
	return object{m: m}, nil
}

func (o object) has(key string) bool {
	_, ok := o.m[key]
	return ok
}

// get returns the value of key; ok is false when it is absent or null.
func (o object) get(key string) (v any, ok bool) {
	v = o.m[key]
	return v, v != nil
}

func (o object) object(key string) (object, bool, error) {
	v, ok := o.get(key)
	if !ok {
		return object{path: o.path + key + "."}, false, nil
	}
	m, isObj := v.(map[string]any)
	if !isObj {
		return object{}, false, fail(event.ReasonWrongType, o.path+key, "must be an object")
	}
	return object{path: o.path + key + ".", m: m}, true, nil
}

func (o object) string(key string) (string, bool, error) {
	v, ok := o.get(key)
	if !ok {
		return "", false, nil
	}
	s, isStr := v.(string)
	if !isStr {
		return "", false, fail(event.ReasonWrongType, o.path+key, "must be a string")
	}
	return s, true, nil
}

func (o object) requiredString(key string) (string, error) {
	s, ok, err := o.string(key)
	if err != nil {
		return "", err
	}
	if !ok || s == "" {
		return "", fail(event.ReasonMissingField, o.path+key, "required")
	}
	return s, nil
}

func (o object) boolean(key string) (bool, bool, error) {
	v, ok := o.get(key)
	if !ok {
		return false, false, nil
	}
	b, isBool := v.(bool)
	if !isBool {
		return false, false, fail(event.ReasonWrongType, o.path+key, "must be true or false")
	}
	return b, true, nil
}

// integer reads a positive integer id (owner_id, stage_id, id) as its decimal string.
func (o object) integer(key string) (string, bool, error) {
	v, ok := o.get(key)
	if !ok {
		return "", false, nil
	}
	n, isNum := v.(json.Number)
	if !isNum {
		return "", false, fail(event.ReasonWrongType, o.path+key, "must be an integer")
	}
	i, err := strconv.ParseInt(n.String(), 10, 64)
	if err != nil {
		return "", false, fail(event.ReasonWrongType, o.path+key, "must be an integer, got %s", quote(n.String()))
	}
	if i <= 0 {
		return "", false, fail(event.ReasonInvalidValue, o.path+key, "must be positive, got %d", i)
	}
	return strconv.FormatInt(i, 10), true, nil
}

// identifier reads a meta id, which webhooks v2 sends as a string ("8087566") and older producers as a number.
func (o object) identifier(key string) (string, bool, error) {
	v, ok := o.get(key)
	if !ok {
		return "", false, nil
	}
	switch v := v.(type) {
	case string:
		if v == "" {
			return "", false, nil
		}
		return v, true, nil
	case json.Number:
		return o.integer(key)
	}
	return "", false, fail(event.ReasonWrongType, o.path+key, "must be a string or an integer")
}

// amount reads a deal value: a finite number >= 0.
func (o object) amount(key string) (*float64, error) {
	v, ok := o.get(key)
	if !ok {
		return nil, nil
	}
	n, isNum := v.(json.Number)
	if !isNum {
		return nil, fail(event.ReasonWrongType, o.path+key, "must be a number")
	}
	f, err := strconv.ParseFloat(n.String(), 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return nil, fail(event.ReasonInvalidValue, o.path+key, "%s is not a finite number", quote(n.String()))
	}
	if f < 0 {
		return nil, fail(event.ReasonNegativeAmount, o.path+key, "must be >= 0, got %s", quote(n.String()))
	}
	return &f, nil
}

func fail(r event.Reason, field, format string, args ...any) *event.Error {
	return &event.Error{Reason: r, Field: field, Detail: fmt.Sprintf(format, args...)}
}

// quote renders input for an error message, shortened so a dead-letter header stays small.
func quote(s string) string {
	const maxLen = 64
	if len(s) > maxLen {
		cut := maxLen
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return strconv.Quote(s)
}
