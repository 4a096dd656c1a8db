package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/leadthrough/leadthrough/ingest"
	"github.com/leadthrough/leadthrough/ingest/chsink"
	"github.com/leadthrough/leadthrough/metrics"
	"github.com/leadthrough/leadthrough/report"
)

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("serve", "Serves a report page at / (the indicators, monthly trends, the new-manager watch and the "+
		"deals each manager took over) and /metrics with per-manager indicators over a rolling window ending now, recomputed in ClickHouse "+
		"every --refresh-interval and served from memory, and /healthz. Each refresh is also stored in the table "+
		"team_indicators for Grafana, and every --monthly-interval the current and the previous calendar month are "+
		"recomputed into monthly_indicators (the last 12 months at startup). With --ingest, the ingest worker runs in "+
		"this process too and its counters are "+
		"on the same /metrics. Waits for ClickHouse (and Kafka with --ingest) at startup; a component that fails stops "+
		"the process.", stderr)
	chCfg := clickhouseFlags(c, "leadthrough")
	w := windowFlags(c)
	listen := c.String("listen", "127.0.0.1:9464", "address for the report page /, /metrics and /healthz (host:port; :9464 for all interfaces); "+
		"/healthz answers 503 while starting and when the indicators are older than 3 --refresh-interval")
	interval := c.Duration("refresh-interval", time.Minute, "how often the indicators are recomputed")
	reportInterval := c.Duration("report-interval", report.DefaultInterval, "how often the report page at / recomputes "+
		"its monthly trends, new-manager watch and taken-over deals (an attribution run per month, per tenure period "+
		"and for the window: minutes, not seconds); its indicator table follows --refresh-interval")
	monthlyInterval := c.Duration("monthly-interval", metrics.DefaultMonthlyInterval, "how often the current and the "+
		"previous calendar month are recomputed (one attribution run each) into the table monthly_indicators for "+
		"Grafana's trend panels; the first time, the last 12 months. 0 turns it off (another serve keeps the table)")
	withIngest := c.Bool("ingest", false, "also run the ingest worker in this process (it takes the same flags as leadthrough ingest)")
	in := addIngestFlags(c)
	maxBackoff := startupFlags(c)
	logger := logFlags(c)
	if err := c.parse(args); err != nil {
		return err
	}
	if *monthlyInterval < 0 {
		return fmt.Errorf("%w: --monthly-interval must be positive, or 0 to turn the monthly refresh off", errUsage)
	}
	log := logger()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	var ingestCfg ingest.Config
	if *withIngest {
		cfg, err := in.config(log, ingest.NewMetrics(reg))
		if err != nil {
			return err
		}
		ingestCfg = cfg
	}

	sup := supervise(ctx, log)
	st := newStartup(*maxBackoff, log)
	srv := metrics.NewServer(*listen, reg, allHealthy(sup.Healthy, st.Healthy), log)
	if err := sup.Serve(srv); err != nil {
		return sup.Stop(err)
	}
	fmt.Fprintf(stdout, "serving http://%s/ (report), /metrics and /healthz (indicators over the last %s, refreshed every %s)\n",
		srv.Addr(), humanWindow(w.window), *interval)
	s, err := st.ClickHouse(sup.Context(), *chCfg)
	if err != nil {
		return sup.Stop(err)
	}
	defer s.Close() // after sup.Wait: nothing uses the store any more
	if *withIngest {
		if err := st.Kafka(sup.Context(), ingestCfg.Kafka, ingestCfg.Brokers); err != nil {
			return sup.Stop(err)
		}
	}
	refresher, err := metrics.NewRefresher(metrics.RefresherConfig{Source: s, Saver: s, Promotions: s, Window: w.window,
		CoachingKinds: w.kinds, Interval: *interval, Logger: log}, reg)
	if err != nil {
		return sup.Stop(err)
	}
	st.Ready(func() error { return refresher.Healthy(3 * *interval) })
	sup.Go("indicator refresher", refresher.Run)
	page, err := report.New(report.Config{Source: s, Current: refresher.Rows,
		Health: func() error { return refresher.Healthy(3 * *interval) }, Window: w.window, CurrentInterval: *interval,
		CoachingKinds: w.kinds, Interval: *reportInterval, Logger: log})
	if err != nil {
		return sup.Stop(err)
	}
	srv.SetIndex(page)
	sup.Go("report page", page.Run)
	if *monthlyInterval > 0 {
		monthly, err := metrics.NewMonthly(metrics.MonthlyConfig{Store: s, Interval: *monthlyInterval,
			CoachingKinds: w.kinds, Logger: log}, reg)
		if err != nil {
			return sup.Stop(err)
		}
		sup.Go("monthly refresh", monthly.Run)
	}
	if *withIngest {
		sup.Go("ingest worker", func(ctx context.Context) error { return ingest.Run(ctx, ingestCfg, chsink.New(s)) })
	}
	return sup.Wait()
}
