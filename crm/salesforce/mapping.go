package salesforce

import (
	"encoding/json"
	"strings"

	"github.com/leadthrough/leadthrough/event"
)

// opportunityChanges maps an OpportunityChangeEvent to deal events (the table in the package doc).
func opportunityChanges(h *header, p pathObject) ([]change, error) {
	switch h.changeType {
	case changeDelete:
		return []change{newChange(event.DealDeleted, event.Data{})}, nil
	case changeUndelete:
		return nil, invalid(h.prefix+"ChangeEventHeader.changeType",
			"Opportunity UNDELETE is not supported: the event contract cannot restore a deleted deal")
	}
	owner, hasOwner, err := optionalString(p, "OwnerId")
	if err != nil {
		return nil, err
	}
	name, _, err := optionalString(p, "Name")
	if err != nil {
		return nil, err
	}
	stage, hasStage, err := optionalString(p, "StageName")
	if err != nil {
		return nil, err
	}
	amount, err := optionalAmount(p, "Amount")
	if err != nil {
		return nil, err
	}
	currency, _, err := optionalString(p, "CurrencyIsoCode")
	if err != nil {
		return nil, err
	}
	isClosed, hasClosed, err := optionalBool(p, "IsClosed")
	if err != nil {
		return nil, err
	}
	isWon, hasWon, err := optionalBool(p, "IsWon")
	if err != nil {
		return nil, err
	}
	if hasOwner && owner == "" {
		return nil, &event.Error{Reason: event.ReasonMissingField, Field: p.path("OwnerId"), Detail: "must not be empty"}
	}
	if hasStage && stage == "" {
		return nil, &event.Error{Reason: event.ReasonMissingField, Field: p.path("StageName"), Detail: "must not be empty"}
	}

	closed := func() change {
		d := event.Data{Outcome: event.OutcomeLost, Amount: amount}
		if isWon {
			d.Outcome = event.OutcomeWon
		}
		if amount != nil {
			d.Currency = currency
		}
		return newChange(event.DealClosed, d)
	}

	var out []change
	if h.changeType == changeCreate {
		if !hasOwner {
			return nil, missing(p.path("OwnerId"))
		}
		out = append(out, newChange(event.DealCreated, event.Data{OwnerID: owner, Name: name, Amount: amount,
			Currency: currency, Stage: stage}))
		// IsWon implies IsClosed: a CREATE with IsWon true is closed even if IsClosed is missing.
		if (hasClosed && isClosed) || (!hasClosed && hasWon && isWon) {
			out = append(out, closed())
		}
		return out, nil
	}

	// UPDATE: a non-null value means the field changed.
	if hasOwner {
		out = append(out, newChange(event.DealOwnerChanged, event.Data{OwnerID: owner, ChangedBy: h.commitUser}))
	}
	if hasStage {
		out = append(out, newChange(event.DealStageChanged, event.Data{Stage: stage}))
	}
	if amount != nil {
		out = append(out, newChange(event.DealAmountChanged, event.Data{Amount: amount, Currency: currency}))
	}
	switch {
	case hasClosed && isClosed:
		out = append(out, closed())
	case hasClosed:
		out = append(out, newChange(event.DealReopened, event.Data{}))
	case hasWon:
		// IsWon changed while IsClosed did not: since IsWon implies IsClosed, the deal was closed before and after,
		// and its outcome flipped (Closed Lost ↔ Closed Won). The new close is the one that counts.
		out = append(out, closed())
	}
	return out, nil
}

// userChanges maps a UserChangeEvent to user events (the table in the package doc).
func userChanges(h *header, p pathObject) ([]change, error) {
	if h.changeType == changeDelete {
		return []change{newChange(event.UserDeactivated, event.Data{})}, nil
	}
	// CREATE and UNDELETE carry the whole record: an absent or null field is empty. UPDATE carries changes only.
	whole := h.changeType != changeUpdate
	name, err := userName(p, whole)
	if err != nil {
		return nil, err
	}
	email, _, err := optionalString(p, "Email")
	if err != nil {
		return nil, err
	}
	title, _, err := optionalString(p, "Title")
	if err != nil {
		return nil, err
	}
	manager, hasManager, err := optionalString(p, "ManagerId")
	if err != nil {
		return nil, err
	}
	if hasManager && manager == "" {
		return nil, &event.Error{Reason: event.ReasonMissingField, Field: p.path("ManagerId"),
			Detail: "must not be empty (null means no manager)"}
	}
	active, hasActive, err := optionalBool(p, "IsActive")
	if err != nil {
		return nil, err
	}

	var out []change
	if whole || name != "" || email != "" || title != "" {
		out = append(out, newChange(event.UserUpserted, event.Data{Name: name, Email: email, Title: title}))
	}
	_, managerKey := p.fields["ManagerId"]
	switch {
	case hasManager:
		out = append(out, newChange(event.UserManagerChanged, event.Data{ManagerID: &manager}))
	case whole, managerKey && h.named["ManagerId"]:
		// A null ManagerId in an UPDATE is "unchanged" over the Pub/Sub API unless nulledFields (or, over CometD,
		// changedFields) names it.
		out = append(out, newChange(event.UserManagerChanged, event.Data{ManagerID: nil}))
	}
	if hasActive && !active {
		out = append(out, newChange(event.UserDeactivated, event.Data{}))
	}
	return out, nil
}

// userName reads the user's full name: Name as a string, or the compound Name {FirstName, LastName, …}, or
// FirstName and LastName at the top level. For an UPDATE (whole false) it is empty unless both parts changed, so a
// change of one part never stores half a name.
func userName(p pathObject, whole bool) (string, error) {
	parts := p
	if raw, ok := p.fields["Name"]; ok && !isNull(raw) {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s, nil
		}
		var obj object
		if decodeObject(raw, &obj) != nil {
			return "", wrongType(p.path("Name"), "must be a string or an object with FirstName and LastName")
		}
		parts = pathObject{fields: obj, prefix: p.path("Name") + "."}
	}
	first, hasFirst, err := optionalString(parts, "FirstName")
	if err != nil {
		return "", err
	}
	last, hasLast, err := optionalString(parts, "LastName")
	if err != nil {
		return "", err
	}
	if !whole && !(hasFirst && hasLast) {
		return "", nil
	}
	return strings.TrimSpace(strings.TrimSpace(first) + " " + strings.TrimSpace(last)), nil
}
