package simulate

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/leadthrough/leadthrough/event"
	"github.com/leadthrough/leadthrough/internal/golden"
)

// goldenConfigs are the scenarios whose output is pinned byte for byte by testdata/golden.txt: any change to what
// Generate produces for them, event ids, times, payloads or order, fails TestOutputMatchesGolden.
var goldenConfigs = []struct {
	name string
	cfg  Config
}{
	{"default (seed 1)", Config{End: testEnd}},
	{"seed 2", Config{End: testEnd, Seed: 2}},
	{"seed 3", Config{End: testEnd, Seed: 3}},
	{"large org", Config{End: testEnd, Seed: 9, Managers: 7, RepsPerManager: 8, DealsPerRepPerMonth: 12}},
	{"busy org, 400 days", Config{End: testEnd, Seed: 4, Managers: 12, RepsPerManager: 10, DealsPerRepPerMonth: 20, Days: 400}},
	{"busy org, 400 days, shuffle 0.1, duplicate 0.05", Config{End: testEnd, Seed: 4, Managers: 12, RepsPerManager: 10,
		DealsPerRepPerMonth: 20, Days: 400, ShuffleRatio: 0.1, DuplicateRatio: 0.05}},
	{"400 days", Config{End: testEnd, Days: 400}},
	{"shuffle 0.1, duplicate 0.05", Config{End: testEnd, ShuffleRatio: 0.1, DuplicateRatio: 0.05}},
	{"large org, shuffle 0.1, duplicate 0.05", Config{End: testEnd, Seed: 9, Managers: 7, RepsPerManager: 8,
		DealsPerRepPerMonth: 12, ShuffleRatio: 0.1, DuplicateRatio: 0.05}},
	{"shuffle 0.3", Config{End: testEnd, Seed: 5, ShuffleRatio: 0.3}},
	{"duplicate 0.2", Config{End: testEnd, Seed: 6, DuplicateRatio: 0.2}},
	{"shuffle 1, duplicate 1", Config{End: testEnd, Seed: 7, ShuffleRatio: 1, DuplicateRatio: 1}},
	{"one manager, one rep", Config{End: testEnd, Managers: 1, RepsPerManager: 1}},
	{"one day", Config{End: testEnd, Days: 1, ShuffleRatio: 0.5, DuplicateRatio: 0.5}},
	{"sub-second end, other source", Config{End: testEnd.Add(1234567 * time.Nanosecond), Source: "sim/other", Days: 30}},
}

// fingerprint is the number of events and the SHA-256 of their JSON encodings, one per line, in output order.
func fingerprint(t *testing.T, evs []event.Event) string {
	t.Helper()
	h := sha256.New()
	for _, e := range evs {
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		h.Write(append(b, '\n'))
	}
	return fmt.Sprintf("%d %x", len(evs), h.Sum(nil))
}

func TestOutputMatchesGolden(t *testing.T) {
	var b strings.Builder
	for _, c := range goldenConfigs {
		fmt.Fprintf(&b, "%s: %s\n", c.name, fingerprint(t, generate(t, c.cfg)))
	}
	golden.Check(t, "testdata/golden.txt", []byte(b.String()))
}
