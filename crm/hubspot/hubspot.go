package hubspot

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/leadthrough/leadthrough/event"
)

// Defaults of Config.
const (
	DefaultSource    = "hubspot"
	DefaultWonStage  = "closedwon"
	DefaultLostStage = "closedlost"
)

// Config configures a Decoder. The zero Config is valid and suits a portal that uses HubSpot's default pipeline.
type Config struct {
	// Source prefixes the CloudEvents source of every event: Source + "/" + portalId. Change it only to keep two
	// installs apart; changing it later makes already stored events count again under the new source.
	//
	// Default: "hubspot" (DefaultSource).
	Source string

	// WonStages are the dealstage ids that close a deal as won. Stage ids are portal-specific: the default pipeline
	// uses "closedwon", custom pipelines use numeric ids; list the won stage of every pipeline. Setting it replaces
	// the default, so include "closedwon" if the default pipeline is in use too.
	//
	// Default: ["closedwon"] (DefaultWonStage).
	WonStages []string

	// LostStages are the dealstage ids that close a deal as lost. See WonStages.
	//
	// Default: ["closedlost"] (DefaultLostStage).
	LostStages []string
}

func (c Config) withDefaults() Config {
	if c.Source == "" {
		c.Source = DefaultSource
	}
	if len(c.WonStages) == 0 {
		c.WonStages = []string{DefaultWonStage}
	}
	if len(c.LostStages) == 0 {
		c.LostStages = []string{DefaultLostStage}
	}
	return c
}

// Validate reports a Config that would misclassify deals: an empty stage id, or a stage listed as both won and
// lost. New accepts any Config (it must not fail where a decoder is wired); call Validate where flags are parsed.
func (c Config) Validate() error {
	c = c.withDefaults()
	won := map[string]bool{}
	for _, s := range c.WonStages {
		if s == "" {
			return fmt.Errorf("hubspot: empty won stage id")
		}
		won[s] = true
	}
	for _, s := range c.LostStages {
		if s == "" {
			return fmt.Errorf("hubspot: empty lost stage id")
		}
		if won[s] {
			return fmt.Errorf("hubspot: stage %q is listed as both won and lost", s)
		}
	}
	return nil
}

// Decoder decodes HubSpot webhook batches. It is safe for concurrent use.
type Decoder struct {
	source string
	won    map[string]bool
	lost   map[string]bool
}

// New returns a Decoder for cfg. A stage listed as both won and lost counts as won (Config.Validate reports it).
func New(cfg Config) *Decoder {
	cfg = cfg.withDefaults()
	d := &Decoder{source: cfg.Source, won: map[string]bool{}, lost: map[string]bool{}}
	for _, s := range cfg.WonStages {
		d.won[s] = true
	}
	for _, s := range cfg.LostStages {
		d.lost[s] = true
	}
	return d
}

// Name is the decoder's name in dead-letter headers and the CLI's --topic NAME=FORMAT.
func (*Decoder) Name() string { return "hubspot" }

// Subscription types and deal properties that produce events.
const (
	subCreation       = "deal.creation"
	subDeletion       = "deal.deletion"
	subPropertyChange = "deal.propertyChange"

	propStage  = "dealstage"
	propOwner  = "hubspot_owner_id"
	propAmount = "amount"
)

// maxOccurredAt is the last millisecond ClickHouse's DateTime (UInt32 seconds) can hold, 2106-02-07T06:28:15.999Z:
// a later time could not be stored and would block the partition instead of being dead-lettered.
const maxOccurredAt = math.MaxUint32*1000 + 999

// element is one validated subscription event of a batch that produces canonical events.
type element struct {
	subscription string
	portalID     int64
	objectID     int64
	eventID      int64
	occurredAt   int64
	property     string  // deal.propertyChange only
	value        string  // deal.propertyChange only; "" when cleared
	amount       float64 // value parsed, for a non-empty amount
	changedBy    string  // from sourceId "userId:NNN"
}

// Decode turns one webhook POST body (a JSON array of subscription events) into canonical events, in the order of
// the array. Any invalid element rejects the whole body with an *event.Error; see the package documentation.
func (d *Decoder) Decode(value []byte) ([]event.Event, error) {
	if !utf8.Valid(value) {
		return nil, &event.Error{Reason: event.ReasonInvalidUTF8, Detail: "message is not valid UTF-8"}
	}
	var raws []json.RawMessage
	err := json.Unmarshal(value, &raws) // checks the syntax of the whole value before its shape
	var notArray *json.UnmarshalTypeError
	switch {
	case errors.As(err, &notArray) || err == nil && raws == nil: // raws == nil: the value is null
		return nil, &event.Error{Reason: event.ReasonMalformedJSON, Detail: "not a JSON array of HubSpot webhook events"}
	case err != nil:
		return nil, &event.Error{Reason: event.ReasonMalformedJSON, Detail: fmt.Sprintf("malformed JSON: %v", err)}
	}

	elems := make([]element, 0, len(raws))
	for i, raw := range raws {
		el, mapped, err := parseElement(raw, fmt.Sprintf("[%d]", i))
		if err != nil {
			return nil, err
		}
		if mapped {
			elems = append(elems, el)
		}
	}

	// The owner a deal was created with arrives as a hubspot_owner_id change stamped with the creation's time.
	type creationKey struct{ portal, object, at int64 }
	createdWith := map[creationKey]string{}
	for _, el := range elems {
		k := creationKey{el.portalID, el.objectID, el.occurredAt}
		if el.property == propOwner && el.value != "" && createdWith[k] == "" {
			createdWith[k] = el.value
		}
	}

	var out []event.Event
	for _, el := range elems {
		emit := func(typ string, data event.Data) {
			data.DealID = strconv.FormatInt(el.objectID, 10)
			out = append(out, event.Event{
				Source: d.source + "/" + strconv.FormatInt(el.portalID, 10),
				ID:     el.id(typ),
				Type:   typ,
				Time:   time.UnixMilli(el.occurredAt).UTC(),
				Data:   data,
			})
		}
		switch el.subscription {
		case subCreation:
			if owner := createdWith[creationKey{el.portalID, el.objectID, el.occurredAt}]; owner != "" {
				emit(event.DealCreated, event.Data{OwnerID: owner})
			}
		case subDeletion:
			emit(event.DealDeleted, event.Data{})
		case subPropertyChange:
			if el.value == "" {
				continue // owner removed, amount or stage cleared: nothing the contract can say
			}
			switch el.property {
			case propStage:
				emit(event.DealStageChanged, event.Data{Stage: el.value})
				switch {
				case d.won[el.value]:
					emit(event.DealClosed, event.Data{Outcome: event.OutcomeWon})
				case d.lost[el.value]:
					emit(event.DealClosed, event.Data{Outcome: event.OutcomeLost})
				default:
					emit(event.DealReopened, event.Data{})
				}
			case propOwner:
				emit(event.DealOwnerChanged, event.Data{OwnerID: el.value, ChangedBy: el.changedBy})
			case propAmount:
				emit(event.DealAmountChanged, event.Data{Amount: event.Ptr(el.amount)})
			}
		}
	}
	return out, nil
}

// id is the deterministic event id of the canonical event typ derived from el; see "Event ids" in the package doc.
func (el element) id(typ string) string {
	what := el.property
	switch el.subscription {
	case subCreation:
		what = "creation"
	case subDeletion:
		what = "deletion"
	}
	return fmt.Sprintf("%d:%d:%d:%d:%s:%s", el.portalID, el.eventID, el.occurredAt, el.objectID, what, typ)
}

// parseElement validates one array element. mapped is false for an element that produces no event whatever its
// other fields hold (another subscription type or property); such an element is not examined further.
func parseElement(raw json.RawMessage, path string) (el element, mapped bool, err error) {
	var fields map[string]json.RawMessage
	if isNull(raw) || json.Unmarshal(raw, &fields) != nil {
		return el, false, fail(event.ReasonWrongType, path, "must be a JSON object (a HubSpot subscription event)")
	}
	if el.subscription, err = requiredString(fields, path, "subscriptionType"); err != nil {
		return el, false, err
	}
	switch el.subscription {
	case subCreation, subDeletion:
	case subPropertyChange:
		if el.property, err = requiredString(fields, path, "propertyName"); err != nil {
			return el, false, err
		}
		if el.property != propStage && el.property != propOwner && el.property != propAmount {
			return el, false, nil
		}
		raw, ok := fields["propertyValue"]
		if !ok {
			return el, false, fail(event.ReasonMissingField, path+".propertyValue", "required")
		}
		if !isNull(raw) && json.Unmarshal(raw, &el.value) != nil {
			return el, false, fail(event.ReasonWrongType, path+".propertyValue", "must be a string")
		}
		if el.property == propAmount && el.value != "" {
			if el.amount, err = parseAmount(el.value, path+".propertyValue"); err != nil {
				return el, false, err
			}
		}
	default:
		return el, false, nil
	}
	for _, f := range []struct {
		name    string
		dst     *int64
		lo, hi  int64
		invalid event.Reason
	}{
		{"portalId", &el.portalID, 1, math.MaxInt64, event.ReasonInvalidValue},
		{"objectId", &el.objectID, 1, math.MaxInt64, event.ReasonInvalidValue},
		{"eventId", &el.eventID, 0, math.MaxInt64, event.ReasonInvalidValue},
		{"occurredAt", &el.occurredAt, 1, maxOccurredAt, event.ReasonInvalidTime},
	} {
		if *f.dst, err = integer(fields, path, f.name, f.lo, f.hi, f.invalid); err != nil {
			return el, false, err
		}
	}
	if raw, ok := fields["sourceId"]; ok && !isNull(raw) {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return el, false, fail(event.ReasonWrongType, path+".sourceId", "must be a string")
		}
		if user, ok := strings.CutPrefix(s, "userId:"); ok && user != "" {
			el.changedBy = user
		}
	}
	return el, true, nil
}

// parseAmount parses a HubSpot number property: a plain decimal such as "1500" or "1500.50" (an exponent is
// tolerated). Hex, "NaN", "Inf", signs other than a leading "-", and spaces are rejected.
func parseAmount(s, field string) (float64, error) {
	if !isDecimal(s) {
		return 0, fail(event.ReasonWrongType, field, "amount must be a decimal number, got %s", quote(s))
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(v, 0) {
		return 0, fail(event.ReasonInvalidValue, field, "amount out of range: %s", quote(s))
	}
	if v < 0 {
		return 0, fail(event.ReasonNegativeAmount, field, "amount must be >= 0, got %s", quote(s))
	}
	return v + 0, nil // + 0 turns -0 into 0
}

// isDecimal reports whether s is -?digits[.digits][(e|E)[+-]digits] with at least one mantissa digit.
func isDecimal(s string) bool {
	i, n := 0, len(s)
	if i < n && s[i] == '-' {
		i++
	}
	digits := 0
	for ; i < n && s[i] >= '0' && s[i] <= '9'; i++ {
		digits++
	}
	if i < n && s[i] == '.' {
		i++
		for ; i < n && s[i] >= '0' && s[i] <= '9'; i++ {
			digits++
		}
	}
	if digits == 0 {
		return false
	}
	if i < n && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < n && (s[i] == '+' || s[i] == '-') {
			i++
		}
		start := i
		for ; i < n && s[i] >= '0' && s[i] <= '9'; i++ {
		}
		if i == start {
			return false
		}
	}
	return i == n
}

// integer reads the required JSON integer field name of the element at path within [lo, hi]; a number outside that
// range or with a fraction or exponent is rejected with reason invalid.
func integer(fields map[string]json.RawMessage, path, name string, lo, hi int64, invalid event.Reason) (int64, error) {
	path += "." + name
	raw, ok := fields[name]
	if !ok || isNull(raw) {
		return 0, fail(event.ReasonMissingField, path, "required")
	}
	s := string(bytes.TrimSpace(raw))
	if s == "" || s[0] != '-' && (s[0] < '0' || s[0] > '9') {
		return 0, fail(event.ReasonWrongType, path, "must be a number")
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < lo || v > hi {
		return 0, fail(invalid, path, "must be an integer in [%d, %d], got %s", lo, hi, quote(s))
	}
	return v, nil
}

func requiredString(fields map[string]json.RawMessage, path, name string) (string, error) {
	field := path + "." + name
	raw, ok := fields[name]
	if !ok || isNull(raw) {
		return "", fail(event.ReasonMissingField, field, "required")
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", fail(event.ReasonWrongType, field, "must be a string")
	}
	if s == "" {
		return "", fail(event.ReasonMissingField, field, "must not be empty")
	}
	return s, nil
}

func fail(r event.Reason, field, format string, args ...any) *event.Error {
	return &event.Error{Reason: r, Field: field, Detail: fmt.Sprintf(format, args...)}
}

func isNull(raw json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("null")) }

// quote renders a value from the payload for an error message, cut short: errors travel in dead-letter headers.
func quote(s string) string {
	const max = 40
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return strconv.Quote(s[:cut]) + "…"
	}
	return strconv.Quote(s)
}
