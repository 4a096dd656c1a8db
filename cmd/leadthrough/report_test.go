package main

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/leadthrough/leadthrough/event"
	"github.com/leadthrough/leadthrough/indicator"
	"github.com/leadthrough/leadthrough/internal/pipelinetest"
	"github.com/leadthrough/leadthrough/internal/testenv"
	"github.com/leadthrough/leadthrough/simulate"
	"github.com/leadthrough/leadthrough/store"
)

// TestReportPageInHeadlessChromium loads the demo's organisation (simulate's default org, ending at the current hour
// as the demo's does) into a fresh ClickHouse database, starts a real `leadthrough serve` on it and opens its report
// page at / in headless Chromium: the browser's DOM must show every manager of the data, the new-manager watch with
// each promoted manager, and the deals taken over. The server's own HTML must hold the tables (no JavaScript) and
// refer to nothing outside the server. A screenshot is saved in $LEADTHROUGH_TEST_ARTIFACTS, else in the test's
// temporary directory.
func TestReportPageInHeadlessChromium(t *testing.T) {
	chromium := testenv.Chromium(t)
	start := time.Now()
	env := pipelinetest.New(t, "report")
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()

	cfg := simulate.Config{End: time.Now().UTC().Truncate(time.Hour)}
	managers := map[string]bool{} // every user who is someone's manager, by id
	names := map[string]string{}
	var batch []store.Stored
	flush := func() error {
		err := env.Store.InsertEvents(ctx, batch)
		batch = batch[:0]
		return err
	}
	stats, err := simulate.Stream(ctx, cfg, func(e event.Event) error {
		switch {
		case e.Type == event.UserUpserted && e.Data.Name != "":
			names[e.Data.UserID] = e.Data.Name
		case e.Type == event.UserManagerChanged && e.Data.ManagerID != nil && *e.Data.ManagerID != "":
			managers[*e.Data.ManagerID] = true
		}
		if batch = append(batch, store.Stored{Event: e}); len(batch) == 10_000 {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(managers) == 0 {
		t.Fatal("the simulated organisation has no manager")
	}
	t.Logf("%d simulated events stored in %s", stats.Events, time.Since(start).Round(time.Millisecond))

	addr := freeAddr(t)
	var logs syncBuffer
	env.Start(ctx, t, func(ctx context.Context) error {
		return runServe(ctx, []string{"--clickhouse-addr", env.ClickHouse, "--clickhouse-database", env.Database,
			"--listen", addr, "--log-level", "warn"}, io.Discard, &logs)
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("serve's log:\n%s", logs.String())
		}
	})
	waitHealthz(t, addr, http.StatusOK, "ok")
	url := "http://" + addr + "/"
	html := waitReportComplete(t, url, 3*time.Minute)
	t.Logf("report page complete after %s", time.Since(start).Round(time.Millisecond))

	// The server's HTML: the tables are in it (nothing for a script to build), and nothing is loaded from elsewhere.
	if strings.Contains(strings.ToLower(html), "<script") {
		t.Error("the report page has a script")
	}
	for _, m := range regexp.MustCompile(`(?i)\b(?:src|href|action)\s*=\s*["']?([^"'\s>]*)`).FindAllStringSubmatch(html, -1) {
		if u := m[1]; !strings.HasPrefix(u, "#") && !strings.HasPrefix(u, "/") || strings.HasPrefix(u, "//") {
			t.Errorf("the report page refers to %q: only this server's paths and fragments are allowed", u)
		}
	}
	if regexp.MustCompile(`(?i)https?://`).MatchString(html) {
		t.Error("the report page names an http(s) URL")
	}
	current, err := env.Store.Indicators(ctx, indicator.Params{AsOf: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	table := pageSection(t, html, "indicators")
	if !strings.Contains(table, "<table>") {
		t.Fatalf("the server's HTML has no indicator table:\n%s", table)
	}
	for _, r := range current {
		if !strings.Contains(table, `<th scope="row">`+r.ManagerName+`<span class="id">`+r.ManagerID+`</span>`) {
			t.Errorf("the server's indicator table has no row for %s (%s)", r.ManagerName, r.ManagerID)
		}
	}

	// The browser's DOM.
	dom := string(testenv.Headless(t, chromium, "--dump-dom", url))
	for id := range managers {
		if !strings.Contains(dom, names[id]) {
			t.Errorf("the page in Chromium does not show the manager %s (%s)", names[id], id)
		}
	}
	if strings.Contains(dom, "Could not refresh") || strings.Contains(dom, `class="stale"`) {
		t.Errorf("the page in Chromium shows an error:\n%s", dom)
	}
	watch := pageSection(t, dom, "watch")
	if !strings.Contains(watch, "New-manager watch") {
		t.Errorf("the watch section has no heading:\n%s", watch)
	}
	promoted, err := env.Store.Watch(ctx, indicator.Params{AsOf: time.Now()}, indicator.DefaultWatchMonths)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range promoted {
		if !strings.Contains(watch, "<h3>"+w.ManagerName+`<span class="id">`+w.ManagerID+"</span></h3>") {
			t.Errorf("the watch does not list the promoted manager %s (%s)", w.ManagerName, w.ManagerID)
		}
	}
	if len(promoted) == 0 && !strings.Contains(watch, "No promoted manager in the last 12 months") {
		t.Errorf("no promoted manager, and the watch does not say so:\n%s", watch)
	}
	deals := pageSection(t, dom, "deals")
	for _, r := range current {
		if r.TakeoverRate != nil && *r.TakeoverRate > 0 && !strings.Contains(deals, "Deals "+r.ManagerName+" took over") {
			t.Errorf("%s (%s) took deals over (takeover rate %.2f), but the page lists none", r.ManagerName,
				r.ManagerID, *r.TakeoverRate)
		}
	}

	dir := os.Getenv("LEADTHROUGH_TEST_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(dir, "report.png")
	testenv.Headless(t, chromium, "--screenshot="+shot, "--window-size=1400,2000", url)
	checkScreenshot(t, shot, 1400, 2000)
	t.Logf("screenshot of the report page: %s", shot)
}

// waitReportComplete polls the report page until every part of it has been computed, and returns its HTML.
func waitReportComplete(t *testing.T, url string, d time.Duration) string {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	var last string
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		resp, err := client.Get(url)
		if err != nil {
			last = err.Error()
			continue
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			last = err.Error()
			continue
		}
		last = resp.Status + "\n" + string(body)
		if resp.StatusCode == http.StatusOK && strings.Contains(resp.Header.Get("Content-Type"), "text/html") &&
			strings.Contains(string(body), `<main data-state="complete">`) {
			return string(body)
		}
	}
	t.Fatalf("the report page was not complete after %s; last answer:\n%s", d, last)
	return ""
}

// pageSection is the HTML of the report page's section with the given id.
func pageSection(t *testing.T, html, id string) string {
	t.Helper()
	i := strings.Index(html, `<section id="`+id+`"`)
	if i < 0 {
		t.Fatalf("the report page has no section %q", id)
	}
	j := strings.Index(html[i:], "</section>")
	if j < 0 {
		t.Fatalf("the report page's section %q does not end", id)
	}
	return html[i : i+j]
}

// checkScreenshot fails the test unless path is a PNG of the given size that shows something: many colours, as
// text, tables and lines do, not a blank or single-colour page.
func checkScreenshot(t *testing.T, path string, width, height int) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("the screenshot %s is not a PNG: %v", path, err)
	}
	if b := img.Bounds(); b.Dx() != width || b.Dy() != height {
		t.Errorf("the screenshot is %dx%d, want %dx%d", b.Dx(), b.Dy(), width, height)
	}
	if colours := countColours(img, 1000); len(data) < 20_000 || colours < 100 {
		t.Errorf("the screenshot looks blank: %d bytes, %d colours", len(data), colours)
	}
}

// countColours counts the distinct colours of img, up to max.
func countColours(img image.Image, max int) int {
	seen := map[[4]uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, a := img.At(x, y).RGBA()
			if seen[[4]uint32{r, g, bl, a}] = true; len(seen) >= max {
				return len(seen)
			}
		}
	}
	return len(seen)
}
