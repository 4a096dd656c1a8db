package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
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
	kafka := kafkaFlags(c)
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
	stats, err := simulateAndPublish(ctx, cfg, publish.Config{Brokers: kafka.Brokers, Kafka: kafka.Conn, Topic: *topic}, logger())
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "published %d events for %d managers to %s on %v (seed %d, %d days to %s)\n", stats.Events,
		len(cfg.Styles()), *topic, kafka.Brokers, cfg.Seed, cfg.Days, cfg.End.Format(time.RFC3339))
	return nil
}

// publishBatch is the number of events handed to the publisher at once, and sent per produce request; at most two
// batches wait for the publisher, so memory stays bounded however many events the simulation has. Larger batches
// publish faster (5000 is 2.5 times as fast as 1000 on the embedded broker) for a few more megabytes.
const publishBatch = 5000

// progressEvery is how often a long simulation logs its progress.
const progressEvery = 5 * time.Second

// simulateAndPublish publishes cfg's events where and as pub says (its BatchSize becomes publishBatch) while they are
// generated: the simulation fills batches, which a second goroutine encodes and publishes, each acknowledged before
// the next. It logs progress every few seconds (the first lines of a long run show no events yet: the simulation
// plays every deal once before it emits).
func simulateAndPublish(ctx context.Context, cfg simulate.Config, pub publish.Config, log *slog.Logger) (simulate.Stats, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pub.BatchSize = publishBatch
	w, err := publish.NewWriter(pub)
	if err != nil {
		return simulate.Stats{}, err
	}
	defer w.Close()
	var generated, published atomic.Int64
	batches := make(chan []event.Event, 2)
	pubErr := make(chan error, 1)
	go func() {
		var err error
		for b := range batches {
			if err != nil {
				continue // drain, so the simulation never blocks
			}
			if err = w.Write(ctx, b); err != nil {
				cancel()
			} else {
				published.Add(int64(len(b)))
			}
		}
		pubErr <- err
	}()

	start := time.Now()
	stopProgress := make(chan struct{})
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		tick := time.NewTicker(progressEvery)
		defer tick.Stop()
		last, lastAt := int64(0), start
		for {
			select {
			case <-stopProgress:
				return
			case now := <-tick.C:
				n := generated.Load()
				log.Info("simulating", "events", n, "published", published.Load(),
					"rate_per_s", int(float64(n-last)/now.Sub(lastAt).Seconds()), "elapsed", now.Sub(start).Round(time.Second))
				last, lastAt = n, now
			}
		}
	}()

	batch := make([]event.Event, 0, publishBatch)
	send := func() error {
		select {
		case batches <- batch:
			batch = make([]event.Event, 0, publishBatch)
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	stats, err := simulate.Stream(ctx, cfg, func(e event.Event) error {
		batch = append(batch, e)
		generated.Add(1)
		if len(batch) < publishBatch {
			return nil
		}
		return send()
	})
	if err == nil && len(batch) > 0 {
		err = send()
	}
	close(batches)
	werr := <-pubErr
	close(stopProgress)
	<-progressDone
	switch {
	case errors.Is(err, simulate.ErrInvalidConfig):
		return stats, fmt.Errorf("%w: %v", errUsage, err)
	case werr != nil:
		return stats, werr // the simulation stopped because publishing failed
	case err != nil:
		return stats, err
	}
	log.Info("published", "events", stats.Events, "distinct", stats.Distinct(), "topic", pub.Topic,
		"elapsed", time.Since(start).Round(time.Millisecond))
	return stats, nil
}
