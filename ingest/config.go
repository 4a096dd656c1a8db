package ingest

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"github.com/leadthrough/leadthrough/kafkaconn"
)

// Defaults of Config.
const (
	DefaultGroupID         = "leadthrough-ingest"
	DefaultTopic           = "crm.events"
	DefaultDLQSuffix       = ".dlq"
	DefaultBatchSize       = 50000
	DefaultBatchBytes      = 6 << 20
	DefaultWriters         = 1
	DefaultFlushInterval   = time.Second
	DefaultMaxMessageBytes = 1 << 20

	DefaultSessionTimeout   = 10 * time.Second
	DefaultRebalanceTimeout = 30 * time.Second
)

// ErrNoBrokers is returned by Run when Config.Brokers is empty.
var ErrNoBrokers = errors.New("ingest: no Kafka brokers configured")

// Topic is a topic to consume and the decoder for its message values.
type Topic struct {
	// Name is the Kafka topic. Its dead letters go to Name + Config.DLQSuffix.
	Name string
	// Decoder decodes the topic's message values.
	//
	// Default: CloudEvents.
	Decoder Decoder
}

// Config configures Run. Only Brokers is required.
type Config struct {
	// Brokers are the bootstrap addresses (host:port) of the Kafka cluster.
	//
	// Required; Run returns ErrNoBrokers without them.
	Brokers []string

	// Kafka says how to connect to Brokers (TLS, SASL). Every connection of the worker uses it: the consumer group,
	// the dead-letter producer and the topic metadata requests. A connection failure that retrying cannot cure (a
	// refused password, an untrusted certificate: kafkaconn.Permanent) makes Run return it.
	//
	// Default: plaintext without authentication.
	Kafka kafkaconn.Config

	// GroupID is the consumer group. Workers with the same GroupID share the topics' partitions; committed offsets
	// belong to the group. The first run of a new group reads every topic from the earliest offset, so nothing
	// produced before the first worker started is missed.
	//
	// Default: "leadthrough-ingest" (DefaultGroupID).
	GroupID string

	// Topics are the topics to consume, each with its decoder. A topic that does not exist yet is created through
	// the broker's automatic topic creation when the broker allows it; otherwise Run waits for it.
	//
	// Default: [{Name: "crm.events", Decoder: CloudEvents}].
	Topics []Topic

	// DLQSuffix names each topic's dead-letter topic: <topic><DLQSuffix>. Dead-letter topics are created
	// automatically on first use when the broker allows it.
	//
	// Default: ".dlq" (DefaultDLQSuffix).
	DLQSuffix string

	// BatchSize is the number of events (plus dead letters) after which the current batch is written. A message is
	// never split across batches, so a fanned-out message may overshoot it; a batch's memory is bounded by
	// BatchBytes as well. With a StreamingSink (ClickHouse over the native protocol) and one writer, a batch is one
	// block of an insert that takes the batches of up to 5 s or a million messages, and ends as soon as a batch
	// was cut by FlushInterval or at the end of a backlog (nothing more is waiting); offsets are committed when the
	// insert ends, which ClickHouse finishes while the next insert fills. Otherwise each batch is its own insert,
	// committed when it is written.
	//
	// Default: 50000 (DefaultBatchSize).
	BatchSize int

	// BatchBytes bounds a batch by the size of its messages' values, whichever of it and BatchSize is reached
	// first. The worker holds at most Writers+1 batches (being written, and one being filled), so this bounds its memory:
	// a decoded event takes about twice its message's size.
	//
	// Default: 6 MiB (DefaultBatchBytes): with the rest of the pipeline, a worker stays under 256 MB resident.
	BatchBytes int

	// Writers is the number of batches written to the sink at once, each as its own insert (more than one turns
	// off a StreamingSink's streaming). Batches are still committed in order, each only once it and every batch
	// before it were written.
	//
	// Default: 1 (DefaultWriters): one writer streams into ClickHouse, which on a small machine is faster than
	// several inserts at once and holds less memory, see docs/benchmarks.md.
	Writers int

	// DecodeWorkers is the number of goroutines that decode and validate messages in parallel. Batches keep each
	// partition's order whatever the number.
	//
	// Default: the number of CPUs the process may use (runtime.GOMAXPROCS).
	DecodeWorkers int

	// FlushInterval bounds how long a non-empty batch waits for more messages: it is written at the latest this
	// long after its first message arrived, and a batch cut by it ends the insert it is part of. After a full batch
	// (a backlog), a partial batch does not wait: it is cut, and ends its insert, once the worker has read every
	// partition to its end (by the high watermark of the last fetch). See BatchSize.
	//
	// Default: 1s (DefaultFlushInterval).
	FlushInterval time.Duration

	// MaxMessageBytes is the largest message value that is decoded; a larger one is dead-lettered with reason
	// "oversized" without being decoded. The consumer's fetch size is derived from it.
	//
	// Default: 1 MiB (DefaultMaxMessageBytes).
	MaxMessageBytes int

	// SessionTimeout is how long the group coordinator waits for a heartbeat from this worker before it declares
	// the worker dead and hands its partitions to the others. It bounds how long the partitions of a worker that
	// crashed (or was SIGKILLed) stay unread, and how long a restarted worker waits for its dead predecessor's
	// session to expire before the group settles. Heartbeats go out every SessionTimeout/5. The broker must allow
	// it: Apache Kafka's group.min.session.timeout.ms and group.max.session.timeout.ms default to 6s and 30m.
	//
	// Default: 10s (DefaultSessionTimeout). kafka-go's own default, 30s, kept the partitions of a killed worker
	// unread for over half a minute.
	SessionTimeout time.Duration

	// RebalanceTimeout is how long the coordinator waits, once a rebalance started, for every live worker to
	// rejoin the group; a worker that does not is dropped from the group. A worker also gives up on a join that
	// the coordinator has not answered within RebalanceTimeout plus 5s, and joins again.
	//
	// Default: 30s (DefaultRebalanceTimeout).
	RebalanceTimeout time.Duration

	// Logger receives the worker's structured logs: startup, shutdown, and every failed write or commit at WARN.
	// Nothing is logged per message.
	//
	// Default: slog.Default().
	Logger *slog.Logger

	// Metrics, if set, receives the worker's metrics. See NewMetrics.
	//
	// Default: nil (metrics are kept but not exported).
	Metrics *Metrics
}

// withDefaults returns cfg with every zero field set to its default, or an error if cfg cannot work.
func (cfg Config) withDefaults() (Config, error) {
	if len(cfg.Brokers) == 0 {
		return cfg, ErrNoBrokers
	}
	if err := cfg.Kafka.Validate(); err != nil {
		return cfg, fmt.Errorf("ingest: %w", err)
	}
	if cfg.GroupID == "" {
		cfg.GroupID = DefaultGroupID
	}
	if len(cfg.Topics) == 0 {
		cfg.Topics = []Topic{{Name: DefaultTopic, Decoder: CloudEvents}}
	} else {
		cfg.Topics = append([]Topic(nil), cfg.Topics...) // never write to the caller's slice
	}
	if cfg.DLQSuffix == "" {
		cfg.DLQSuffix = DefaultDLQSuffix
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.BatchBytes <= 0 {
		cfg.BatchBytes = DefaultBatchBytes
	}
	if cfg.Writers <= 0 {
		cfg.Writers = DefaultWriters
	}
	if cfg.DecodeWorkers <= 0 {
		cfg.DecodeWorkers = runtime.GOMAXPROCS(0)
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = DefaultFlushInterval
	}
	if cfg.MaxMessageBytes <= 0 {
		cfg.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if cfg.SessionTimeout <= 0 {
		cfg.SessionTimeout = DefaultSessionTimeout
	}
	if cfg.RebalanceTimeout <= 0 {
		cfg.RebalanceTimeout = DefaultRebalanceTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}

	names := make(map[string]bool, len(cfg.Topics))
	for i := range cfg.Topics {
		t := &cfg.Topics[i]
		if t.Name == "" {
			return cfg, fmt.Errorf("ingest: topic %d has no name", i)
		}
		if names[t.Name] {
			return cfg, fmt.Errorf("ingest: topic %q is listed twice", t.Name)
		}
		names[t.Name] = true
		if t.Decoder == nil {
			t.Decoder = CloudEvents
		}
	}
	for _, t := range cfg.Topics {
		if names[t.Name+cfg.DLQSuffix] {
			// Dead letters would be consumed again and dead-lettered again, forever.
			return cfg, fmt.Errorf("ingest: dead-letter topic %q of %q is also consumed", t.Name+cfg.DLQSuffix, t.Name)
		}
	}
	return cfg, nil
}

// heartbeatInterval is how often the worker tells the coordinator it is alive. A fifth of the session timeout
// leaves room for a few lost heartbeats, and lets the live workers learn of a rebalance (a heartbeat's answer is how
// they learn it) soon after it began.
func (cfg Config) heartbeatInterval() time.Duration { return cfg.SessionTimeout / 5 }

func (cfg Config) topicNames() []string {
	names := make([]string, len(cfg.Topics))
	for i, t := range cfg.Topics {
		names[i] = t.Name
	}
	return names
}

func (cfg Config) dlqTopicNames() []string {
	names := make([]string, len(cfg.Topics))
	for i, t := range cfg.Topics {
		names[i] = t.Name + cfg.DLQSuffix
	}
	return names
}
