package csvimport

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/leadthrough/leadthrough/event"
)

// Formats accepted by `leadthrough import --format`.
const (
	FormatMaven = "maven-crm"
	FormatCSV   = "csv"
)

// Options are shared by every format.
type Options struct {
	// Source is the CloudEvents source of every event. Together with the event id it identifies an event, so keep
	// it stable for one CRM: re-importing under another source would count everything twice.
	//
	// Default: "maven-crm" for Maven, "csv" for CSV.
	Source string

	// Currency is put on every deal amount (ISO 4217 code, e.g. "USD").
	//
	// Default: "" (no currency: amounts are in the install's reporting currency, as DESIGN.md assumes).
	Currency string

	// SkipInvalid skips invalid rows instead of failing the import: each is counted in
	// Summary.Skipped[SkipReasonInvalid] and listed in Summary.Warnings.
	//
	// Default: false (any invalid row fails the import with an *InvalidError listing every invalid row).
	SkipInvalid bool
}

// Result is what an import produced.
type Result struct {
	// Events are ordered by time, ties in the order of the files (users and reporting lines first, then deals in
	// row order). Every event passes event.Validate.
	Events  []event.Event
	Summary Summary
}

// Summary counts what an import read and produced.
type Summary struct {
	Format string
	Source string
	Rows   int // data rows of the deals file (sales_pipeline.csv for Maven), header excluded
	Events int // len(Result.Events)

	Users          int // user.upserted events
	ReportingLines int // user.manager_changed events
	Deals          int // deal.created events
	Won, Lost      int // deal.closed events by outcome
	Open           int // deals without deal.closed

	// Skipped counts the deal rows that produced no deal, by reason (SkipReason* constants or a format's own).
	Skipped map[string]int
	// Corrections counts values that were read as something else, by what was done (e.g. a product name
	// normalised to the one in products.csv).
	Corrections map[string]int
	// Warnings are rows that were imported with a caveat, or skipped with Options.SkipInvalid, in the order found.
	Warnings []RowError
}

// SkipReasonInvalid is the Summary.Skipped reason of rows skipped by Options.SkipInvalid.
const SkipReasonInvalid = "invalid row"

// SkippedTotal is the number of deal rows that produced no deal.
func (s Summary) SkippedTotal() int {
	n := 0
	for _, v := range s.Skipped {
		n += v
	}
	return n
}

// RowError is a problem with one row (or, when Column is set, one cell) of a CSV file.
type RowError struct {
	File   string // the path as given to the import
	Line   int    // 1-based line in the file; the header is line 1
	Column string // the column's name in the header; "" when the row as a whole is at fault
	Err    error
}

func (e RowError) Error() string {
	if e.Column == "" {
		return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
	}
	return fmt.Sprintf("%s:%d: column %s: %v", e.File, e.Line, e.Column, e.Err)
}

func (e RowError) Unwrap() error { return e.Err }

// InvalidError is returned when rows are invalid and Options.SkipInvalid is off. It lists every problem of every
// invalid row (a row may have several).
type InvalidError struct {
	Rows []RowError
}

// maxListed bounds how many rows InvalidError's message lists; Rows holds them all.
const maxListed = 20

func (e *InvalidError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d problem(s) in invalid rows, nothing imported:", len(e.Rows))
	for i, r := range e.Rows {
		if i == maxListed {
			fmt.Fprintf(&b, "\n  … and %d more", len(e.Rows)-maxListed)
			break
		}
		b.WriteString("\n  ")
		b.WriteString(r.Error())
	}
	return b.String()
}

// ErrMissingColumn is wrapped by the error returned when a file's header lacks a column the format needs.
var ErrMissingColumn = errors.New("missing column")

// table reads a CSV file with a header row, addressing cells by column name.
type table struct {
	path   string
	f      *os.File
	r      *csv.Reader
	header []string
	cols   map[string]int // lower-cased, trimmed header name → index
}

// openTable opens path and reads its header; the required columns must be present (matched case-insensitively,
// ignoring surrounding spaces and a UTF-8 byte-order mark).
func openTable(path string, required ...string) (*table, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	r := csv.NewReader(f)
	r.ReuseRecord = false
	header, err := r.Read()
	if err != nil {
		f.Close()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: empty file: want a header row", path)
		}
		return nil, fmt.Errorf("%s: header: %w", path, err)
	}
	t := &table{path: path, f: f, r: r, header: header, cols: map[string]int{}}
	for i, h := range header {
		if i == 0 {
			h = strings.TrimPrefix(h, "\uFEFF")
		}
		t.cols[strings.ToLower(strings.TrimSpace(h))] = i
	}
	for _, c := range required {
		if !t.has(c) {
			f.Close()
			return nil, fmt.Errorf("%s:1: %w %q (header has %s)", path, ErrMissingColumn, c, strings.Join(header, ", "))
		}
	}
	return t, nil
}

func (t *table) Close() error { return t.f.Close() }

func (t *table) has(col string) bool {
	_, ok := t.cols[strings.ToLower(strings.TrimSpace(col))]
	return ok
}

// row is one data record.
type row struct {
	t     *table
	rec   []string
	lines []int // line where each cell starts (a quoted cell may span lines)
}

// next returns the next row, io.EOF at the end, or a RowError for a record the CSV reader rejected (the reader
// resumes after it, so the caller may go on).
func (t *table) next() (row, error) {
	rec, err := t.r.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return row{}, io.EOF
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			line := pe.StartLine
			if line == 0 {
				line = pe.Line
			}
			return row{}, RowError{File: t.path, Line: line, Err: pe.Err}
		}
		return row{}, fmt.Errorf("read %s: %w", t.path, err)
	}
	lines := make([]int, len(rec))
	for i := range rec {
		lines[i], _ = t.r.FieldPos(i)
	}
	return row{t: t, rec: rec, lines: lines}, nil
}

// get returns the trimmed cell of col, "" if the table has no such column.
func (r row) get(col string) string {
	i, ok := r.t.cols[strings.ToLower(strings.TrimSpace(col))]
	if !ok || i >= len(r.rec) {
		return ""
	}
	return strings.TrimSpace(r.rec[i])
}

// fail returns a RowError for col ("" for the whole row), at the line where the cell starts.
func (r row) fail(col, format string, args ...any) RowError {
	line, name := r.lines[0], col
	if i, ok := r.t.cols[strings.ToLower(strings.TrimSpace(col))]; ok && col != "" {
		name = strings.TrimPrefix(strings.TrimSpace(r.t.header[i]), "\uFEFF")
		if i < len(r.lines) {
			line = r.lines[i]
		}
	}
	return RowError{File: r.t.path, Line: line, Column: name, Err: fmt.Errorf(format, args...)}
}

// problems collects the invalid rows and warnings of one import and applies Options.SkipInvalid.
type problems struct {
	opt     Options
	invalid []RowError
	sum     *Summary
}

// reject records an invalid row with its problems: warnings and one skip with SkipInvalid, else errors for the end.
func (p *problems) reject(errs ...RowError) {
	if len(errs) == 0 {
		return
	}
	if p.opt.SkipInvalid {
		p.sum.Warnings = append(p.sum.Warnings, errs...)
		p.skip(SkipReasonInvalid)
		return
	}
	p.invalid = append(p.invalid, errs...)
}

func (p *problems) warn(e RowError) { p.sum.Warnings = append(p.sum.Warnings, e) }

func (p *problems) skip(reason string) {
	if p.sum.Skipped == nil {
		p.sum.Skipped = map[string]int{}
	}
	p.sum.Skipped[reason]++
}

func (p *problems) correct(what string) {
	if p.sum.Corrections == nil {
		p.sum.Corrections = map[string]int{}
	}
	p.sum.Corrections[what]++
}

// err is the import's error: nil, or an *InvalidError naming every invalid row.
func (p *problems) err() error {
	if len(p.invalid) == 0 {
		return nil
	}
	return &InvalidError{Rows: p.invalid}
}

// builder accumulates events with deterministic ids: "<entity id>/<type>". Each entity gets at most one event of
// each type per import, so ids are unique; and since event types contain no "/", ids of different types cannot
// collide whatever the entity ids contain.
type builder struct {
	source string
	evs    []event.Event
	sum    *Summary
}

func (b *builder) add(typ, entity string, t time.Time, d event.Data) {
	b.evs = append(b.evs, event.Event{Source: b.source, ID: entity + "/" + typ, Type: typ, Time: t.UTC(), Data: d})
	switch typ {
	case event.UserUpserted:
		b.sum.Users++
	case event.UserManagerChanged:
		b.sum.ReportingLines++
	case event.DealCreated:
		b.sum.Deals++
	case event.DealClosed:
		if d.Outcome == event.OutcomeWon {
			b.sum.Won++
		} else {
			b.sum.Lost++
		}
	}
}

// result sorts the events by time (stable, so ties keep file order), validates them and fills the summary.
func (b *builder) result() (*Result, error) {
	slices.SortStableFunc(b.evs, func(x, y event.Event) int { return x.Time.Compare(y.Time) })
	for _, e := range b.evs {
		if err := event.Validate(e); err != nil {
			// The readers check every value first, so this is a bug in this package, not bad input.
			return nil, fmt.Errorf("csvimport produced an invalid event %s: %w", e.ID, err)
		}
	}
	b.sum.Open = b.sum.Deals - b.sum.Won - b.sum.Lost
	b.sum.Events = len(b.evs)
	return &Result{Events: b.evs, Summary: *b.sum}, nil
}

// Slug makes a readable, stable id part from a name: lower case, letters and digits kept, every other run of
// characters turned into one "-". "Mei-Mei Johns" → "mei-mei-johns", "Zane  Levy" → "zane-levy".
func Slug(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			b.WriteRune(r)
			dash = false
			continue
		}
		dash = true
	}
	return b.String()
}

// Times of day given to date-only values, so that a deal created and closed on the same day is created first.
const (
	createdHour = 9  // deal.created on a date: 09:00 UTC
	closedHour  = 17 // deal.closed on a date: 17:00 UTC
)

const dateLayout = "2006-01-02"

// parseDate parses YYYY-MM-DD and returns that day at hour:00 UTC.
func parseDate(s string, hour int) (time.Time, error) {
	d, err := time.Parse(dateLayout, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("not a date: %q (want YYYY-MM-DD)", s)
	}
	return d.Add(time.Duration(hour) * time.Hour), nil
}

// parseTime accepts RFC 3339 (with or without fraction), "YYYY-MM-DD hh:mm[:ss]" and "YYYY-MM-DDThh:mm[:ss]"
// (UTC), and a bare date YYYY-MM-DD (then at hour:00 UTC).
func parseTime(s string, hour int) (time.Time, error) {
	if len(s) == len(dateLayout) {
		return parseDate(s, hour)
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	for _, layout := range []string{"2006-01-02 15:04:05", "2006-01-02T15:04:05", "2006-01-02 15:04", "2006-01-02T15:04"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("not a time: %q (want RFC 3339, YYYY-MM-DD hh:mm:ss in UTC, or YYYY-MM-DD)", s)
}

// parseAmount parses a non-negative decimal number such as 1054 or 1054.50.
func parseAmount(s string) (float64, error) {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("not a number: %q", s)
	}
	if v < 0 {
		return 0, fmt.Errorf("negative amount %s: amounts must be >= 0", s)
	}
	return v, nil
}

// dayBefore is 00:00 UTC of the day before t: when reporting lines take effect, so that they precede every deal.
func dayBefore(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d-1, 0, 0, 0, 0, time.UTC)
}

// fallbackEffective is when reporting lines take effect in an export without any dated deal.
var fallbackEffective = time.Date(1970, time.January, 1, 0, 0, 0, 0, time.UTC)
