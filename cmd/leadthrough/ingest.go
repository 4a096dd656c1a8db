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

	"github.com/leadthrough/leadthrough/crm/hubspot"
	"github.com/leadthrough/leadthrough/crm/pipedrive"
	"github.com/leadthrough/leadthrough/crm/salesforce"
	"github.com/leadthrough/leadthrough/ingest"
	"github.com/leadthrough/leadthrough/ingest/chsink"
	"github.com/leadthrough/leadthrough/metrics"
	"github.com/leadthrough/leadthrough/store"
)

// formats are the input formats a topic can carry, by the name used in --topic NAME=FORMAT. A decoder is built
// after the flags are parsed, from the vendor flags.
var formats = map[string]func(v vendorFlags) (ingest.Decoder, error){
	"cloudevents": func(vendorFlags) (ingest.Decoder, error) { return ingest.CloudEvents, nil },
	"salesforce-cdc": func(v vendorFlags) (ingest.Decoder, error) {
		return salesforce.New(salesforce.Config{Source: v.salesforceSource}), nil
	},
	"hubspot": func(v vendorFlags) (ingest.Decoder, error) {
		cfg := hubspot.Config{Source: v.hubspotSource, WonStages: v.hubspotWon, LostStages: v.hubspotLost}
		if err := cfg.Validate(); err != nil {
			return nil, fmt.Errorf("%w: hubspot: %v", errUsage, err)
		}
		return hubspot.New(cfg), nil
	},
	"pipedrive": func(v vendorFlags) (ingest.Decoder, error) {
		return pipedrive.New(pipedrive.Config{Source: v.pipedriveSource}), nil
	},
}

func formatNames() string {
	names := make([]string, 0, len(formats))
	for n := range formats {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// topicSpec is one --topic NAME=FORMAT.
type topicSpec struct{ name, format string }

// topicsFlag is --topic NAME[=FORMAT], repeatable (comma-separated in the environment).
func topicsFlag(c *command) *[]topicSpec {
	var topics []topicSpec
	defaulted := true
	c.Func("topic", ingest.DefaultTopic,
		"topic to consume as NAME[=FORMAT]; repeat for several topics (comma-separated in the environment). Formats: "+
			formatNames()+"; default format cloudevents. Dead letters go to NAME + --dlq-suffix. See the README, Connecting your CRM",
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
				if _, ok := formats[format]; !ok {
					return fmt.Errorf("unknown format %q for topic %s (known: %s)", format, name, formatNames())
				}
				topics = append(topics, topicSpec{name, format})
			}
			return nil
		})
	defaulted = true // the default above was applied through the same path
	return &topics
}

// vendorFlags configure the vendor formats.
type vendorFlags struct {
	salesforceSource, hubspotSource, pipedriveSource string
	hubspotWon, hubspotLost                          []string
}

func addVendorFlags(c *command) *vendorFlags {
	v := &vendorFlags{}
	c.fs.StringVar(&v.salesforceSource, "salesforce-source", salesforce.DefaultSource,
		c.register("salesforce-source", "CloudEvents source of events decoded from salesforce-cdc topics (one per Salesforce org)"))
	c.fs.StringVar(&v.hubspotSource, "hubspot-source", hubspot.DefaultSource,
		c.register("hubspot-source", "CloudEvents source prefix of hubspot topics; the portal id is appended"))
	c.fs.StringVar(&v.pipedriveSource, "pipedrive-source", pipedrive.DefaultSource,
		c.register("pipedrive-source", "CloudEvents source prefix of pipedrive topics; the company id is appended"))
	list := func(dst *[]string) func(string) error {
		return func(s string) error {
			*dst = nil
			for _, x := range strings.Split(s, ",") {
				if x = strings.TrimSpace(x); x != "" {
					*dst = append(*dst, x)
				}
			}
			return nil
		}
	}
	c.Func("hubspot-won-stages", "closedwon", "comma-separated HubSpot dealstage ids that mean won (portal-specific; "+
		"custom pipelines use numeric ids)", list(&v.hubspotWon))
	c.Func("hubspot-lost-stages", "closedlost", "comma-separated HubSpot dealstage ids that mean lost", list(&v.hubspotLost))
	return v
}

type ingestFlags struct {
	kafka  *kafkaClient
	topics *[]topicSpec
	vendor *vendorFlags
	cfg    ingest.Config
}

func addIngestFlags(c *command) *ingestFlags {
	f := &ingestFlags{kafka: kafkaFlags(c), topics: topicsFlag(c), vendor: addVendorFlags(c)}
	c.fs.StringVar(&f.cfg.GroupID, "group", ingest.DefaultGroupID,
		c.register("group", "Kafka consumer group; workers with the same group share the partitions"))
	c.fs.StringVar(&f.cfg.DLQSuffix, "dlq-suffix", ingest.DefaultDLQSuffix, c.register("dlq-suffix", "dead-letter topic suffix"))
	c.fs.IntVar(&f.cfg.BatchSize, "batch-size", ingest.DefaultBatchSize,
		c.register("batch-size", "most events per batch, the block the worker sends to ClickHouse at once (an insert streams the "+
			"batches of up to 5 s or a million messages, then commits them); see --batch-bytes and --flush-interval"))
	c.fs.IntVar(&f.cfg.BatchBytes, "batch-bytes", ingest.DefaultBatchBytes,
		c.register("batch-bytes", "most bytes of Kafka message values per batch; the worker holds at most "+
			"two batches, so this bounds its memory; see --batch-size"))
	c.fs.IntVar(&f.cfg.Writers, "writers", ingest.DefaultWriters,
		c.register("writers", "batches inserted into ClickHouse at once, each as its own insert (more than 1 turns off "+
			"streaming batches into one insert); offsets are still committed in order, only after everything before them was written"))
	c.fs.IntVar(&f.cfg.DecodeWorkers, "decode-workers", 0,
		c.register("decode-workers", "goroutines decoding and validating messages in parallel (default: one per "+
			"CPU); order within a partition is kept whatever the number"))
	c.fs.DurationVar(&f.cfg.FlushInterval, "flush-interval", ingest.DefaultFlushInterval,
		c.register("flush-interval", "longest time a partial batch waits before it is written; such a batch ends the insert and is committed "+
			"(after full batches, the last batch of a backlog is written as soon as every partition is read to its end)"))
	c.fs.IntVar(&f.cfg.MaxMessageBytes, "max-message-bytes", ingest.DefaultMaxMessageBytes,
		c.register("max-message-bytes", "larger messages are dead-lettered as oversized without being decoded"))
	c.fs.DurationVar(&f.cfg.SessionTimeout, "session-timeout", ingest.DefaultSessionTimeout,
		c.register("session-timeout", "how long the consumer group waits for a silent worker (crashed, killed, "+
			"partitioned) before giving its partitions to the others, and so how long they stay unread; heartbeats "+
			"every fifth of it; the broker bounds it (Kafka: 6s to 30m by default); see --rebalance-timeout"))
	c.fs.DurationVar(&f.cfg.RebalanceTimeout, "rebalance-timeout", ingest.DefaultRebalanceTimeout,
		c.register("rebalance-timeout", "how long a rebalance waits for every live worker to rejoin the group before "+
			"dropping the late ones; a join unanswered for this plus 5s is retried; see --session-timeout"))
	return f
}

func (f *ingestFlags) config(log *slog.Logger, m *ingest.Metrics) (ingest.Config, error) {
	cfg := f.cfg
	cfg.Brokers, cfg.Kafka, cfg.Logger, cfg.Metrics = f.kafka.Brokers, f.kafka.Conn, log, m
	for _, t := range *f.topics {
		d, err := formats[t.format](*f.vendor)
		if err != nil {
			return cfg, err
		}
		cfg.Topics = append(cfg.Topics, ingest.Topic{Name: t.name, Decoder: d})
	}
	return cfg, nil
}

func runIngest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("ingest", "Consumes CRM events from Kafka and inserts them into ClickHouse in batches. Offsets are committed "+
		"only after the insert succeeded; invalid messages go to <topic>.dlq with the reason in headers. Waits for "+
		"ClickHouse and Kafka at startup. Run `leadthrough migrate` first. Unless GOGC and GOMEMLIMIT are set, the "+
		"garbage collector runs at GOGC=400 with a soft limit of 200 MiB (more for a larger --batch-bytes).", stderr)
	chCfg := clickhouseFlags(c, "leadthrough")
	in := addIngestFlags(c)
	listen := c.String("listen", "127.0.0.1:9465", "address for this worker's /metrics and /healthz (503 until ClickHouse "+
		"and Kafka answer); empty disables")
	maxBackoff := startupFlags(c)
	logger := logFlags(c)
	if err := c.parse(args); err != nil {
		return err
	}
	log := logger()
	reg := prometheus.NewRegistry()
	cfg, err := in.config(log, ingest.NewMetrics(reg))
	if err != nil {
		return err
	}
	tuneIngestGC(cfg.BatchBytes, cfg.Writers, log)

	sup := supervise(ctx, log)
	st := newStartup(*maxBackoff, log)
	if *listen != "" {
		if err := sup.Serve(metrics.NewServer(*listen, reg, allHealthy(sup.Healthy, st.Healthy), log)); err != nil {
			return sup.Stop(err)
		}
	}
	s, err := st.ClickHouse(sup.Context(), *chCfg)
	if err != nil {
		return sup.Stop(err)
	}
	defer s.Close() // after sup.Wait: nothing uses the store any more
	if err := st.Kafka(sup.Context(), cfg.Kafka, cfg.Brokers); err != nil {
		return sup.Stop(err)
	}
	st.Ready(nil)
	log.Info("ingesting", "brokers", cfg.Brokers, "topics", topicNames(cfg.Topics), "clickhouse", chCfg.Addr, "database", chCfg.Database)
	sup.Go("ingest worker", func(ctx context.Context) error { return ingest.Run(ctx, cfg, chsink.New(s)) })
	return sup.Wait()
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
		if !errors.Is(err, store.ErrUnreachable) && !errors.Is(err, store.ErrAuth) && !errors.Is(err, store.ErrTLS) {
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
