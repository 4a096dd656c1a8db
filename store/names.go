package store

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// userNamesQuery lists every user's name as the indicators name managers (fragment names): the latest non-empty
// user.upserted name at or before @as_of, ties broken by (source, id).
const userNamesQuery = `
SELECT manager_id, manager_name
FROM {{names}} AS user_names`

var expandedUserNames = compact(expand(userNamesQuery))

// UserNames maps the id of every user named at or before asOf to their latest non-empty name; users never named
// are absent. It is for showing people, reps included, by name (the report page); the indicator rows already carry
// the managers' names.
func (s *Store) UserNames(ctx context.Context, asOf time.Time) (map[string]string, error) {
	rows, err := s.conn.Query(ctx, expandedUserNames, clickhouse.Named("as_of", asOf.UTC().UnixMilli()))
	if err != nil {
		return nil, fmt.Errorf("query user names: %w", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var id, name string
		if err := rows.Scan(&id, &name); err != nil {
			return nil, fmt.Errorf("scan user names: %w", err)
		}
		out[id] = name
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read user names: %w", err)
	}
	return out, nil
}
