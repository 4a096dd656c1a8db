package store

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/leadthrough/leadthrough/internal/testenv"
)

// TestSQLThatOnlyOldClickHouseAcceptsFailsOnChdb proves the two-engine harness catches non-portable SQL: a joined
// subquery without an alias runs on ClickHouse 18.16 but is rejected by current releases (Code 206,
// ALIAS_REQUIRED), so a query written and checked only against 18.16 would fail the chdb subtests.
func TestSQLThatOnlyOldClickHouseAcceptsFailsOnChdb(t *testing.T) {
	const query = "SELECT 1 AS x FROM (SELECT 1 AS x) ALL LEFT JOIN (SELECT 1 AS x) USING x"
	for _, e := range testenv.ClickHouseEngines(t) {
		t.Run(e.Name, func(t *testing.T) {
			s := newEngineStore(t, e)
			var x uint8
			err := s.conn.QueryRow(context.Background(), query).Scan(&x)
			switch e.Protocol {
			case ProtocolNative: // ClickHouse 18.16
				if err != nil || x != 1 {
					t.Fatalf("ClickHouse 18.16 should accept a joined subquery without alias: x=%d, err=%v", x, err)
				}
			default: // ClickHouse 26.9 in chdb
				var ex *clickhouse.Exception
				if !errors.As(err, &ex) || ex.Code != 206 || !strings.Contains(err.Error(), "206") {
					t.Fatalf("ClickHouse 26.9 should reject a joined subquery without alias with Code 206, got x=%d, err=%v", x, err)
				}
			}
		})
	}
}

// TestResultsDecodeAlikeOnEveryEngine reads the column types the store's queries return, in a result of more than
// one block, through each engine's protocol (for chdb: the bridge's Native output) and compares the values.
func TestResultsDecodeAlikeOnEveryEngine(t *testing.T) {
	const rows = 70_000 // more than one block (max_block_size 65505 on 18.16, 65409 on chdb)
	const query = `SELECT number, toString(number) AS s, toInt64(number) - 5 AS i, toUInt8(number % 2) AS b,
		if(number % 3 = 0, NULL, number / 4) AS f, [toString(number), 'x'] AS arr, toDateTime(number) AS dt,
		toUInt32(number) AS u
		FROM system.numbers LIMIT 70000`
	forEachEngine(t, func(t *testing.T, s *Store) {
		r, err := s.conn.Query(context.Background(), query)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		var n uint64
		for ; r.Next(); n++ {
			var (
				num uint64
				str string
				i   int64
				b   uint8
				f   *float64
				arr []string
				dt  time.Time
				u   uint32
			)
			if err := r.Scan(&num, &str, &i, &b, &f, &arr, &dt, &u); err != nil {
				t.Fatalf("row %d: %v", n, err)
			}
			want := strconv.FormatUint(n, 10)
			ok := num == n && str == want && i == int64(n)-5 && b == uint8(n%2) &&
				(n%3 == 0) == (f == nil) && (f == nil || *f == float64(n)/4) &&
				len(arr) == 2 && arr[0] == want && arr[1] == "x" && dt.Unix() == int64(n) && u == uint32(n)
			if !ok {
				t.Fatalf("row %d: number=%d s=%q i=%d b=%d f=%v arr=%q dt=%s u=%d", n, num, str, i, b, f, arr, dt, u)
			}
		}
		if err := r.Err(); err != nil {
			t.Fatal(err)
		}
		if n != rows {
			t.Fatalf("read %d rows, want %d", n, rows)
		}
	})
}
