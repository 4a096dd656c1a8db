// Package salesforce decodes Salesforce Change Data Capture (CDC) events into leadthrough's canonical events, as an
// ingest.Decoder for a Kafka topic that carries them.
//
// # Feeding Kafka
//
// Salesforce does not write to Kafka itself. A subscriber does: a Pub/Sub API client (gRPC; the Avro payload decoded
// to plain JSON, as in the Pub/Sub API examples) or a CometD/Streaming API client (such as an EMP connector), or a
// Kafka Connect source, subscribed to /data/OpportunityChangeEvent and /data/UserChangeEvent (or /data/ChangeEvents)
// and writing each change event as one message value. Both shapes are accepted:
//
//   - bare (Pub/Sub API): {"ChangeEventHeader": {...}, "OwnerId": "005…", …}; unchanged fields of an UPDATE are null
//     and changedFields/nulledFields are bitmaps of hex strings (or field names, if the client expanded them);
//   - CometD envelope: {"data": {"schema": …, "payload": {"ChangeEventHeader": {...}, …}, "event": {"replayId": …}},
//     "channel": "/data/…"}; an UPDATE carries only the changed fields and changedFields lists their names.
//
// Field values must be plain JSON (strings, numbers, booleans, null), not Avro's {"string": …} union wrapping.
//
// # Mapping
//
// The header gives every event its time (commitTimestamp, ms since the epoch) and changed_by (commitUser). A change
// whose recordIds name several records (one transaction applying the same values to all of them) fans out: the
// same set of events for each record, in recordIds order. A field counts as changed when it is present with a non-null
// value, so the decoder never reads the changedFields bitmap; only a change to null needs the field's name in
// nulledFields or changedFields (see ManagerId below).
//
//	Opportunity CREATE      deal.created (OwnerId, Name, Amount, StageName, CurrencyIsoCode),
//	                        then deal.closed if IsClosed (outcome won iff IsWon, amount = Amount)
//	Opportunity UPDATE      OwnerId → deal.owner_changed (changed_by = commitUser; no previous_owner_id, CDC does not
//	                        carry old values and indicators take the previous owner from the deal's history)
//	                        StageName → deal.stage_changed; Amount → deal.amount_changed (currency = CurrencyIsoCode)
//	                        IsClosed true → deal.closed (won iff IsWon; amount = Amount if present)
//	                        IsWon without IsClosed → deal.closed (a closed deal whose outcome flipped)
//	                        IsClosed false → deal.reopened
//	Opportunity DELETE      deal.deleted
//	User CREATE, UNDELETE   user.upserted (Name, or Name.FirstName/LastName, or FirstName/LastName; Email; Title),
//	                        user.manager_changed (ManagerId; absent or null = no manager), user.deactivated if
//	                        IsActive is false
//	User UPDATE             user.upserted if Name, Email or Title changed; user.manager_changed if ManagerId changed
//	                        (to null when nulledFields or changedFields names ManagerId); user.deactivated if IsActive
//	                        became false
//	User DELETE             user.deactivated (Salesforce does not delete users; should it happen, the user is gone)
//
// Per record the events always come in this order: deal.created, deal.owner_changed, deal.stage_changed,
// deal.amount_changed, deal.closed or deal.reopened, deal.deleted; user.upserted, user.manager_changed,
// user.deactivated.
//
// All events of one change share its commitTimestamp, and docs/indicators.md decides what that means: an owner
// change in the UPDATE that also closes the deal makes the new owner the closer but is not a takeover "before the
// close" (rule 23), and an owner change in the UPDATE that reopens a closed deal is not a takeover either, since the
// deal was still closed at that millisecond (rule 20).
//
// # Ignored and rejected
//
// Ignored without an error (no events): change events of other entities (Account, Contact, …; their header is not
// checked beyond entityName); every other field
// (Probability, CloseDate, …); a change to null of Amount, StageName, Name, Email or Title, which the contract cannot
// express (the store keeps the latest known value); a partial name change (only FirstName or only LastName of an
// UPDATE), which would otherwise store half a name; IsActive becoming true (a reactivated user gets a reporting line
// again with their next ManagerId change or a canonical user.manager_changed).
//
// Rejected as *event.Error (the ingest worker dead-letters the message with its Reason): invalid UTF-8, malformed
// JSON, a missing or mistyped header (ChangeEventHeader, entityName, changeType, recordIds, commitTimestamp,
// transactionKey, sequenceNumber), a mistyped field, an out-of-range commitTimestamp, a negative amount, an unknown
// changeType, and two kinds of change the contract cannot represent:
//
//   - gap events (GAP_CREATE, GAP_UPDATE, GAP_DELETE, GAP_UNDELETE, GAP_OVERFLOW), reason invalid_value: Salesforce
//     tells us records changed but sends no field values. Emitting nothing would lose an owner change or a close
//     silently; a dead letter is counted, alertable and keeps the record ids, so an operator can resync those records
//     (for example by re-publishing their current state as canonical events).
//   - Opportunity UNDELETE, reason invalid_value: the contract has no undelete and a deleted deal stays excluded from
//     the indicators whatever follows (docs/indicators.md, rule 12), so re-emitting deal.created would store an event
//     that changes nothing while pretending the deal is back.
//
// # Event ids
//
// An event's id is "<transactionKey>/<sequenceNumber as 10 digits>/<recordId>/<rank>-<type>", e.g.
// "00000466-3d4f-bbe3-9c2b-5ab0fb45cc02/0000000001/006SM0000001Tb3YAE/1-deal.created". It depends only on the change
// event, so a redelivered or replayed change event yields the same ids and is stored once (the replayId is not used:
// it differs between channels carrying the same change). All changes of a transaction share its commitTimestamp, and
// the store orders events of the same millisecond by (source, id): the zero-padded sequenceNumber and the fixed rank
// per type make that order the order of the changes in the transaction and of the table above, so for instance a
// user deactivated in the change that also set their manager ends up without a reporting line.
//
// The package must never panic on any input, never return an event that fails event.Validate, and never know about
// Kafka or ClickHouse.
package salesforce

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/leadthrough/leadthrough/event"
)

// DefaultSource is the CloudEvents source of decoded events when Config.Source is empty.
const DefaultSource = "salesforce"

// Config configures a Decoder.
type Config struct {
	// Source is the CloudEvents source of every decoded event. (source, id) identifies an event, so give each
	// Salesforce org its own source (e.g. "salesforce/acme-prod") when several orgs feed one installation.
	//
	// Default: "salesforce" (DefaultSource).
	Source string
}

// Decoder decodes Salesforce CDC change events. It is stateless and safe for concurrent use.
type Decoder struct{ source string }

// New returns a Decoder for cfg.
func New(cfg Config) *Decoder {
	if cfg.Source == "" {
		cfg.Source = DefaultSource
	}
	return &Decoder{source: cfg.Source}
}

// Name is the decoder's name in dead-letter headers.
func (*Decoder) Name() string { return "salesforce-cdc" }

// Entity names of the change events that are mapped.
const (
	entityOpportunity = "Opportunity"
	entityUser        = "User"
)

// Change types of ChangeEventHeader.changeType.
const (
	changeCreate   = "CREATE"
	changeUpdate   = "UPDATE"
	changeDelete   = "DELETE"
	changeUndelete = "UNDELETE"
)

// Decode turns one change event into canonical events (see the package doc). Every error is an *event.Error.
func (d *Decoder) Decode(value []byte) ([]event.Event, error) {
	source := DefaultSource
	if d != nil && d.source != "" {
		source = d.source
	}
	if !utf8.Valid(value) {
		return nil, &event.Error{Reason: event.ReasonInvalidUTF8, Detail: "message is not valid UTF-8"}
	}
	var top object
	if err := json.Unmarshal(value, &top); err != nil || top == nil {
		if err == nil {
			err = errors.New("not a JSON object")
		}
		return nil, &event.Error{Reason: event.ReasonMalformedJSON, Detail: "malformed JSON: " + err.Error()}
	}
	payload, err := unwrap(top)
	if err != nil {
		return nil, err
	}
	h, err := parseHeader(payload)
	if err != nil || h == nil {
		return nil, err
	}
	var changes []change
	switch h.entity {
	case entityOpportunity:
		changes, err = opportunityChanges(h, payload)
	case entityUser:
		changes, err = userChanges(h, payload)
	}
	if err != nil {
		return nil, err
	}
	return fanOut(source, h, changes)
}

// object is a JSON object with its values still raw.
type object map[string]json.RawMessage

// pathObject is a JSON object of the message (the payload, its header, a compound field) with the JSON path prefix
// of its members, so that errors name the field as it appears in the message.
type pathObject struct {
	fields object
	prefix string // e.g. "" for the bare payload, "data.payload." inside a CometD envelope
}

func (p pathObject) path(name string) string { return p.prefix + name }

// unwrap finds the payload in either accepted shape.
func unwrap(top object) (pathObject, error) {
	if _, ok := top["ChangeEventHeader"]; ok {
		return pathObject{fields: top}, nil
	}
	rawData, ok := top["data"]
	if !ok {
		return pathObject{}, missing("ChangeEventHeader")
	}
	var data object
	if err := decodeObject(rawData, &data); err != nil {
		return pathObject{}, wrongType("data", "must be an object (the CometD envelope)")
	}
	rawPayload, ok := data["payload"]
	if !ok || isNull(rawPayload) {
		return pathObject{}, missing("data.payload")
	}
	var payload object
	if err := decodeObject(rawPayload, &payload); err != nil {
		return pathObject{}, wrongType("data.payload", "must be an object")
	}
	return pathObject{fields: payload, prefix: "data.payload."}, nil
}

// header is the part of ChangeEventHeader the mapping needs.
type header struct {
	entity     string
	changeType string
	recordIDs  []string
	time       time.Time
	commitUser string
	txKey      string
	seq        int64
	prefix     string // path prefix of the payload's fields, for error messages
	// named holds the field names listed in changedFields and nulledFields. Over the Pub/Sub API both are bitmaps
	// ("0x…" strings) unless the client expanded them, which never match a field name; nothing depends on them
	// except telling "changed to null" from "unchanged" for a null value.
	named map[string]bool
}

// parseHeader reads ChangeEventHeader. It returns a nil header and no error for an entity that is not mapped.
func parseHeader(p pathObject) (*header, error) {
	const hp = "ChangeEventHeader"
	raw, ok := p.fields[hp]
	if !ok || isNull(raw) {
		return nil, missing(p.path(hp))
	}
	var hdr object
	if err := decodeObject(raw, &hdr); err != nil {
		return nil, wrongType(p.path(hp), "must be an object")
	}
	hq := pathObject{fields: hdr, prefix: p.prefix + hp + "."}
	h := &header{prefix: p.prefix}
	var err error
	if h.entity, err = requiredString(hq, "entityName"); err != nil {
		return nil, err
	}
	if h.entity != entityOpportunity && h.entity != entityUser {
		return nil, nil // not ours: Account, Contact, custom objects, …
	}
	if h.changeType, err = requiredString(hq, "changeType"); err != nil {
		return nil, err
	}
	switch ct := h.changeType; {
	case strings.HasPrefix(ct, "GAP_"):
		return nil, &event.Error{Reason: event.ReasonInvalidValue, Field: hq.path("changeType"),
			Detail: fmt.Sprintf("gap event %s: Salesforce sent no field values, resync the %s records in recordIds", ct, h.entity)}
	case ct != changeCreate && ct != changeUpdate && ct != changeDelete && ct != changeUndelete:
		return nil, invalid(hq.path("changeType"), "unknown change type %q", ct)
	}
	if h.recordIDs, err = recordIDs(hq); err != nil {
		return nil, err
	}
	if h.time, err = commitTime(hq); err != nil {
		return nil, err
	}
	if h.txKey, err = requiredString(hq, "transactionKey"); err != nil {
		return nil, err
	}
	if h.seq, err = sequenceNumber(hq); err != nil {
		return nil, err
	}
	if h.commitUser, _, err = optionalString(hq, "commitUser"); err != nil {
		return nil, err
	}
	h.named = map[string]bool{}
	for _, list := range []string{"changedFields", "nulledFields"} {
		names, err := stringList(hq, list)
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			h.named[n] = true
		}
	}
	return h, nil
}

// recordIDs reads the non-empty recordIds, without repeats (a repeated id would only repeat the same events).
func recordIDs(hq pathObject) ([]string, error) {
	if raw, ok := hq.fields["recordIds"]; !ok || isNull(raw) {
		return nil, missing(hq.path("recordIds"))
	}
	ids, err := stringList(hq, "recordIds")
	if err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, &event.Error{Reason: event.ReasonMissingField, Field: hq.path("recordIds"), Detail: "must name at least one record"}
	}
	var out []string
	for i, id := range ids {
		if id == "" {
			return nil, &event.Error{Reason: event.ReasonMissingField, Field: fmt.Sprintf("%s[%d]", hq.path("recordIds"), i),
				Detail: "must not be empty"}
		}
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out, nil
}

// maxMillis is 9999-12-31T23:59:59.999Z, the last instant an RFC 3339 time can name.
const maxMillis = 253402300799999

// commitTime reads commitTimestamp, milliseconds since the Unix epoch.
func commitTime(hq pathObject) (time.Time, error) {
	const name = "commitTimestamp"
	raw, ok := hq.fields[name]
	if !ok || isNull(raw) {
		return time.Time{}, missing(hq.path(name))
	}
	n, err := integer(raw)
	if err != nil {
		if errors.Is(err, errNotWhole) {
			return time.Time{}, &event.Error{Reason: event.ReasonInvalidTime, Field: hq.path(name),
				Detail: "must be a whole number of milliseconds since 1970-01-01T00:00:00Z"}
		}
		return time.Time{}, wrongType(hq.path(name), "must be a number (milliseconds since the epoch)")
	}
	if n <= 0 || n > maxMillis {
		return time.Time{}, &event.Error{Reason: event.ReasonInvalidTime, Field: hq.path(name),
			Detail: fmt.Sprintf("%d ms since the epoch is out of range", n)}
	}
	return time.UnixMilli(n).UTC(), nil
}

func sequenceNumber(hq pathObject) (int64, error) {
	const name = "sequenceNumber"
	raw, ok := hq.fields[name]
	if !ok || isNull(raw) {
		return 0, missing(hq.path(name))
	}
	n, err := integer(raw)
	if err != nil {
		if errors.Is(err, errNotWhole) {
			return 0, invalid(hq.path(name), "must be a whole number")
		}
		return 0, wrongType(hq.path(name), "must be a number")
	}
	if n < 0 {
		return 0, invalid(hq.path(name), "must be >= 0, got %d", n)
	}
	return n, nil
}

// change is one event to emit for every record, before it gets its entity id and event id.
type change struct {
	rank int // order within a record; part of the id so that ties in the store sort the same way
	typ  string
	data event.Data
}

// Ranks of the event types within one record's changes.
var ranks = map[string]int{
	event.DealCreated: 1, event.DealOwnerChanged: 2, event.DealStageChanged: 3, event.DealAmountChanged: 4,
	event.DealClosed: 5, event.DealReopened: 5, event.DealDeleted: 6,
	event.UserUpserted: 1, event.UserManagerChanged: 2, event.UserDeactivated: 3,
}

func newChange(typ string, data event.Data) change {
	return change{rank: ranks[typ], typ: typ, data: data}
}

// fanOut emits the changes for every record of h, each with its entity id and deterministic event id, and checks
// each against the contract.
func fanOut(source string, h *header, changes []change) ([]event.Event, error) {
	if len(changes) == 0 {
		return nil, nil
	}
	evs := make([]event.Event, 0, len(h.recordIDs)*len(changes))
	for _, rid := range h.recordIDs {
		for _, c := range changes {
			d := c.data
			// Each event gets its own copies of the optional values: nothing is shared between events.
			if d.Amount != nil {
				d.Amount = event.Ptr(*d.Amount)
			}
			if d.ManagerID != nil {
				d.ManagerID = event.Ptr(*d.ManagerID)
			}
			if strings.HasPrefix(c.typ, "user.") {
				d.UserID = rid
			} else {
				d.DealID = rid
			}
			if c.typ == event.UserManagerChanged && d.ManagerID != nil && *d.ManagerID == rid {
				return nil, invalid(h.prefix+"ManagerId", "user %s cannot be their own manager", rid)
			}
			ev := event.Event{
				Source: source,
				ID:     fmt.Sprintf("%s/%010d/%s/%d-%s", h.txKey, h.seq, rid, c.rank, c.typ),
				Type:   c.typ,
				Time:   h.time,
				Data:   d,
			}
			if err := event.Validate(ev); err != nil {
				return nil, err
			}
			evs = append(evs, ev)
		}
	}
	return evs, nil
}

// --- JSON helpers: every failure is an *event.Error naming the field's path. ---

func missing(path string) *event.Error {
	return &event.Error{Reason: event.ReasonMissingField, Field: path, Detail: "required"}
}

func wrongType(path, detail string) *event.Error {
	return &event.Error{Reason: event.ReasonWrongType, Field: path, Detail: detail}
}

func invalid(path, format string, args ...any) *event.Error {
	return &event.Error{Reason: event.ReasonInvalidValue, Field: path, Detail: fmt.Sprintf(format, args...)}
}

func isNull(raw json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("null")) }

// decodeObject decodes a JSON object; null or any other JSON value is an error.
func decodeObject(raw json.RawMessage, dst *object) error {
	if err := json.Unmarshal(raw, dst); err != nil {
		return err
	}
	if *dst == nil {
		return errors.New("null")
	}
	return nil
}

// Failures of integer.
var (
	errNotNumber = errors.New("not a JSON number")
	errNotWhole  = errors.New("not a whole number in int64 range")
)

// integer decodes a JSON number that is a whole number (1652977933000, also written 1.652977933e12). A number in a
// string ("1652977933000") is not a number.
func integer(raw json.RawMessage) (int64, error) {
	var num json.Number
	if t := bytes.TrimSpace(raw); len(t) == 0 || t[0] == '"' || json.Unmarshal(t, &num) != nil {
		return 0, errNotNumber
	}
	if n, err := strconv.ParseInt(num.String(), 10, 64); err == nil {
		return n, nil
	}
	f, err := strconv.ParseFloat(num.String(), 64)
	if err != nil || f != math.Trunc(f) || f < math.MinInt64 || f >= math.MaxInt64 {
		return 0, errNotWhole
	}
	return int64(f), nil
}

// optionalString reads a string field; absent or null is ("", false, nil).
func optionalString(p pathObject, name string) (string, bool, error) {
	raw, ok := p.fields[name]
	if !ok || isNull(raw) {
		return "", false, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false, wrongType(p.path(name), "must be a string")
	}
	return s, true, nil
}

// requiredString reads a string field that must be present and not empty.
func requiredString(p pathObject, name string) (string, error) {
	s, ok, err := optionalString(p, name)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", missing(p.path(name))
	}
	if s == "" {
		return "", &event.Error{Reason: event.ReasonMissingField, Field: p.path(name), Detail: "must not be empty"}
	}
	return s, nil
}

// optionalBool reads a boolean field; absent or null is (false, false, nil).
func optionalBool(p pathObject, name string) (value, present bool, err error) {
	raw, ok := p.fields[name]
	if !ok || isNull(raw) {
		return false, false, nil
	}
	if err := json.Unmarshal(raw, &value); err != nil {
		return false, false, wrongType(p.path(name), "must be a boolean")
	}
	return value, true, nil
}

// optionalAmount reads a currency field; absent or null is nil. Negative amounts break the contract.
func optionalAmount(p pathObject, name string) (*float64, error) {
	raw, ok := p.fields[name]
	if !ok || isNull(raw) {
		return nil, nil
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, wrongType(p.path(name), "must be a number")
	}
	if f < 0 {
		return nil, &event.Error{Reason: event.ReasonNegativeAmount, Field: p.path(name), Detail: "must be >= 0"}
	}
	return &f, nil
}

// stringList reads an optional array of strings; absent or null is empty.
func stringList(p pathObject, name string) ([]string, error) {
	raw, ok := p.fields[name]
	if !ok || isNull(raw) {
		return nil, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, wrongType(p.path(name), "must be an array of strings")
	}
	return list, nil
}
