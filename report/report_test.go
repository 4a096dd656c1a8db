package report

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leadthrough/leadthrough/indicator"
	"github.com/leadthrough/leadthrough/store"
)

var (
	quiet = slog.New(slog.DiscardHandler)
	now   = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
)

func f(v float64) *float64 { return &v }

// fixture is the current window of three managers: a coach, a super-salesperson and a head of sales without a team.
var fixture = []indicator.Row{
	{ManagerID: "U-001", ManagerName: "Omar Rossi"},
	{ManagerID: "U-002", ManagerName: "Ingrid Weber", WonDeals: 20, ClosedDeals: 35, ManagerClosedShare: f(0),
		ManagerClosedRevenueShare: f(0), TakeoverRate: f(0), CoachingCoverage: f(1), RepsCoached: 6,
		RepGrowth: f(1.626), TeamReps: 6},
	{ManagerID: "U-003", ManagerName: "Jonas Fischer", WonDeals: 11, ClosedDeals: 23, ManagerClosedShare: f(1),
		ManagerClosedRevenueShare: f(1), TakeoverRate: f(0.739), Takeovers: 13, CoachingCoverage: f(0.25),
		RepsCoached: 1, TeamReps: 4},
}

// source is a Source with canned answers that counts its calls; a non-nil fail* makes that part fail.
type source struct {
	mu                               sync.Mutex
	calls                            int
	failMonthly, failWatch, failDeal error
	noMonths                         bool // MonthlyIndicators finds no manager
	watch                            []indicator.WatchRow
	deals                            []store.Attribution
	attributed                       indicator.Params
}

func (s *source) call() { s.mu.Lock(); s.calls++; s.mu.Unlock() }

func (s *source) MonthlyIndicators(_ context.Context, from, to time.Time, _ []string) ([]indicator.PeriodRow, error) {
	s.call()
	if s.failMonthly != nil || s.noMonths {
		return nil, s.failMonthly
	}
	var out []indicator.PeriodRow
	for i, m := range indicator.Months(from, to) {
		p := indicator.MonthParams(m, nil)
		for _, r := range fixture {
			if r.ManagerID == "U-003" && i < 9 {
				continue // promoted three months ago: no row before
			}
			r.TakeoverRate = f(float64(i) / 12)
			if i == 10 {
				r.TakeoverRate = nil // a month without a closed deal
			}
			out = append(out, indicator.PeriodRow{PeriodStart: p.Start(), PeriodEnd: p.AsOf, Row: r})
		}
	}
	return out, nil
}

func (s *source) Promotions(context.Context, time.Time) ([]indicator.Promotion, error) {
	s.call()
	rank := int64(1)
	return []indicator.Promotion{{ManagerID: "U-003", ManagerName: "Jonas Fischer",
		PromotedAt: now.Add(-75 * 24 * time.Hour), MonthsSincePromotion: 2, RepWonDeals: 14, RepWonAmount: 123400,
		RepRank: &rank, RepsRanked: 15}}, nil
}

func (s *source) Watch(context.Context, indicator.Params, int) ([]indicator.WatchRow, error) {
	s.call()
	return s.watch, s.failWatch
}

func (s *source) Attribute(_ context.Context, p indicator.Params) (store.Run, error) {
	s.call()
	s.mu.Lock()
	s.attributed = p
	s.mu.Unlock()
	return store.Run{ID: 1, Params: p, Deals: uint64(len(s.deals))}, s.failDeal
}

func (s *source) RunDeals(context.Context, store.Run) ([]store.Attribution, error) {
	s.call()
	return s.deals, nil
}

func (s *source) UserNames(context.Context, time.Time) (map[string]string, error) {
	s.call()
	return map[string]string{"U-003": "Jonas Fischer", "U-010": "Lena Novak <rep>"}, nil
}

// promotedWatch is U-003's watch: three tenure periods, the last under way.
func promotedWatch() []indicator.WatchRow {
	promoted := now.Add(-75 * 24 * time.Hour)
	var rows []indicator.WatchRow
	for k := int64(1); k <= 3; k++ {
		start, end := promoted.Add(time.Duration(k-1)*indicator.TenurePeriod), promoted.Add(time.Duration(k)*indicator.TenurePeriod)
		if end.After(now) {
			end = now
		}
		rows = append(rows, indicator.WatchRow{ManagerID: "U-003", ManagerName: "Jonas Fischer", PromotedAt: promoted,
			MonthsSincePromotion: 2, Period: k, PeriodStart: start, PeriodEnd: end, TakeoverRate: f(0.5 + 0.1*float64(k)),
			ManagerClosedShare: f(0.9), CoachingCoverage: f(0.25), ClosedDeals: 10, WonDeals: 6, Takeovers: 5,
			TeamReps: 4, MedianTakeoverRate: f(0.143), MedianManagerClosedShare: f(0.273), MedianCoachingCoverage: f(1)})
	}
	return rows
}

func takenOverDeals() []store.Attribution {
	at := func(d int) time.Time { return now.AddDate(0, 0, -d) }
	return []store.Attribution{
		{DealID: "D-00017", CloseTime: at(20), Won: true, Amount: 12300, CloserID: "U-003", RepID: "U-010",
			ManagerID: "U-003", TakenOver: true, TakenOverAt: at(25)},
		{DealID: "D-00042", CloseTime: at(3), Won: false, Amount: 4800, CloserID: "U-003", RepID: "U-011",
			ManagerID: "U-003", TakenOver: true, TakenOverAt: at(9)},
		{DealID: "D-00050", CloseTime: at(2), Won: true, Amount: 900, CloserID: "U-012", RepID: "U-012",
			ManagerID: "U-002"}, // closed by its rep: not taken over
	}
}

func newReport(t *testing.T, src Source, current func() ([]indicator.Row, time.Time), health func() error) *Report {
	t.Helper()
	r, err := New(Config{Source: src, Current: current, Health: health, CurrentInterval: time.Minute,
		Now: func() time.Time { return now }, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func currentFixture() ([]indicator.Row, time.Time) { return fixture, now }

// render serves the page once and returns its status, headers and body.
func render(t *testing.T, r *Report) (int, http.Header, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	body, _ := io.ReadAll(rec.Body)
	return rec.Code, rec.Header(), string(body)
}

// sectionOfPage returns the HTML of the page's section with the given id.
func sectionOfPage(t *testing.T, page, id string) string {
	t.Helper()
	start := strings.Index(page, `<section id="`+id+`"`)
	if start < 0 {
		t.Fatalf("no section %q in the page:\n%s", id, page)
	}
	end := strings.Index(page[start:], "</section>")
	return page[start : start+end]
}

func wantAll(t *testing.T, where, html string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(html, w) {
			t.Errorf("%s does not contain %q", where, w)
		}
	}
}

func TestPageShowsEveryPartFromMemory(t *testing.T) {
	src := &source{watch: promotedWatch(), deals: takenOverDeals()}
	r := newReport(t, src, currentFixture, nil)
	if err := r.RefreshNow(context.Background()); err != nil {
		t.Fatal(err)
	}
	if want := (indicator.Params{AsOf: now, Window: indicator.DefaultWindow}).WithDefaults(); !src.attributed.AsOf.Equal(want.AsOf) ||
		src.attributed.Window != want.Window {
		t.Errorf("attributed the window %+v, want the current rows' window %+v", src.attributed, want)
	}
	calls := src.calls
	code, header, page := render(t, r)
	render(t, r)
	if src.calls != calls {
		t.Errorf("serving the page called the source %d times: it must be served from memory", src.calls-calls)
	}
	if code != http.StatusOK || header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("status %d, content type %q", code, header.Get("Content-Type"))
	}
	if csp := header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("Content-Security-Policy = %q, want one that loads nothing", csp)
	}
	wantAll(t, "the page", page, `data-state="complete"`, "last 30 days: (2026-10-31 12:00, 2026-11-30 12:00] UTC",
		"2026-11-30 12:00:00 UTC (every 1 minute)", "(every 5 minutes)")

	table := sectionOfPage(t, page, "indicators")
	wantAll(t, "the indicator table", table, `<th scope="col" class="left">Manager</th>`,
		`<th scope="row">Jonas Fischer<span class="id">U-003</span></th>`, "<td>73.9%</td>", "<td>&#43;162.6%</td>",
		"<td>100.0%</td>", `<td class="null">–</td>`, "<caption>")
	if n := strings.Count(table, `<th scope="row">`); n != len(fixture) {
		t.Errorf("the indicator table has %d managers, want %d", n, len(fixture))
	}

	trends := sectionOfPage(t, page, "trends")
	if n, want := strings.Count(trends, `<svg class="spark"`), len(fixture)*len(columns); n != want {
		t.Errorf("%d sparklines, want %d (one per manager and indicator)", n, want)
	}
	wantAll(t, "the trends", trends, "Dec 2025 – Nov 2026", `aria-label="Takeover rate by month. Dec 2025: –, `,
		"Sep 2026: 75.0%, Oct 2026: –, Nov 2026: 91.7%")

	watch := sectionOfPage(t, page, "watch")
	wantAll(t, "the watch", watch, "Jonas Fischer", "Promoted 2026-09-16 12:00 UTC, 2 months ago (in 30-day months)",
		"14 self-closed won deals as a rep, 123,400 won, in the 180 days before promotion: rank 1 of 15 reps",
		`<td class="worse">60.0%<span class="note">above the median</span><span class="median">median 14.3%</span></td>`,
		`<td class="worse">25.0%<span class="note">below the median</span><span class="median">median 100.0%</span></td>`,
		"(under way)")
	if n := strings.Count(watch, `<th scope="row">`); n != 3 {
		t.Errorf("the watch has %d tenure periods, want 3", n)
	}

	deals := sectionOfPage(t, page, "deals")
	wantAll(t, "the deals", deals, "D-00017", "D-00042", "12,300", "Lena Novak &lt;rep&gt;", "U-011",
		"2026-11-05 12:00 UTC", "Took no deal over in this window.")
	if strings.Contains(deals, "D-00050") {
		t.Error("the deals list D-00050, which its rep closed without a takeover")
	}
	if strings.Index(deals, "D-00042") > strings.Index(deals, "D-00017") {
		t.Error("deals are not listed latest closed first")
	}
}

// TestPageLoadsNothingAndNeedsNoScript: no script, no external address in any src or href, no style sheet or
// font to fetch; the tables are in the server's HTML.
func TestPageLoadsNothingAndNeedsNoScript(t *testing.T) {
	r := newReport(t, &source{watch: promotedWatch(), deals: takenOverDeals()}, currentFixture, nil)
	if err := r.RefreshNow(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, _, page := render(t, r)
	if strings.Contains(strings.ToLower(page), "<script") {
		t.Error("the page has a script")
	}
	for _, m := range regexp.MustCompile(`(?i)\b(?:src|href|xlink:href|action)\s*=\s*["']?([^"'\s>]*)`).FindAllStringSubmatch(page, -1) {
		if u := m[1]; !strings.HasPrefix(u, "#") && !strings.HasPrefix(u, "/") || strings.HasPrefix(u, "//") {
			t.Errorf("the page refers to %q: only fragments and paths of this server are allowed", u)
		}
	}
	if regexp.MustCompile(`(?i)@import|url\(|<link`).MatchString(page) {
		t.Error("the page's CSS loads something")
	}
}

func TestPageBeforeTheFirstRefreshSaysWhatItWaitsFor(t *testing.T) {
	waiting := errors.New("metrics: indicators not refreshed successfully yet: compute indicators: connection refused")
	r := newReport(t, &source{}, func() ([]indicator.Row, time.Time) { return nil, time.Time{} },
		func() error { return waiting })
	code, _, page := render(t, r)
	if code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	wantAll(t, "the page", page, `data-state="partial"`, "Indicators refreshed</dt><dd>not yet",
		"The indicators are not available yet: "+waiting.Error(), "The indicators are being computed",
		"The monthly trends are being computed", "The new-manager watch is being computed",
		"The deals of the window are being attributed")
}

func TestEmptyStatesAreSaid(t *testing.T) {
	r := newReport(t, &source{noMonths: true}, func() ([]indicator.Row, time.Time) { return nil, now }, nil)
	if err := r.RefreshNow(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, _, page := render(t, r)
	wantAll(t, "the page", page, `data-state="complete"`, "No manager in this window",
		"No manager in the last 12 months.", "No promoted manager in the last 12 months",
		"No deal closed in this window was taken over by a manager.")
}

// TestFailedPartShowsTheErrorAndKeepsItsValues: a part whose refresh fails keeps what it showed, says why and
// since when, and the other parts refresh as usual.
func TestFailedPartShowsTheErrorAndKeepsItsValues(t *testing.T) {
	src := &source{watch: promotedWatch(), deals: takenOverDeals()}
	r := newReport(t, src, currentFixture, nil)
	if err := r.RefreshNow(context.Background()); err != nil {
		t.Fatal(err)
	}
	src.failMonthly = errors.New("month 2026-11: query managers: code: 241, message: Memory limit exceeded")
	src.failWatch = errors.New("cannot reach ClickHouse at 127.0.0.1:9000: connection refused")
	src.watch = nil
	err := r.RefreshNow(context.Background())
	if !errors.Is(err, src.failMonthly) || !errors.Is(err, src.failWatch) {
		t.Fatalf("RefreshNow = %v, want both failures", err)
	}
	code, _, page := render(t, r)
	if code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	wantAll(t, "the trends", sectionOfPage(t, page, "trends"), `<p class="error" role="alert">Could not refresh the monthly trends`,
		"Memory limit exceeded", "Showing the values computed at 2026-11-30 12:00:00 UTC", `<svg class="spark"`)
	wantAll(t, "the watch", sectionOfPage(t, page, "watch"), "Could not refresh the new-manager watch", "connection refused",
		"Jonas Fischer")
	if strings.Contains(sectionOfPage(t, page, "deals"), `class="error"`) {
		t.Error("the deals show an error, but their refresh succeeded")
	}
}

func TestFailedFirstRefreshShowsTheErrorInsteadOfValues(t *testing.T) {
	src := &source{failDeal: errors.New("attribute 12 deals into deal_attribution: code: 60, message: Table doesn't exist")}
	r := newReport(t, src, currentFixture, nil)
	if err := r.RefreshNow(context.Background()); !errors.Is(err, src.failDeal) {
		t.Fatalf("RefreshNow = %v, want the attribution's failure", err)
	}
	_, _, page := render(t, r)
	deals := sectionOfPage(t, page, "deals")
	wantAll(t, "the deals", deals, "Could not refresh the taken-over deals", "Table doesn&#39;t exist")
	if strings.Contains(deals, "Showing the values") || strings.Contains(deals, "being attributed") {
		t.Errorf("the deals promise values they do not have:\n%s", deals)
	}
}

func TestRunRefreshesOnItsIntervalAndStopsWithItsContext(t *testing.T) {
	src := &source{}
	r, err := New(Config{Source: src, Current: currentFixture, Interval: 10 * time.Millisecond, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		src.mu.Lock()
		n := src.calls
		src.mu.Unlock()
		if n >= 3*5 { // three refreshes of five calls (no promotion to look up)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d source calls after 10s", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v, want nil once its context is done", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
	}
}

func TestNewRequiresSourceAndCurrent(t *testing.T) {
	if _, err := New(Config{Current: currentFixture}); !errors.Is(err, ErrNoSource) {
		t.Errorf("without Source: %v, want ErrNoSource", err)
	}
	if _, err := New(Config{Source: &source{}}); !errors.Is(err, ErrNoCurrent) {
		t.Errorf("without Current: %v, want ErrNoCurrent", err)
	}
}
