package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/leadthrough/leadthrough/event"
	"github.com/leadthrough/leadthrough/publish"
	"github.com/leadthrough/leadthrough/simulate"
)

type simulateFlags struct {
	cfg simulate.Config
	end string
}

func addSimulateFlags(c *command) *simulateFlags {
	f := &simulateFlags{}
	c.fs.Uint64Var(&f.cfg.Seed, "seed", simulate.DefaultSeed, c.register("seed", "random seed; the same seed and --end give the same events"))
	c.fs.StringVar(&f.cfg.Source, "source", simulate.DefaultSource, c.register("source", "CloudEvents source of the events"))
	c.fs.StringVar(&f.end, "end", "", c.register("end", "time of the last simulated day, RFC 3339; default now, truncated to the hour"))
	c.fs.IntVar(&f.cfg.Days, "days", simulate.DefaultDays, c.register("days", "days of history to simulate"))
	c.fs.IntVar(&f.cfg.Managers, "managers", simulate.DefaultManagers,
		c.register("managers", "sales managers; styles cycle coach, player-coach, balanced"))
	c.fs.IntVar(&f.cfg.RepsPerManager, "reps-per-manager", simulate.DefaultRepsPerManager, c.register("reps-per-manager", "reps in each team"))
	c.fs.Float64Var(&f.cfg.DealsPerRepPerMonth, "deals-per-rep-per-month", simulate.DefaultDealsPerRepPerMonth,
		c.register("deals-per-rep-per-month", "new deals per rep per 30 days"))
	c.fs.Float64Var(&f.cfg.DuplicateRatio, "duplicate-ratio", 0,
		c.register("duplicate-ratio", "share of events sent twice (same source and id), to exercise deduplication"))
	c.fs.Float64Var(&f.cfg.ShuffleRatio, "shuffle-ratio", 0,
		c.register("shuffle-ratio", "share of events sent late, out of time order, to exercise late arrival"))
	return f
}

func (f *simulateFlags) config() (simulate.Config, error) {
	cfg := f.cfg
	if f.end != "" {
		t, err := time.Parse(time.RFC3339, f.end)
		if err != nil {
			return cfg, fmt.Errorf("%w: --end: want RFC 3339 like 2026-03-31T00:00:00Z", errUsage)
		}
		cfg.End = t
	}
	if cfg.End.IsZero() {
		cfg.End = time.Now().UTC().Truncate(time.Hour)
	}
	return cfg, nil
}

func runSimulate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("simulate", "Publishes a synthetic sales organisation's events (users, reporting lines, deals, activities) as "+
		"canonical CloudEvents to Kafka: a coach, a player-coach who takes deals over, and a balanced manager, repeating.", stderr)
	brokers := brokersFlag(c)
	topic := c.String("topic", "crm.events", "topic to publish to")
	sim := addSimulateFlags(c)
	logger := logFlags(c)
	if err := c.parse(args); err != nil {
		return err
	}
	cfg, err := sim.config()
	if err != nil {
		return err
	}
	evs, err := simulateAndPublish(ctx, cfg, *brokers, *topic, logger())
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "published %d events for %d managers to %s on %v (seed %d, %d days to %s)\n", len(evs),
		len(cfg.Styles()), *topic, *brokers, cfg.Seed, cfg.Days, cfg.End.Format(time.RFC3339))
	return nil
}

func simulateAndPublish(ctx context.Context, cfg simulate.Config, brokers []string, topic string, log *slog.Logger) ([]event.Event, error) {
	evs, err := simulate.Generate(cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	start := time.Now()
	last := start
	err = publish.Events(ctx, publish.Config{Brokers: brokers, Topic: topic, Progress: func(done, total int) {
		if time.Since(last) > 2*time.Second || done == total {
			log.Info("publishing", "done", done, "total", total)
			last = time.Now()
		}
	}}, evs)
	if err != nil {
		return nil, err
	}
	log.Info("published", "events", len(evs), "topic", topic, "elapsed", time.Since(start).Round(time.Millisecond))
	return evs, nil
}
