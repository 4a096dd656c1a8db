package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/leadthrough/leadthrough/broker"
	"github.com/leadthrough/leadthrough/ingest"
	"github.com/leadthrough/leadthrough/ingest/chsink"
	"github.com/leadthrough/leadthrough/metrics"
	"github.com/leadthrough/leadthrough/publish"
	"github.com/leadthrough/leadthrough/report"
)

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("demo", "Runs the whole pipeline in one process: an embedded broker, `migrate`, `simulate`, `ingest` and `serve`, "+
		"against the ClickHouse at --clickhouse-addr (`make demo` starts one). Prints the indicators and keeps serving "+
		"/metrics until Ctrl-C.", stderr)
	chCfg := clickhouseFlags(c, "leadthrough_demo")
	brokerListen := c.String("broker-listen", "127.0.0.1:0", "address of the embedded broker; port 0 picks a free one")
	listen := c.String("listen", "127.0.0.1:9464", "address for the report page /, /metrics and /healthz")
	w := windowFlags(c)
	sim := addSimulateFlags(c)
	logger := logFlags(c)
	if err := c.parse(args); err != nil {
		return err
	}
	log := logger()
	simCfg, err := sim.config()
	if err != nil {
		return err
	}
	const topic = "crm.events"

	s, err := migrate(ctx, *chCfg, log)
	if err != nil {
		return err
	}
	defer s.Close()
	b, err := broker.Start(broker.Config{Listen: *brokerListen, Logger: log})
	if err != nil {
		return err
	}
	defer b.Close()
	fmt.Fprintf(stdout, "1/4 embedded broker on %s, ClickHouse database %s at %s\n", b.Addr(), chCfg.Database, chCfg.Addr)

	started := time.Now()
	stats, err := simulateAndPublish(ctx, simCfg, publish.Config{Brokers: []string{b.Addr()}, Topic: topic}, log)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "2/4 simulated %d events (%d managers, %d days to %s) and published them to %s\n", stats.Events,
		len(simCfg.Styles()), simCfg.Days, simCfg.End.Format(time.RFC3339), topic)

	reg := prometheus.NewRegistry()
	sup := supervise(ctx, log)
	sup.Go("ingest worker", func(ctx context.Context) error {
		return ingest.Run(ctx, ingest.Config{Brokers: []string{b.Addr()}, Topics: []ingest.Topic{{Name: topic}},
			Logger: log, Metrics: ingest.NewMetrics(reg)}, chsink.New(s))
	})
	if err := waitIngested(sup.Context(), s, started, stats.Distinct(), stdout); err != nil {
		return sup.Stop(err)
	}

	refresher, err := metrics.NewRefresher(metrics.RefresherConfig{Source: s, Saver: s, Promotions: s, Window: w.window,
		CoachingKinds: w.kinds, Now: func() time.Time { return simCfg.End }, Logger: log}, reg)
	if err != nil {
		return sup.Stop(err)
	}
	if err := refresher.RefreshNow(sup.Context()); err != nil {
		return sup.Stop(err)
	}
	rows, asOf := refresher.Rows()
	fmt.Fprintf(stdout, "\nIndicators for the %s ending %s:\n\n", humanWindow(w.window), asOf.Format(time.RFC3339))
	printTable(stdout, rows)
	fmt.Fprintln(stdout, "\nSimulated styles:")
	styles := simCfg.Styles()
	ids := make([]string, 0, len(styles))
	for id := range styles {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	pr, promoted := simCfg.Promotion()
	for _, id := range ids {
		fmt.Fprintf(stdout, "  %s  %s", id, styles[id])
		if promoted && id == pr.UserID {
			fmt.Fprintf(stdout, ": the top rep of %s's team, a manager since %s", pr.FromManagerID, pr.At.Format(time.RFC3339))
		}
		fmt.Fprintln(stdout)
	}

	srv := metrics.NewServer(*listen, reg, allHealthy(sup.Healthy, func() error { return refresher.Healthy(time.Hour) }), log)
	if err := sup.Serve(srv); err != nil {
		return sup.Stop(err)
	}
	page, err := report.New(report.Config{Source: s, Current: refresher.Rows,
		Health: func() error { return refresher.Healthy(time.Hour) }, Window: w.window, CoachingKinds: w.kinds,
		Now: func() time.Time { return simCfg.End }, Logger: log})
	if err != nil {
		return sup.Stop(err)
	}
	srv.SetIndex(page)
	fmt.Fprintf(stdout, "\n4/4 serving the report page at http://%s/, /metrics and /healthz; Ctrl-C to stop\n", srv.Addr())
	sup.Go("indicator refresher", refresher.Run)
	sup.Go("report page", page.Run)
	err = sup.Wait()
	fmt.Fprintln(stdout, "stopping")
	return err // then the broker and the store close, in reverse order of opening
}

// waitIngested polls ClickHouse until every published event is stored, reporting progress.
func waitIngested(ctx context.Context, s interface {
	CountEventsIngestedSince(context.Context, time.Time) (uint64, error)
}, since time.Time, want int, out io.Writer) error {
	deadline := time.Now().Add(3 * time.Minute)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		n, err := s.CountEventsIngestedSince(ctx, since)
		if err != nil {
			return err
		}
		if int(n) >= want {
			fmt.Fprintf(out, "3/4 ingested %d events into ClickHouse\n", n)
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("ingest stalled: %d of %d events stored after 3 minutes", n, want)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}
