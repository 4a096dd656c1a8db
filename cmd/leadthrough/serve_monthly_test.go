package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/leadthrough/leadthrough/indicator"
	"github.com/leadthrough/leadthrough/internal/scenario"
	"github.com/leadthrough/leadthrough/internal/testenv"
	"github.com/leadthrough/leadthrough/store"
)

// TestServeKeepsTheMonthlyTableCurrent: a serve started on a history of the last months backfills
// monthly_indicators with the last 12 calendar months at once, says so on /metrics, and what it saved reads back as
// `leadthrough indicators --period month` computes it.
func TestServeKeepsTheMonthlyTableCurrent(t *testing.T) {
	addr := testenv.ClickHouse(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cfg := store.Config{Addr: addr, Database: fmt.Sprintf("lt_serve_monthly_%d", time.Now().UnixNano())}
	if err := store.CreateDatabase(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	s, err := store.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = s.DropDatabase(context.Background(), cfg.Database)
		s.Close()
	})
	if _, err := s.Migrate(ctx, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	var evs []store.Stored
	for _, e := range scenario.Random(42, now) { // about 100 days up to now
		evs = append(evs, store.Stored{Event: e, Topic: "test"})
	}
	if err := s.InsertEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}

	listen := freeAddr(t)
	serveCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- runServe(serveCtx, []string{"--clickhouse-addr", addr, "--clickhouse-database", cfg.Database,
			"--listen", listen, "--monthly-interval", "1h", "--log-level", "error"}, io.Discard, io.Discard)
	}()
	lastSuccess := regexp.MustCompile(`(?m)^leadthrough_monthly_indicators_last_success_timestamp_seconds (\S+)$`)
	for {
		if m := lastSuccess.FindStringSubmatch(scrape(t, listen)); m != nil && m[1] != "0" {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("serve stopped: %v", err)
		case <-ctx.Done():
			t.Fatal("serve did not backfill monthly_indicators within 3 minutes")
		case <-time.After(200 * time.Millisecond):
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("serve = %v, want nil when stopped", err)
	}

	from := indicator.MonthStart(now).AddDate(0, -11, 0)
	saved, err := s.SavedMonthly(ctx, from, now)
	if err != nil {
		t.Fatal(err)
	}
	want, err := s.MonthlyIndicators(ctx, from, now, nil)
	if err != nil {
		t.Fatal(err)
	}
	months := map[time.Time]bool{}
	for _, r := range want {
		months[r.PeriodStart] = true
	}
	if len(months) < 3 {
		t.Fatalf("the history has managers in %d months, want at least 3", len(months))
	}
	got, _ := json.Marshal(saved)
	exp, _ := json.Marshal(want)
	if string(got) != string(exp) {
		t.Fatalf("monthly_indicators after serve's backfill:\n%s\nwant (--period month):\n%s", got, exp)
	}
}

func TestServeRejectsANegativeMonthlyInterval(t *testing.T) {
	err := runServe(t.Context(), []string{"--monthly-interval", "-1m"}, io.Discard, io.Discard)
	if !errors.Is(err, errUsage) {
		t.Fatalf("runServe --monthly-interval -1m = %v, want a usage error", err)
	}
}

func scrape(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
