// Package event is leadthrough's canonical CRM event contract (v1): CloudEvents 1.0 in structured JSON mode, one
// event per Kafka message value, identified by (source, id).
//
// It decodes and strictly validates events and encodes them for producers. It must never know about Kafka,
// ClickHouse or Prometheus: those live at the edges and import this package, not the other way round.
package event

import (
	"time"
)

// SpecVersion is the only CloudEvents version accepted.
const SpecVersion = "1.0"

// Event types of contract v1.
const (
	UserUpserted       = "user.upserted"
	UserManagerChanged = "user.manager_changed"
	UserDeactivated    = "user.deactivated"
	DealCreated        = "deal.created"
	DealOwnerChanged   = "deal.owner_changed"
	DealStageChanged   = "deal.stage_changed"
	DealAmountChanged  = "deal.amount_changed"
	DealClosed         = "deal.closed"
	DealReopened       = "deal.reopened"
	DealDeleted        = "deal.deleted"
	ActivityLogged     = "activity.logged"
)

// Types lists every event type of contract v1, in the order of DESIGN.md.
var Types = []string{
	UserUpserted, UserManagerChanged, UserDeactivated,
	DealCreated, DealOwnerChanged, DealStageChanged, DealAmountChanged, DealClosed, DealReopened, DealDeleted,
	ActivityLogged,
}

// Deal outcomes carried by deal.closed.
const (
	OutcomeWon  = "won"
	OutcomeLost = "lost"
)

// DefaultCoachingKinds are the activity kinds that count as coaching unless configured otherwise.
var DefaultCoachingKinds = []string{"coaching_session", "one_on_one", "call_review", "deal_review"}

// Event is one canonical event. Data holds the union of all types' fields; which of them are set depends on Type
// and is enforced by Decode and Validate.
type Event struct {
	Source string    `json:"source"`
	ID     string    `json:"id"`
	Type   string    `json:"type"`
	Time   time.Time `json:"time"`
	Data   Data      `json:"data"`
}

// Data is the payload of an event. Optional values are pointers so that "absent" and "zero" stay distinct.
type Data struct {
	// user.*
	UserID string `json:"user_id,omitempty"`
	Name   string `json:"name,omitempty"`
	Email  string `json:"email,omitempty"`
	Title  string `json:"title,omitempty"`
	// ManagerID is required for user.manager_changed; nil means the user has no manager from then on.
	ManagerID *string `json:"manager_id,omitempty"`

	// deal.*
	DealID          string   `json:"deal_id,omitempty"`
	OwnerID         string   `json:"owner_id,omitempty"`
	PreviousOwnerID string   `json:"previous_owner_id,omitempty"`
	ChangedBy       string   `json:"changed_by,omitempty"`
	Stage           string   `json:"stage,omitempty"`
	PreviousStage   string   `json:"previous_stage,omitempty"`
	Amount          *float64 `json:"amount,omitempty"`
	Currency        string   `json:"currency,omitempty"`
	Outcome         string   `json:"outcome,omitempty"`

	// activity.logged
	ActivityID      string   `json:"activity_id,omitempty"`
	Kind            string   `json:"kind,omitempty"`
	ActorID         string   `json:"actor_id,omitempty"`
	SubjectUserIDs  []string `json:"subject_user_ids,omitempty"`
	DurationMinutes *float64 `json:"duration_minutes,omitempty"`
}

// Key is the entity id producers use as the Kafka message key, so one entity's events share a partition.
func (e Event) Key() string {
	switch {
	case e.Data.DealID != "" && e.Type != ActivityLogged:
		return e.Data.DealID
	case e.Data.UserID != "":
		return e.Data.UserID
	default:
		return e.Data.ActivityID
	}
}

// Ptr returns a pointer to v, for building optional fields.
func Ptr[T any](v T) *T { return &v }
