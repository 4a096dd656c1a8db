// Package csvimport turns CRM exports in CSV into canonical events (package event), so that a CRM without a change
// feed can still be measured: `leadthrough import` publishes the events to Kafka or writes them into ClickHouse.
//
// Two formats are supported; their exact mappings follow below.
//
//   - FormatMaven ("maven-crm"): the Maven Analytics "CRM Sales Opportunities" export (sales_teams.csv,
//     sales_pipeline.csv, products.csv in one directory); see Maven.
//   - FormatCSV ("csv"): one file of deals whose columns are named by a Mapping, plus an optional file of users and
//     their managers; see CSV.
//
// An import is deterministic: the same files always yield the same events, in the same order, with the same
// (source, id). Event ids are derived from the entity ids (e.g. "1C1I7A6R/deal.created"), never from a clock or a
// counter, so importing the same export again replaces the stored events instead of counting them twice, and
// importing a later export of the same CRM adds what is new and replaces what changed. An export is a snapshot
// without history: a deal missing from a later export is not deleted, and a changed manager replaces the old one
// for the whole period.
//
// Bad rows are reported with file, line and column (RowError). By default any bad row fails the import with an
// *InvalidError listing them all; with Options.SkipInvalid they are skipped, counted in Summary.Skipped and listed in
// Summary.Warnings instead. Nothing is ever dropped silently.
//
// The package reads files and returns []event.Event. It must never know about Kafka or ClickHouse.
//
// # maven-crm
//
// The Maven Analytics "CRM Sales Opportunities" export: one directory with sales_teams.csv, sales_pipeline.csv and
// products.csv (accounts.csv is not read). Source "maven-crm". Event ids are "<entity id>/<event type>".
//
//	file: row                                  event(s)                        time                     data
//	sales_teams.csv: each manager (once)       user.upserted                   T0                       user_id "manager:<slug>", name, title "Sales manager, <office(s)> office"
//	sales_teams.csv: each agent                user.upserted                   T0                       user_id "agent:<slug>", name, title "Sales agent, <regional_office> office"
//	sales_teams.csv: each agent with manager   user.manager_changed            T0                       user_id agent, manager_id manager
//	sales_pipeline.csv: agent with no team row user.upserted (+ a warning)     T0                       user_id "agent:<slug>", name, title "Sales agent"; no manager
//	sales_pipeline.csv: Engaging/Won/Lost      deal.created                    engage_date 09:00 UTC    deal_id opportunity_id, owner_id the agent, name "<account> - <product>"
//	                                                                                                    (the product alone when account is blank), amount the product's sales_price
//	                                                                                                    from products.csv, stage "engaging"
//	sales_pipeline.csv: Won / Lost             deal.closed                     close_date 17:00 UTC     outcome won / lost, amount close_value
//	sales_pipeline.csv: Engaging               nothing more: the deal stays open
//	sales_pipeline.csv: Prospecting            nothing: skipped and counted (SkipReasonNoEngageDate); such rows have no engage_date,
//	                                           so there is no time at which the deal existed. A Prospecting row that has an
//	                                           engage_date is created like an Engaging one, with stage "prospecting".
//
// T0, when users and reporting lines take effect, is 00:00 UTC on the day before the earliest engage_date of the
// import (2016-10-19T00:00:00Z for the published export): the export has no history of reporting lines, so the
// current ones are taken to have held for the whole period, and they must be in place before the first deal so that
// every deal is attributed to its agent's manager. The time is derived from the data, so re-importing the same files
// gives the same events; a later export with an earlier first deal moves T0, which replaces (never duplicates) the
// user events, since their ids do not depend on it.
//
// <slug> is Slug(name): "Moses Frase" → "moses-frase", so ids read like "agent:moses-frase" and
// "manager:dustin-brinkmann". The prefixes keep agents and managers apart even if they share a name; two names with
// one slug are an error. Pipeline agents are matched to team rows by slug, so a different spelling ("moses frase")
// finds its agent and is counted in Summary.Corrections.
//
// Products are matched ignoring case and spaces, which reads the pipeline's "GTXPro" as products.csv's "GTX Pro"
// (counted in Summary.Corrections). An unknown product is a warning: the deal is created without an amount.
// Dates are YYYY-MM-DD; the times of day put a deal created and closed on the same day in that order.
//
// Invalid rows (each problem named by file, line and column): empty or repeated opportunity_id, empty sales_agent,
// unknown deal_stage, missing or unparseable engage_date (except Prospecting), missing or unparseable close_date on
// Won/Lost, close_date before engage_date, non-numeric or negative close_value, non-numeric or negative
// sales_price, a repeated product, an agent listed twice with different managers. Warnings (imported anyway): an
// agent with no team row (imported as a user without a manager, so their deals count for no manager), an agent
// without a manager, an unknown product, an empty close_value on a Won/Lost deal (its amount is then the
// product's price), close_date or close_value on an open deal (ignored), an agent listed twice with the same
// manager (the repeat is ignored).
//
// # csv
//
// One file of deals, one row per deal, with columns named by a Mapping (defaults in brackets), and optionally a file
// of users (Mapping.Users). Source "csv" unless set: give each CRM its own source. Ids are taken verbatim.
//
//	deals file: each row                     deal.created          created [created_at]      deal_id [deal_id], owner_id [owner_id], amount [amount], name (Mapping.Name)
//	deals file: outcome won/lost             deal.closed           closed [closed_at]        outcome [outcome] per Mapping.Won/Lost, amount [amount]
//	deals file: any other outcome            nothing more: the deal stays open
//	users file: each row                     user.upserted         T0                        user_id [user_id], name [name] if the column exists
//	users file: each row with a manager      user.manager_changed  T0                        manager_id [manager_id]
//	deals file: owner-manager column         user.manager_changed  T0                        (Mapping.OwnerManager) the owner's manager
//	owners and managers not in a users file  user.upserted         T0                        user_id only
//
// Times are RFC 3339, "YYYY-MM-DD hh:mm[:ss]" (UTC) or a date (created at 09:00, closed at 17:00 UTC). T0 is 00:00
// UTC the day before the first created time, as for maven-crm. Invalid rows: empty or repeated deal id, empty owner,
// missing or bad created time, a close time with an outcome that is neither won nor lost, a won/lost deal without
// close time, a close before the creation, a non-numeric or negative amount, a user who is their own manager,
// two different managers for one user (in either file), a user listed twice in the users file. Warning: with a users
// file, an owner who is not in it and has no manager.
package csvimport
