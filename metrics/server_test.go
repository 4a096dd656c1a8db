package metrics

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/leadthrough/leadthrough/indicator"
)

func startServer(t *testing.T, g prometheus.Gatherer, health func() error) *Server {
	t.Helper()
	s := NewServer("127.0.0.1:0", g, health, quiet)
	if err := s.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return s
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s: %v", url, err)
	}
	return resp.StatusCode, string(body)
}

func TestServerServesMetricsFromTheCache(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	calls := 0
	src := SourceFunc(func(context.Context, indicator.Params) ([]indicator.Row, error) {
		calls++
		return fixture, nil
	})
	r := newTestRefresher(t, RefresherConfig{Source: src, Window: 7 * 24 * time.Hour, Now: (&clock{now: t0}).Now}, reg)
	if err := r.RefreshNow(context.Background()); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, reg, nil)

	for range 2 {
		if err := testutil.ScrapeAndCompare("http://"+s.Addr()+"/metrics", strings.NewReader(fixtureExposition)); err != nil {
			t.Error(err)
		}
	}
	if calls != 1 {
		t.Errorf("source called %d times, want 1: scrapes must be served from the cache", calls)
	}
}

func TestServerRoutes(t *testing.T) {
	stale := errors.New("metrics: indicators are stale: last successful refresh 6m0s ago")
	for _, tc := range []struct {
		name       string
		health     func() error
		path       string
		wantStatus int
		wantBody   string
	}{
		{"healthz ok", func() error { return nil }, "/healthz", http.StatusOK, "ok\n"},
		{"healthz nil health is ok", nil, "/healthz", http.StatusOK, "ok\n"},
		{"healthz stale", func() error { return stale }, "/healthz", http.StatusServiceUnavailable, stale.Error() + "\n"},
		{"index links both", nil, "/", http.StatusOK, "/metrics"},
		{"unknown path", nil, "/nope", http.StatusNotFound, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, prometheus.NewRegistry(), tc.health)
			status, body := get(t, "http://"+s.Addr()+tc.path)
			if status != tc.wantStatus {
				t.Errorf("status = %d, want %d", status, tc.wantStatus)
			}
			if tc.path == "/healthz" && body != tc.wantBody {
				t.Errorf("body = %q, want %q", body, tc.wantBody)
			}
			if !strings.Contains(body, tc.wantBody) || (tc.path == "/" && !strings.Contains(body, "/healthz")) {
				t.Errorf("body = %q, want it to contain %q", body, tc.wantBody)
			}
		})
	}
}

func TestServerHealthFollowsRefresher(t *testing.T) {
	c := &clock{now: t0}
	r := newTestRefresher(t, RefresherConfig{Source: rowsSource(fixture), Now: c.Now}, nil)
	s := startServer(t, prometheus.NewRegistry(), func() error { return r.Healthy(5 * time.Minute) })
	url := "http://" + s.Addr() + "/healthz"

	if status, body := get(t, url); status != http.StatusServiceUnavailable || !strings.Contains(body, "not refreshed") {
		t.Errorf("before refresh: %d %q, want 503 naming the missing refresh", status, body)
	}
	if err := r.RefreshNow(context.Background()); err != nil {
		t.Fatal(err)
	}
	if status, _ := get(t, url); status != http.StatusOK {
		t.Errorf("fresh: status %d, want 200", status)
	}
	c.Add(6 * time.Minute)
	if status, body := get(t, url); status != http.StatusServiceUnavailable || !strings.Contains(body, "stale") {
		t.Errorf("6m later: %d %q, want 503 stale", status, body)
	}
}

func TestServerStartReportsPortInUse(t *testing.T) {
	s := startServer(t, prometheus.NewRegistry(), nil)
	other := NewServer(s.Addr(), prometheus.NewRegistry(), nil, quiet)
	if err := other.Start(); err == nil {
		other.Shutdown(context.Background())
		t.Fatalf("second Start on %s: got nil, want address in use", s.Addr())
	}
}

func TestListenAndServeReturnsNilAfterShutdown(t *testing.T) {
	s := NewServer("127.0.0.1:0", prometheus.NewRegistry(), nil, quiet)
	done := make(chan error, 1)
	go func() { done <- s.ListenAndServe() }()
	deadline := time.Now().Add(10 * time.Second)
	for s.Addr() == "127.0.0.1:0" {
		if time.Now().After(deadline) {
			t.Fatal("ListenAndServe did not listen")
		}
		time.Sleep(time.Millisecond)
	}
	if status, _ := get(t, "http://"+s.Addr()+"/healthz"); status != http.StatusOK {
		t.Errorf("healthz status %d, want 200", status)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Errorf("ListenAndServe = %v, want nil", err)
	}
}

// TestSetIndexReplacesThePlainIndexOnlyAtTheRoot: serve's report page takes over "/" once set, also on a running
// server, while /metrics, /healthz and unknown paths are unchanged.
func TestSetIndexReplacesThePlainIndexOnlyAtTheRoot(t *testing.T) {
	s := startServer(t, prometheus.NewRegistry(), nil)
	if _, body := get(t, "http://"+s.Addr()+"/"); !strings.Contains(body, "/healthz") {
		t.Fatalf("before SetIndex, / = %q, want the plain-text index", body)
	}
	s.SetIndex(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "the report") }))
	for path, want := range map[string]struct {
		status int
		body   string
	}{
		"/":        {http.StatusOK, "the report"},
		"/healthz": {http.StatusOK, "ok\n"},
		"/nope":    {http.StatusNotFound, "404 page not found\n"},
	} {
		if status, body := get(t, "http://"+s.Addr()+path); status != want.status || body != want.body {
			t.Errorf("after SetIndex, %s = %d %q, want %d %q", path, status, body, want.status, want.body)
		}
	}
}
