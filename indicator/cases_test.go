package indicator

// The hand-computed cases of reference_test.go check the reference model; recorded in testdata/hand_cases.json, the
// same cases also check the SQL (store/handcases_test.go runs each one on every ClickHouse engine). TestMain keeps
// that file equal to the cases: after a run of every test that passed, it fails when the file differs from what
// runCases recorded, and `go test ./indicator -update-cases` rewrites it.

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leadthrough/leadthrough/event"
)

const handCasesFile = "testdata/hand_cases.json"

var updateCases = flag.Bool("update-cases", false, "rewrite "+handCasesFile+" from the hand-computed cases")

// handCase is one hand-computed case as stored in testdata/hand_cases.json. store/handcases_test.go decodes the same
// shape. Times and durations are spelled out: as_of in RFC 3339 (UTC, to the nanosecond it was given, so the SQL
// also sees an as_of below the millisecond), the window in milliseconds, the coaching kinds after defaults.
type handCase struct {
	Name          string        `json:"name"` // the full subtest name, e.g. "TestWindowBoundaries/custom_window"
	AsOf          string        `json:"as_of"`
	WindowMS      int64         `json:"window_ms"`
	PrevWindowMS  int64         `json:"prev_window_ms,omitempty"` // only when it differs from window_ms
	CoachingKinds []string      `json:"coaching_kinds"`
	Events        []event.Event `json:"events"`
	Want          []Row         `json:"want"`
}

var recorded = struct {
	sync.Mutex
	cases map[string]handCase
}{cases: map[string]handCase{}}

// recordCase keeps one case run by runCases; name is the full subtest name.
func recordCase(name string, p Params, events []event.Event, want []Row) {
	d := p.WithDefaults()
	evs := make([]event.Event, len(events))
	for i, e := range events {
		e.Time = e.Time.UTC()
		evs[i] = e
	}
	c := handCase{
		Name:          name,
		AsOf:          p.AsOf.UTC().Format(time.RFC3339Nano),
		WindowMS:      d.Window.Milliseconds(),
		CoachingKinds: slices.Clone(d.CoachingKinds),
		Events:        evs,
		Want:          append([]Row{}, want...),
	}
	if d.PrevWindow != d.Window {
		c.PrevWindowMS = d.PrevWindow.Milliseconds()
	}
	recorded.Lock()
	defer recorded.Unlock()
	recorded.cases[name] = c
}

// encodeCases is the deterministic encoding of the recorded cases: sorted by name, indented, ending in a newline.
func encodeCases() ([]byte, error) {
	recorded.Lock()
	defer recorded.Unlock()
	cases := make([]handCase, 0, len(recorded.cases))
	for _, c := range recorded.cases {
		cases = append(cases, c)
	}
	slices.SortFunc(cases, func(a, b handCase) int { return strings.Compare(a.Name, b.Name) })
	b, err := json.MarshalIndent(cases, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// ranEveryTest reports whether this run could see every case: no -run or -skip filter, and not only listing.
func ranEveryTest() bool {
	for _, name := range []string{"test.run", "test.skip", "test.list"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" {
			return false
		}
	}
	return true
}

func TestMain(m *testing.M) {
	code := m.Run()
	if code != 0 {
		os.Exit(code)
	}
	if !ranEveryTest() {
		if *updateCases {
			fmt.Fprintf(os.Stderr, "-update-cases needs every test to run: drop -run/-skip/-list\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	got, err := encodeCases()
	if err != nil {
		fmt.Fprintf(os.Stderr, "encode the hand-computed cases: %v\n", err)
		os.Exit(1)
	}
	if *updateCases {
		if err := os.MkdirAll(filepath.Dir(handCasesFile), 0o755); err == nil {
			err = os.WriteFile(handCasesFile, got, 0o644)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "write %s: %v\n", handCasesFile, err)
			os.Exit(1)
		}
		fmt.Fprintf(os.Stderr, "wrote %d hand-computed cases to indicator/%s\n", len(recorded.cases), handCasesFile)
		os.Exit(0)
	}
	committed, err := os.ReadFile(handCasesFile)
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: read indicator/%s: %v\nrun go test ./indicator -update-cases\n", handCasesFile, err)
		os.Exit(1)
	}
	if !bytes.Equal(got, committed) {
		fmt.Fprintf(os.Stderr, "FAIL: indicator/%s differs from the hand-computed cases of the tests (%s), so the "+
			"SQL would not be checked against them (store/handcases_test.go)\nrun go test ./indicator -update-cases\n",
			handCasesFile, describeDifference(committed))
		os.Exit(1)
	}
	os.Exit(0)
}

// describeDifference names the cases that were added, removed or changed relative to the committed file.
func describeDifference(committed []byte) string {
	var old []handCase
	if err := json.Unmarshal(committed, &old); err != nil {
		return fmt.Sprintf("the file does not decode: %v", err)
	}
	recorded.Lock()
	defer recorded.Unlock()
	var added, removed, changed []string
	seen := map[string]bool{}
	for _, o := range old {
		seen[o.Name] = true
		c, ok := recorded.cases[o.Name]
		if !ok {
			removed = append(removed, o.Name)
			continue
		}
		a, _ := json.Marshal(c)
		b, _ := json.Marshal(o)
		if !bytes.Equal(a, b) {
			changed = append(changed, o.Name)
		}
	}
	for name := range recorded.cases {
		if !seen[name] {
			added = append(added, name)
		}
	}
	slices.Sort(added)
	var parts []string
	for _, l := range []struct {
		what  string
		names []string
	}{{"new", added}, {"gone", removed}, {"changed", changed}} {
		if len(l.names) > 0 {
			parts = append(parts, fmt.Sprintf("%s: %s", l.what, strings.Join(l.names, ", ")))
		}
	}
	if len(parts) == 0 {
		return "same cases, different encoding"
	}
	return strings.Join(parts, "; ")
}
