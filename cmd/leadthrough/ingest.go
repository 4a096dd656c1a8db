package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/leadthrough/leadthrough/ingest"
	"github.com/leadthrough/leadthrough/ingest/chsink"
	"github.com/leadthrough/leadthrough/metrics"
	"github.com/leadthrough/leadthrough/store"
)

// decoders are the input formats a topic can carry, by the name used in --topic NAME=FORMAT.
var decoders = map[string]ingest.Decoder{
	ingest.CloudEvents.Name(): ingest.CloudEvents,
}

func decoderNames() string {
	names := make([]string, 0, len(decoders))
	for n := range decoders {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// topicsFlag is --topic NAME[=FORMAT], repeatable (comma-separated in the environment).
func topicsFlag(c *command) *[]ingest.Topic {
	var topics []ingest.Topic
	defaulted := true
	c.Func("topic", ingest.DefaultTopic,
		"topic to consume as NAME[=FORMAT]; repeat for several topics (comma-separated in the environment). Formats: "+
			decoderNames()+"; default format cloudevents. Dead letters go to NAME + --dlq-suffix",
		func(s string) error {
			if defaulted {
				topics, defaulted = nil, false
			}
			for _, spec := range strings.Split(s, ",") {
				name, format, _ := strings.Cut(strings.TrimSpace(spec), "=")
				if name == "" {
					return errors.New("empty topic name")
				}
				if format == "" {
					format = ingest.CloudEvents.Name()
				}
				d, ok := decoders[format]
				if !ok {
					return fmt.Errorf("unknown format %q for topic %s (known: %s)", format, name, decoderNames())
				}
				topics = append(topics, ingest.Topic{Name: name, Decoder: d})
			}
			return nil
		})
	defaulted = true // the default above was applied through the same path
	return &topics
}

type ingestFlags struct {
	brokers *[]string
	topics  *[]ingest.Topic
	cfg     ingest.Config
}

func addIngestFlags(c *command) *ingestFlags {
	f := &ingestFlags{brokers: brokersFlag(c), topics: topicsFlag(c)}
	c.fs.StringVar(&f.cfg.GroupID, "group", ingest.DefaultGroupID,
		c.register("group", "Kafka consumer group; workers with the same group share the partitions"))
	c.fs.StringVar(&f.cfg.DLQSuffix, "dlq-suffix", ingest.DefaultDLQSuffix, c.register("dlq-suffix", "dead-letter topic suffix"))
	c.fs.IntVar(&f.cfg.BatchSize, "batch-size", ingest.DefaultBatchSize,
		c.register("batch-size", "events per ClickHouse insert; see --flush-interval"))
	c.fs.DurationVar(&f.cfg.FlushInterval, "flush-interval", ingest.DefaultFlushInterval,
		c.register("flush-interval", "longest time a partial batch waits before it is inserted and committed"))
	c.fs.IntVar(&f.cfg.MaxMessageBytes, "max-message-bytes", ingest.DefaultMaxMessageBytes,
		c.register("max-message-bytes", "larger messages are dead-lettered as oversized without being decoded"))
	return f
}

func (f *ingestFlags) config(log *slog.Logger, m *ingest.Metrics) ingest.Config {
	cfg := f.cfg
	cfg.Brokers, cfg.Topics, cfg.Logger, cfg.Metrics = *f.brokers, *f.topics, log, m
	return cfg
}

func runIngest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("ingest", "Consumes CRM events from Kafka and inserts them into ClickHouse in batches. Offsets are committed "+
		"only after the insert succeeded; invalid messages go to <topic>.dlq with the reason in headers. Run `leadthrough migrate` first.", stderr)
	chCfg := clickhouseFlags(c)
	in := addIngestFlags(c)
	listen := c.String("listen", "127.0.0.1:9465", "address for this worker's /metrics and /healthz; empty disables")
	logger := logFlags(c)
	if err := c.parse(args); err != nil {
		return err
	}
	log := logger()
	s, err := openMigrated(ctx, *chCfg)
	if err != nil {
		return err
	}
	defer s.Close()
	reg := prometheus.NewRegistry()
	m := ingest.NewMetrics(reg)
	if *listen != "" {
		srv := metrics.NewServer(*listen, reg, func() error { return nil }, log)
		if err := srv.Start(); err != nil {
			return err
		}
		defer srv.Shutdown(context.Background())
		log.Info("serving ingest metrics", "url", "http://"+srv.Addr()+"/metrics")
	}
	cfg := in.config(log, m)
	log.Info("ingesting", "brokers", cfg.Brokers, "topics", topicNames(cfg.Topics), "clickhouse", chCfg.Addr, "database", chCfg.Database)
	return ingest.Run(ctx, cfg, chsink.New(s))
}

func topicNames(ts []ingest.Topic) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.Name
		if t.Decoder != nil {
			out[i] += "=" + t.Decoder.Name()
		}
	}
	return out
}

// openMigrated opens the database and checks that `leadthrough migrate` ran.
func openMigrated(ctx context.Context, cfg store.Config) (*store.Store, error) {
	s, err := store.Open(ctx, cfg)
	if err != nil {
		if !errors.Is(err, store.ErrUnreachable) {
			err = fmt.Errorf("%w (has `leadthrough migrate` run?)", err)
		}
		return nil, err
	}
	if _, err := s.SchemaVersion(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("database %s is not migrated: run `leadthrough migrate` (%v)", cfg.Database, err)
	}
	return s, nil
}
