package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/leadthrough/leadthrough/event"
	"github.com/leadthrough/leadthrough/indicator"
	"github.com/leadthrough/leadthrough/internal/pipelinetest"
	"github.com/leadthrough/leadthrough/internal/testenv"
	"github.com/leadthrough/leadthrough/simulate"
	"github.com/leadthrough/leadthrough/store"
)

// takeoverAlerts are the alerts about managers who take deals over, the ones this test checks.
var takeoverAlerts = []string{"LeadthroughManagerHighTakeoverRate", "LeadthroughNewManagerHighTakeoverRate"}

// TestTakeoverAlertsOnTheDemoThroughARealPrometheus loads the demo's organisation (simulate's default org, ending at
// the current hour as the demo's does) into a fresh ClickHouse database, starts a real `leadthrough serve` on it and
// the Debian `prometheus` server scraping it every second with deploy/prometheus/alerts.yml, its `for:` durations
// shortened in a copy. Prometheus' alerts API must then show the takeover alerts for the player-coach and the promoted
// manager, pending or firing, and for no one else.
func TestTakeoverAlertsOnTheDemoThroughARealPrometheus(t *testing.T) {
	promBin := testenv.Prometheus(t)
	start := time.Now()
	env := pipelinetest.New(t, "alerts")
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	cfg := simulate.Config{End: time.Now().UTC().Truncate(time.Hour)}
	evs, err := simulate.Generate(cfg)
	if err != nil {
		t.Fatal(err)
	}
	stored := make([]store.Stored, len(evs))
	for i, e := range evs {
		stored[i] = store.Stored{Event: e}
	}
	if err := env.Store.InsertEvents(ctx, stored); err != nil {
		t.Fatal(err)
	}
	want := expectedTakeoverAlerts(t, cfg, evs)
	t.Logf("%d simulated events stored in %s", len(evs), time.Since(start).Round(time.Millisecond))

	serveAddr := freeAddr(t)
	env.Start(ctx, t, func(ctx context.Context) error {
		return runServe(ctx, []string{"--clickhouse-addr", env.ClickHouse, "--clickhouse-database", env.Database,
			"--listen", serveAddr, "--refresh-interval", "1m", "--log-level", "warn"}, io.Discard, io.Discard)
	})
	waitHealthz(t, serveAddr, http.StatusOK, "ok")
	t.Logf("serve ready after %s", time.Since(start).Round(time.Millisecond))

	promAddr := startPrometheus(t, promBin, serveAddr)
	t.Logf("prometheus ready after %s", time.Since(start).Round(time.Millisecond))

	// Poll until every expected alert is there, then a few evaluations more: an unexpected one fails at once.
	var settledAt time.Time
	var got map[string]promAlert
	for deadline := time.Now().Add(45 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		got = takeoverAlertsIn(t, promAddr)
		for key, a := range got {
			if _, ok := want[key]; !ok {
				t.Fatalf("unexpected %s alert %s for %s (%s): only %v were expected", a.State, a.Labels["alertname"],
					a.Labels["manager_id"], a.Labels["manager_name"], slices.Sorted(maps.Keys(want)))
			}
		}
		if len(got) == len(want) && settledAt.IsZero() {
			settledAt = time.Now()
			t.Logf("every expected takeover alert is there after %s", time.Since(start).Round(time.Millisecond))
		}
		if !settledAt.IsZero() && time.Since(settledAt) > 4*time.Second {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 45s, takeover alerts %v, want %v", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
		}
	}
	checkMonthsSincePromotion(t, evs, promAddr)
	for key, a := range got {
		if name := want[key]; a.Labels["manager_name"] != name {
			t.Errorf("%s has manager_name %q, want %q", key, a.Labels["manager_name"], name)
		}
		t.Logf("%s: %s (%s)", key, a.State, a.Annotations["description"])
	}
	t.Logf("done in %s", time.Since(start).Round(time.Millisecond))
}

// expectedTakeoverAlerts are the takeover alerts the demo's org must raise, "alertname/manager_id" → manager_name:
// the general one for each player-coach and each promoted manager, the new-manager one for each promoted manager.
// Who is who comes from simulate's Styles(): the promoted manager is the one of style Promoted (the demo's top rep,
// promoted mid-period, who takes deals over); their new-manager alert needs leadthrough to find them promoted in the
// data, from the events alone.
func expectedTakeoverAlerts(t *testing.T, cfg simulate.Config, evs []event.Event) map[string]string {
	t.Helper()
	names := map[string]string{}
	for _, e := range evs {
		if e.Type == event.UserUpserted && e.Data.Name != "" {
			names[e.Data.UserID] = e.Data.Name
		}
	}
	want := map[string]string{}
	var playerCoaches, promoted []string
	for id, style := range cfg.Styles() {
		switch style {
		case simulate.PlayerCoach:
			playerCoaches = append(playerCoaches, id)
			want[takeoverAlerts[0]+"/"+id] = names[id]
		case simulate.Promoted:
			promoted = append(promoted, id)
			want[takeoverAlerts[0]+"/"+id] = names[id]
			want[takeoverAlerts[1]+"/"+id] = names[id]
		case simulate.Coach, simulate.Balanced:
		default:
			t.Fatalf("manager %s has style %q, which this test does not know: say which alerts it should raise", id, style)
		}
	}
	if len(playerCoaches) == 0 {
		t.Fatalf("simulate's default org has no player-coach: %v", cfg.Styles())
	}
	slices.Sort(playerCoaches)
	slices.Sort(promoted)
	if len(promoted) == 0 {
		t.Logf("checked: the player-coach %v; simulate.Config.Styles() has no Promoted style (%v), so no "+
			"manager may have LeadthroughNewManagerHighTakeoverRate", playerCoaches, cfg.Styles())
	} else {
		t.Logf("checked: the player-coach %v and the promoted manager %v", playerCoaches, promoted)
	}
	return want
}

// startPrometheus runs the Prometheus server on a copy of deploy/prometheus/alerts.yml whose `for:` durations are
// 2s, scraping serveAddr and evaluating every second, until the test ends; it returns its address once ready.
func startPrometheus(t *testing.T, bin, serveAddr string) string {
	t.Helper()
	dir := t.TempDir()
	rules, err := os.ReadFile(filepath.Join("..", "..", "deploy", "prometheus", "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	forLine := regexp.MustCompile(`(?m)^(\s+for:\s*)\S+\s*$`)
	if n := len(forLine.FindAll(rules, -1)); n < len(takeoverAlerts) {
		t.Fatalf("found %d `for:` lines in alerts.yml: the test no longer understands it", n)
	}
	rules = forLine.ReplaceAll(rules, []byte("${1}2s"))
	config := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - alerts.yml
scrape_configs:
  - job_name: leadthrough
    static_configs:
      - targets: [%q]
`, serveAddr)
	for name, b := range map[string][]byte{"alerts.yml": rules, "prometheus.yml": []byte(config)} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	addr := freeAddr(t)
	var out syncBuffer
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus output:\n%s", out.String())
		}
	})
	client := &http.Client{Timeout: time.Second}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if resp, err := client.Get("http://" + addr + "/-/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return addr
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus at %s not ready after 20s:\n%s", addr, out.String())
		}
	}
}

// promAlert is one alert of Prometheus' /api/v1/alerts.
type promAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	State       string            `json:"state"`
}

// takeoverAlertsIn returns Prometheus' pending and firing takeover alerts by "alertname/manager_id".
func takeoverAlertsIn(t *testing.T, promAddr string) map[string]promAlert {
	t.Helper()
	var body struct {
		Status string `json:"status"`
		Data   struct {
			Alerts []promAlert `json:"alerts"`
		} `json:"data"`
	}
	if promGet(t, promAddr, "/api/v1/alerts", &body); body.Status != "success" {
		t.Fatalf("/api/v1/alerts: status %q", body.Status)
	}
	out := map[string]promAlert{}
	for _, a := range body.Data.Alerts {
		if name := a.Labels["alertname"]; slices.Contains(takeoverAlerts, name) {
			out[name+"/"+a.Labels["manager_id"]] = a
		}
	}
	return out
}

// checkMonthsSincePromotion: Prometheus has a leadthrough_manager_months_since_promotion sample for exactly the
// managers promoted in the events, as the reference model finds them, with their months since promotion.
func checkMonthsSincePromotion(t *testing.T, evs []event.Event, promAddr string) {
	t.Helper()
	want := map[string]string{}
	for _, p := range indicator.ReferencePromotions(evs, time.Now()) {
		want[p.ManagerID] = fmt.Sprint(p.MonthsSincePromotion)
	}
	var body struct {
		Data struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	promGet(t, promAddr, "/api/v1/query?query=leadthrough_manager_months_since_promotion", &body)
	got := map[string]string{}
	for _, r := range body.Data.Result {
		got[r.Metric["manager_id"]] = fmt.Sprint(r.Value[1])
	}
	if !maps.Equal(got, want) {
		t.Errorf("leadthrough_manager_months_since_promotion in Prometheus: %v, want the reference model's %v", got, want)
	}
	t.Logf("months since promotion in Prometheus: %v", got)
}

// promGet decodes the JSON answer of Prometheus' API at path into v.
func promGet(t *testing.T, promAddr, path string, v any) {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + promAddr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
