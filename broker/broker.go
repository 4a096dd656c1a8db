// Package broker runs leadthrough's embedded Kafka-compatible broker (franz-go's kfake): one process, one node, topics
// created on first use. It serves `leadthrough broker`, the demo and fast tests, so that a laptop needs no JVM.
//
// It is not Apache Kafka: it has no replication and its durability is "written to the page cache" (see kfake.SyncWrites).
// Production runs on a real Kafka cluster; nothing in the data path may depend on this package.
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Defaults of Config.
const (
	DefaultListen     = "127.0.0.1:9092"
	DefaultPartitions = 3
)

// Config configures the embedded broker. The zero value is usable: an in-memory broker on DefaultListen.
type Config struct {
	// Listen is the host:port to accept Kafka clients on. The broker binds exactly this address (not every interface)
	// and advertises it in metadata, so it must be an address clients can reach: an unspecified host such as
	// ":9092" or "0.0.0.0:9092" is advertised as-is, which only local clients can use. Port 0 picks a free port;
	// Addr reports it.
	//
	// Default: "127.0.0.1:9092" (DefaultListen).
	Listen string

	// DataDir, if set, makes the broker persist topics, records and committed group offsets to this directory and
	// reload them on the next Start with the same directory. The directory is created if needed. Records are
	// written through the OS page cache, like Kafka's default flush policy: a clean Close keeps everything, a
	// machine crash may lose the last writes.
	//
	// Default: "" (everything lives in memory and is gone after Close).
	DataDir string

	// Partitions is the partition count of topics created automatically or by CreateTopics with -1 partitions.
	// Automatic creation happens on a metadata request (v4+) that allows it, such as a kafka-go Writer's with
	// AllowAutoTopicCreation; unlike Apache Kafka, older metadata versions (kafka-go's Conn and Reader use v1)
	// never create topics here.
	//
	// Default: 3 (DefaultPartitions).
	Partitions int

	// Logger receives the broker's own log lines: kfake errors and warnings at their level, its request-level
	// information at Debug.
	//
	// Default: slog.Default().
	Logger *slog.Logger
}

// Broker is a running embedded broker.
type Broker struct {
	cluster *kfake.Cluster
	addr    string

	mu      sync.Mutex
	seen    map[string]bool // topic names metadata requests may have auto-created, already persisted
	scratch int
}

// Start starts a single-node broker on cfg.Listen with automatic topic creation. It returns once the listener is
// bound, so a client may connect to Addr as soon as Start returns.
func Start(cfg Config) (*Broker, error) {
	if cfg.Listen == "" {
		cfg.Listen = DefaultListen
	}
	if cfg.Partitions <= 0 {
		cfg.Partitions = DefaultPartitions
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	host, _, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("broker listen address %q: %w", cfg.Listen, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		cfg.Logger.Warn("broker listens on all interfaces and advertises an unspecified address: remote clients will not be able to follow it; listen on a reachable host instead",
			"listen", cfg.Listen)
	}

	// kfake always asks for 127.0.0.1:<port>; the listen function substitutes the configured address. There is a
	// single broker, so it is called exactly once. groupListener makes a consumer that vanished while it waited in
	// a rebalance leave its group (see conn.go).
	listen := func(network, _ string) (net.Listener, error) {
		ln, err := net.Listen(network, cfg.Listen)
		if err != nil {
			return nil, err
		}
		return groupListener{ln}, nil
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.ListenFn(listen),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(cfg.Partitions),
		kfake.WithLogger(slogAdapter{cfg.Logger}),
	}
	if cfg.DataDir != "" {
		opts = append(opts, kfake.DataDir(cfg.DataDir))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("start embedded broker on %s: %w", cfg.Listen, err)
	}
	addrs := c.ListenAddrs()
	if len(addrs) != 1 {
		c.Close()
		return nil, errors.New("start embedded broker: expected exactly one listener")
	}
	b := &Broker{cluster: c, addr: addrs[0], seen: map[string]bool{}}
	if cfg.DataDir != "" {
		c.ControlKey(int16(kmsg.Metadata), b.persistAutoCreated)
	}
	return b, nil
}

// persistAutoCreated makes topics created by a metadata request survive a crash. kfake saves its topic list
// (topics.json) when topics are created by CreateTopics or deleted, but not when a metadata request creates one, so
// after a kill -9 such a topic (a dead-letter topic, the demo's crm.events) was forgotten with its records. For each
// topic name a metadata request may create that this process has not seen yet, it has the cluster save its topic
// list once more, after the request: creating and deleting a scratch topic does that. It observes the request and
// lets the cluster handle it.
func (b *Broker) persistAutoCreated(req kmsg.Request) (kmsg.Response, error, bool) {
	m, ok := req.(*kmsg.MetadataRequest)
	if !ok || !m.AllowAutoTopicCreation || m.GetVersion() < 4 {
		return nil, nil, false
	}
	fresh := false
	b.mu.Lock()
	for _, t := range m.Topics {
		if t.Topic != nil && !b.seen[*t.Topic] {
			b.seen[*t.Topic], fresh = true, true
		}
	}
	b.mu.Unlock()
	if fresh {
		// Admin calls wait for the cluster's loop, which is handling this request: run after it, not inside it.
		go func() {
			b.mu.Lock()
			b.scratch++
			name := fmt.Sprintf("__leadthrough_persist_%d", b.scratch)
			b.mu.Unlock()
			if err := b.cluster.CreateTopic(name, 1, nil); err == nil {
				_ = b.cluster.DeleteTopic(name)
			}
		}()
	}
	return nil, nil, false
}

// Addr is the host:port the broker listens on and advertises, with the actual port when Listen asked for port 0.
func (b *Broker) Addr() string { return b.addr }

// DeleteRecords removes a partition's messages before offset, as retention does: a consumer whose committed offset
// is older must carry on from the first message that is left.
func (b *Broker) DeleteRecords(topic string, partition int, offset int64) error {
	return b.cluster.DeleteRecords(topic, int32(partition), offset)
}

// Close stops accepting clients, persists state when DataDir is set, and releases the port. It is safe to call
// more than once.
func (b *Broker) Close() { b.cluster.Close() }

// slogAdapter forwards kfake's printf-style log lines to slog.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Logf(level kfake.LogLevel, format string, args ...any) {
	var lvl slog.Level
	switch level {
	case kfake.LogLevelError:
		lvl = slog.LevelError
	case kfake.LogLevelWarn:
		lvl = slog.LevelWarn
	case kfake.LogLevelInfo:
		lvl = slog.LevelDebug // kfake logs every request at info: noise for an operator
	default:
		lvl = slog.LevelDebug - 4
	}
	ctx := context.Background()
	if !a.l.Enabled(ctx, lvl) {
		return
	}
	a.l.Log(ctx, lvl, fmt.Sprintf(format, args...), "component", "kfake")
}
