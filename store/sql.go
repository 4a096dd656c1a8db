package store

import (
	"regexp"
	"strings"
)

// SQL in this package is written once, as named fragments, and composed by expand: a fragment is referenced as
// {{name}} and expanded into a parenthesised subquery. ClickHouse 18.16 has no common table expressions and allows
// one JOIN per SELECT, so each step of DESIGN.md's definitions is a subquery of the next, and a result that several
// queries need (the attribution of deals) is materialised in a table instead of being recomputed.
//
// Portability rules (ClickHouse 18.16 and current releases with the mandatory new analyzer; see docs/indicators.md,
// "SQL that runs on 18.16 and 26.x"):
//   - every subquery on either side of a JOIN has an alias ({{x}} AS x_alias), JOINs say ALL, one per SELECT;
//   - INSERTs list their columns; values are bound (@name), never concatenated;
//   - an alias never reuses the name of a column it is computed from (sum(x) AS x_total, not sum(x) AS x);
//   - both branches of if() have the same type (toInt64(0), not 0, next to an Int64);
//   - a lambda never captures a column of its subquery that the SELECT does not otherwise use: 18.16 does not request
//     it ("Unknown identifier"), so the value is passed as an extra array argument, arrayResize([x], length(arr), x);
//   - times are compared as Unix milliseconds (Int64), ties broken by (source, id), so results never depend on
//     arrival order.

var placeholder = regexp.MustCompile(`\{\{(\w+)\}\}`)

// fragmentSets holds every named fragment; each file registers its own concern's set.
var fragmentSets = []map[string]string{reportingFragments, attributionFragments, teamFragments, promotionFragments}

// expand replaces each {{name}} with the named fragment, recursively, as a parenthesised subquery.
func expand(sql string) string { return expandWith(sql, nil) }

// expandWith is expand with some fragments swapped for others wherever they are referenced, also inside other
// fragments: {"candidates": "owned_candidates"} reuses the deal fragments for another set of deals.
func expandWith(sql string, swap map[string]string) string {
	return placeholder.ReplaceAllStringFunc(sql, func(m string) string {
		name := placeholder.FindStringSubmatch(m)[1]
		if to, ok := swap[name]; ok {
			name = to
		}
		for _, set := range fragmentSets {
			if f, ok := set[name]; ok {
				return "(" + expandWith(f, swap) + "\n)"
			}
		}
		panic("store: unknown SQL fragment " + name)
	})
}

// compact removes the indentation of a query, so that the query log stays readable and statements stay small.
func compact(sql string) string {
	lines := strings.Split(sql, "\n")
	out := lines[:0]
	for _, l := range lines {
		if t := strings.TrimSpace(l); t != "" {
			out = append(out, t)
		}
	}
	return strings.Join(out, "\n")
}

// reportingFragments derive reporting lines from user.manager_changed and user.deactivated. They read user_events,
// which holds only user events and is small: read whole, up to @as_of.
var reportingFragments = map[string]string{
	// One row per user: their manager changes in event order. user.deactivated ends the reporting line ('' = none).
	"user_changes": `
SELECT user_id,
       arraySort(c -> (c.1, c.2, c.3),
                 groupArray((time_ms, source, id, if(type = 'user.deactivated', '', manager_id)))) AS changes
FROM user_events FINAL
WHERE type IN ('user.manager_changed', 'user.deactivated') AND time_ms <= @as_of
GROUP BY user_id`,

	// One row per reporting interval [from, to) of a user under a manager; to = max Int64 while it lasts.
	"reporting_intervals": `
SELECT user_id,
       c.1 AS from_ms,
       if(i < length(changes), changes[i + 1].1, toInt64(9223372036854775807)) AS to_ms,
       c.4 AS line_manager
FROM {{user_changes}}
ARRAY JOIN changes AS c, arrayEnumerate(changes) AS i
WHERE line_manager != '' AND from_ms < to_ms`,

	// One row per user with everything point-in-time lookups need:
	//   own_t/own_m: their manager changes (the manager of U at t is the last own_m with own_t <= t);
	//   rep_f/rep_t: the intervals during which someone reported to them (U is a manager at t iff one contains t).
	"timelines": `
SELECT uid,
       groupArrayArray(ot) AS own_t, groupArrayArray(om) AS own_m,
       groupArrayArray(rf) AS rep_f, groupArrayArray(rt) AS rep_t
FROM
(
    SELECT user_id AS uid, arrayMap(c -> c.1, changes) AS ot, arrayMap(c -> c.4, changes) AS om,
           emptyArrayInt64() AS rf, emptyArrayInt64() AS rt
    FROM {{user_changes}}
    UNION ALL
    SELECT line_manager AS uid, emptyArrayInt64() AS ot, emptyArrayString() AS om,
           [from_ms] AS rf, [to_ms] AS rt
    FROM {{reporting_intervals}}
)
GROUP BY uid`,
}
