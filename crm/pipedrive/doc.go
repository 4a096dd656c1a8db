// Package pipedrive decodes Pipedrive webhooks v2 bodies into leadthrough's canonical events (package event), as an
// ingest.Decoder for a Kafka topic that carries one Pipedrive webhook POST body per message.
//
// It maps what Pipedrive says happened and nothing more: it never derives a previous owner, a manager or a close
// from anything but the body in hand (indicators derive the previous owner from the deal's own history, so the
// payload's previous owner is informational). It knows nothing of Kafka or ClickHouse, keeps no state between
// messages, and never panics on any input.
//
// # Pointing Pipedrive at Kafka
//
// Pipedrive pushes webhooks over HTTPS; it cannot write to Kafka itself. Put a receiver in between that writes each
// POST body verbatim as ONE Kafka message value to a dedicated topic (e.g. "pipedrive.webhooks") and answers 2xx
// only after the broker acknowledged the write (Pipedrive retries otherwise, incrementing meta.attempt; retries are
// harmless, see "Event ids"). Any HTTP-to-Kafka bridge does: a small service, Kafka Connect with an HTTP source
// connector, or Redpanda Connect (Benthos) with an http_server input and a kafka output. Protect the endpoint with
// the webhook's HTTP basic auth (http_auth_user / http_auth_password). The message key does not matter: indicators do
// not depend on arrival order.
//
// Create the webhooks with version "2.0" (POST /v1/webhooks with "version": "2.0", or in the app under Settings →
// Tools and apps → Webhooks), authorised as an admin user so that every deal is visible, for:
//
//	event_action *  event_object deal
//	event_action *  event_object user
//
// (or "*" / "*": other objects are accepted and ignored). Then consume the topic with this decoder:
//
//	ingest.Topic{Name: "pipedrive.webhooks", Decoder: pipedrive.New(pipedrive.Config{})}
//
// Pipedrive users have no manager field, so reporting lines do not come from Pipedrive. Publish them as canonical
// user.manager_changed events to the canonical topic, or load them from a CSV export (`leadthrough import`,
// DESIGN.md), with user_id and manager_id set to Pipedrive user ids as this decoder renders them: the decimal id,
// e.g. "12415231".
//
// # Configuration
//
// Config.Source (default "pipedrive") prefixes every event's source, which is Source + "/" + meta.company_id,
// e.g. "pipedrive/8087566". Deal and user ids are Pipedrive's own and are not prefixed: indicators group events by
// deal_id and user_id across sources, so one install serves one Pipedrive company (a second company needs its own
// database).
//
// # Mapping
//
// Deals and users are mapped; previous holds only the fields that changed, with their old values, so a change is
// mapped by which keys previous has:
//
//	Pipedrive body (meta.entity, meta.action, …)       canonical events, in this order
//	deal  create                                       deal.created{owner_id, name: title, amount: value, currency,
//	                                                     stage: stage_id}, then if status is
//	                                                     won/lost → deal.closed{outcome, amount: value, currency}
//	                                                     deleted  → deal.deleted
//	deal  change, previous has owner_id                deal.owner_changed{owner_id, previous_owner_id: previous
//	                                                     owner_id (informational), changed_by: meta.user_id}
//	deal  change, previous has stage_id                deal.stage_changed{stage, previous_stage}
//	deal  change, previous has value or currency       deal.amount_changed{amount: value, currency}
//	deal  change, previous has status, status is
//	        won or lost                                deal.closed{outcome: status, amount: value, currency}
//	        open, previous status won or lost          deal.reopened
//	        open, previous status open/deleted/null    nothing (a restored deal stays deleted: the contract has no
//	                                                     undelete)
//	        deleted                                    deal.deleted
//	deal  change of anything else (title, custom_fields,
//	        person, org, pipeline_id, labels, …)       nothing
//	deal  delete                                       deal.deleted{deal_id: meta.entity_id} (data may be null)
//	user  create or change                             user.upserted{name, email}, then user.deactivated if
//	                                                     active_flag is false and this is a creation or previous
//	                                                     has active_flag (a deactivation, not a later edit)
//	user  delete                                       user.deactivated
//	any other entity (person, organization, activity,
//	  lead, note, product, …)                          nothing, without further validation
//
// Common fields: meta.entity_id → deal_id / user_id; owner_id, stage_id and user ids → their decimal string
// ("12415231"); meta.timestamp (RFC 3339, milliseconds) → time, or data.update_time when meta.timestamp is absent;
// meta.company_id → source. A change that sets a field to its old value emits nothing for it.
//
// Why these rules:
//   - Pipedrive activities are not mapped: they are customer-facing (calls, meetings, emails with persons), while the
//     indicators only read coaching activities between a manager and reps, which Pipedrive has no notion of. Send
//     coaching as canonical activity.logged events.
//   - A deal.closed carries the deal's value at the close, so the closed amount is right even if the value changed
//     in the same edit; a deal.reopened on a deal that is already open is harmless to the indicators.
//   - Every emitted event has the webhook's time: two events of one edit share it, and the indicators then take an
//     owner change and a close of the same edit in the right order (the new owner closes; an owner change is a
//     takeover only if the deal was open strictly before).
//
// # Validation
//
// The message is dead-lettered with an *event.Error (Reason, Field such as "data.owner_id") if it is not valid UTF-8
// or not one JSON object (malformed_json); if meta is missing or not an object; if meta.version is missing or not
// 2.x (a v1 body is unsupported_specversion); if meta.entity is missing. For deal and user bodies, also if
// meta.action is not create/change/delete (invalid_value); meta.id, meta.company_id or meta.entity_id is missing;
// meta.company_id, meta.entity_id or meta.user_id is neither a string nor a positive integer; data is missing on a
// create or change, or data.id names another entity; meta.timestamp (or the data.update_time fallback) is missing,
// unparseable or outside 1970–2106 (ClickHouse DateTime); a deal's owner_id, stage_id or id is not a positive integer
// (wrong_type, or invalid_value when ≤ 0); value is not a number (wrong_type), not finite (invalid_value) or
// negative (negative_amount); title, currency, status are not strings or status is not open/won/lost/deleted;
// previous.owner_id, previous.stage_id or previous.status, when the mapping reads them, have the wrong type; a
// field the mapping needs is null (e.g. data.owner_id on a create, data.value when previous has value); a user's
// name or email is not a string or active_flag not a boolean. A change whose previous is missing or null maps to
// nothing. Fields not listed are not examined.
//
// # Event ids
//
// Each canonical event's id is meta.id and the canonical type, e.g.
//
//	df47d877-b58c-4886-91cd-1aa83e1d7366:deal.owner_changed
//
// meta.id is a uuid per webhook notification, and one notification emits at most one event per type, so ids are
// unique and deterministic: decoding the same body twice yields the same ids, and a replayed dead letter cannot
// double-count. This relies on an assumption Pipedrive does not document explicitly: that a retried delivery keeps
// meta.id and only increments meta.attempt (webhooks v2 promises "one edit triggers one change webhook", with retries
// of that webhook). If a retry ever carried a new meta.id, its events would be stored twice under different ids.
// Most copies would still not change an indicator (a repeated owner change is from the owner to itself and never a
// takeover, docs/indicators.md edge rule 19; a repeated close at the same meta.timestamp is the same close), but a
// copy with a later meta.timestamp would move a close to that later time. Neither meta.attempt nor anything else
// that differs between deliveries is part of an id.
package pipedrive
