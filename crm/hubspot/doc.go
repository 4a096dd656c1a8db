// Package hubspot decodes HubSpot webhook batches into leadthrough's canonical events (package event), as an
// ingest.Decoder for a Kafka topic that carries one HubSpot webhook POST body per message.
//
// It must never invent what HubSpot did not send: a HubSpot owner change carries only the new owner, so the
// decoder emits deal.owner_changed without previous_owner_id and the indicators derive the previous owner from the
// deal's own history. It knows nothing of Kafka or ClickHouse, and it never panics on any input.
//
// # Pointing HubSpot at Kafka
//
// HubSpot pushes webhooks over HTTPS; it cannot write to Kafka itself. Put a webhook receiver in between that
// verifies the X-HubSpot-Signature-v3 header, writes each POST body verbatim as ONE Kafka message value to a
// dedicated topic (e.g. "hubspot.webhooks"), and answers 2xx only after the broker acknowledged the write (HubSpot
// retries otherwise; retries are harmless, see "Event ids"). Any HTTP-to-Kafka bridge does: a small service, Kafka
// Connect with an HTTP source connector, or Redpanda Connect (Benthos) with an http_server input and a kafka output.
// The message key does not matter: indicators do not depend on arrival order. Do not split or re-batch the body.
//
// In the HubSpot app (public app or private app with webhooks), create these legacy CRM object subscriptions:
//
//	deal.creation
//	deal.deletion
//	deal.propertyChange  propertyName dealstage
//	deal.propertyChange  propertyName hubspot_owner_id
//	deal.propertyChange  propertyName amount
//
// The hubspot_owner_id subscription is essential: HubSpot's deal.creation carries no properties, so the owner a deal
// is created with can only arrive as a hubspot_owner_id propertyChange, which HubSpot also fires for a value set at
// creation. Then consume the topic with this decoder:
//
//	ingest.Topic{Name: "hubspot.webhooks", Decoder: hubspot.New(hubspot.Config{WonStages: …, LostStages: …})}
//
// HubSpot has no reporting lines. Publish them as canonical user.manager_changed events (and user.upserted for
// names) to the canonical topic, with user_id and manager_id set to HubSpot OWNER ids (the values of
// hubspot_owner_id, not HubSpot user ids).
//
// # Configuration
//
// Config.Source (default "hubspot") prefixes every event's source, which is Source + "/" + portalId.
// Config.WonStages (default ["closedwon"]) and Config.LostStages (default ["closedlost"]) are the dealstage ids that
// close a deal as won or lost. Stage ids are portal-specific: the default pipeline uses "closedwon"/"closedlost",
// custom pipelines use numeric ids (find them under Settings → Objects → Deals → Pipelines, or the pipelines API).
// List the won and lost stages of every pipeline; setting either list replaces its default. Config.Validate
// reports an empty stage id or a stage listed as both won and lost.
//
// # Mapping
//
//	HubSpot element                                   canonical events
//	deal.creation                                     deal.created{owner_id} if a non-empty hubspot_owner_id
//	                                                  change of the same deal with the same occurredAt is in the
//	                                                  same batch; otherwise nothing (see below)
//	deal.deletion                                     deal.deleted
//	deal.propertyChange dealstage = S                 deal.stage_changed{stage: S}, then
//	                                                    deal.closed{outcome: won}  if S is in WonStages
//	                                                    deal.closed{outcome: lost} if S is in LostStages
//	                                                    deal.reopened              otherwise
//	deal.propertyChange hubspot_owner_id = O          deal.owner_changed{owner_id: O}
//	deal.propertyChange amount = A                    deal.amount_changed{amount: A} (A parsed as a decimal number)
//	deal.propertyChange of those with an empty value  nothing (owner removed, amount or stage cleared)
//	deal.propertyChange of any other property         nothing
//	any other subscription type (contact.*, company.*,
//	  ticket.*, deal.merge, deal.restore,
//	  deal.associationChange, object.*, …)            nothing
//
// Common fields: objectId → data.deal_id (decimal string), occurredAt (Unix ms) → time, portalId → source,
// sourceId "userId:NNN" → data.changed_by "NNN" on deal.owner_changed (a HubSpot user id, informational only: no
// indicator reads changed_by). previous_owner_id and previous_stage are never set: HubSpot does not send them.
//
// Why these rules:
//   - deal.created needs an owner. A creation without a known owner emits nothing, and the deal's first
//     hubspot_owner_id change acts as its assignment (indicators treat a deal.owner_changed on an unknown deal as an
//     assignment), so nothing is lost. Only a change with the creation's own occurredAt is used (the first such in
//     the batch): an owner set later must not be backdated to the creation, and if HubSpot ever stamps the two
//     differently or batches them apart, the fallback above applies. The owner change itself is still emitted; the
//     same owner twice is not a change, so it is harmless.
//   - An emptied hubspot_owner_id (owner removed) emits nothing: the contract has no "no owner", and until the next
//     owner the deal keeps its last owner for attribution. An emptied amount or stage likewise carries nothing.
//   - Every stage outside WonStages and LostStages emits deal.reopened: indicators take a deal.reopened on an open
//     deal as a no-op, and it correctly reopens a deal moved back out of a closed stage.
//   - deal.closed carries no amount: indicators use the latest known amount, which the amount subscription supplies.
//   - Currency (deal_currency_code) is ignored: one reporting currency per install.
//   - deal.restore is ignored: a deleted deal stays excluded (the contract has no undelete). deal.merge is ignored.
//
// # Validation
//
// The whole message is dead-lettered, with an *event.Error naming the element (Field "[i].objectId"), if the body is
// not valid UTF-8 or not a JSON array, or if any element is not an object or lacks a string subscriptionType, or if
// an element that is mapped above (deal.creation, deal.deletion, or a deal.propertyChange of dealstage,
// hubspot_owner_id or amount) has a missing or malformed portalId or objectId (positive integers), eventId (a
// non-negative integer), occurredAt (Unix ms after 1970 and before 2106, what ClickHouse's DateTime holds),
// propertyValue (a string or null), sourceId (a string if present), or an amount that is not a decimal number
// (wrong_type), too large (invalid_value) or negative (negative_amount). Elements that are not mapped are not
// examined further. One bad element rejects the whole batch rather than dropping it quietly: nothing is lost, the
// dead letter holds the complete body, and replaying it after a fix cannot double-count the good elements because
// event ids are deterministic.
//
// # Event ids
//
// HubSpot's eventId is not guaranteed unique (one eventId can name changes of several objects), so the id of each
// canonical event is
//
//	<portalId>:<eventId>:<occurredAt>:<objectId>:<what>:<type>
//
// where what is the propertyName for deal.propertyChange and "creation" or "deletion" otherwise, and type is the
// canonical event type, so one element fanning out into deal.stage_changed and deal.closed yields two ids. For
// example "5799819:802835955:1556094637139:697680835:dealstage:deal.closed". It does not depend on attemptNumber,
// subscriptionId or the batch, so a HubSpot retry or a replayed dead letter produces the same ids and the store keeps
// one copy per (source, id).
package hubspot
