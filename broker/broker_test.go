package broker_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/leadthrough/leadthrough/broker"
)

func start(t *testing.T, cfg broker.Config) *broker.Broker {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := broker.Start(cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(b.Close)
	return b
}

func produce(t *testing.T, ctx context.Context, addr, topic string, values ...string) {
	t.Helper()
	w := &kafka.Writer{
		Addr:                   kafka.TCP(addr),
		Topic:                  topic,
		RequiredAcks:           kafka.RequireAll,
		AllowAutoTopicCreation: true,
		BatchTimeout:           5 * time.Millisecond,
		// Everything to partition 0, so order is kept and readAll sees it.
		Balancer: kafka.BalancerFunc(func(kafka.Message, ...int) int { return 0 }),
	}
	defer w.Close()
	msgs := make([]kafka.Message, len(values))
	for i, v := range values {
		msgs[i] = kafka.Message{Value: []byte(v)}
	}
	// The first write to a new topic can fail while the topic is being created.
	for attempt := 0; ; attempt++ {
		err := w.WriteMessages(ctx, msgs...)
		if err == nil {
			return
		}
		if attempt == 20 || ctx.Err() != nil {
			t.Fatalf("produce to %s: %v", topic, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// consume reads n messages with a consumer group and commits them.
func consume(t *testing.T, ctx context.Context, addr, topic, group string, n int) []string {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:     []string{addr},
		GroupID:     group,
		Topic:       topic,
		StartOffset: kafka.FirstOffset,
		MaxWait:     100 * time.Millisecond,
	})
	defer r.Close()
	var got []string
	for len(got) < n {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("fetch from %s as %s after %d messages: %v", topic, group, len(got), err)
		}
		if err := r.CommitMessages(ctx, m); err != nil {
			t.Fatalf("commit: %v", err)
		}
		got = append(got, string(m.Value))
	}
	return got
}

// readAll reads a partition from the first offset without a group.
func readAll(t *testing.T, ctx context.Context, addr, topic string, n int) []string {
	t.Helper()
	conn, err := kafka.DialLeader(ctx, "tcp", addr, topic, 0)
	if err != nil {
		t.Fatalf("dial leader: %v", err)
	}
	defer conn.Close()
	var got []string
	for len(got) < n {
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		m, err := conn.ReadMessage(1 << 20)
		if err != nil {
			t.Fatalf("read %s after %d messages: %v", topic, len(got), err)
		}
		got = append(got, string(m.Value))
	}
	return got
}

func TestStartAppliesDefaults(t *testing.T) {
	b := start(t, broker.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	produce(t, ctx, b.Addr(), "defaults", "x")
	conn, err := kafka.DialContext(ctx, "tcp", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	parts, err := conn.ReadPartitions("defaults")
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != broker.DefaultPartitions {
		t.Errorf("auto-created topic has %d partitions, want the default %d", len(parts), broker.DefaultPartitions)
	}
}

func TestStartBindsExactlyTheListenAddress(t *testing.T) {
	tests := []struct {
		name   string
		listen string
	}{
		{"loopback with a free port", "127.0.0.1:0"},
		{"localhost name", "localhost:0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := start(t, broker.Config{Listen: tt.listen, Partitions: 5})
			host, port, err := net.SplitHostPort(b.Addr())
			if err != nil {
				t.Fatal(err)
			}
			if port == "0" {
				t.Errorf("Addr() = %s, want the actual port", b.Addr())
			}
			if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
				t.Errorf("Addr() = %s, want a loopback address", b.Addr())
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			produce(t, ctx, b.Addr(), "five", "x")
			conn, err := kafka.DialContext(ctx, "tcp", b.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			parts, err := conn.ReadPartitions("five")
			if err != nil {
				t.Fatal(err)
			}
			if len(parts) != 5 {
				t.Errorf("auto-created topic has %d partitions, want the configured 5", len(parts))
			}
		})
	}
}

func TestStartFailsWhenTheAddressIsTaken(t *testing.T) {
	b := start(t, broker.Config{})
	if _, err := broker.Start(broker.Config{Listen: b.Addr()}); err == nil {
		t.Fatal("second broker on the same address started")
	} else if !strings.Contains(err.Error(), b.Addr()) {
		t.Errorf("error %q does not name the address", err)
	}
}

func TestConsumerGroupResumesAfterCommittedOffset(t *testing.T) {
	b := start(t, broker.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	topic, group := "group-resume", "group-resume-g"
	produce(t, ctx, b.Addr(), topic, "a", "b", "c")

	if got := consume(t, ctx, b.Addr(), topic, group, 2); strings.Join(got, "") != "ab" {
		t.Fatalf("first reader got %q, want a, b", got)
	}
	// A new member of the same group starts after the committed offset.
	if got := consume(t, ctx, b.Addr(), topic, group, 1); strings.Join(got, "") != "c" {
		t.Fatalf("second reader got %q, want c", got)
	}
}

func TestRestartWithSameDataDirKeepsMessagesAndOffsets(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	topic, group := "persisted", "persisted-g"

	first, err := broker.Start(broker.Config{Listen: "127.0.0.1:0", DataDir: dir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	produce(t, ctx, first.Addr(), topic, "a", "b", "c")
	consume(t, ctx, first.Addr(), topic, group, 1)
	first.Close()

	second := start(t, broker.Config{DataDir: dir})
	if got := readAll(t, ctx, second.Addr(), topic, 3); strings.Join(got, ",") != "a,b,c" {
		t.Errorf("after restart the topic holds %q, want a,b,c", got)
	}
	if got := consume(t, ctx, second.Addr(), topic, group, 2); strings.Join(got, ",") != "b,c" {
		t.Errorf("after restart the group resumed with %q, want b,c", got)
	}
}

func TestRestartWithoutDataDirForgetsEverything(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	first := start(t, broker.Config{})
	produce(t, ctx, first.Addr(), "ephemeral", "a")
	first.Close()

	second := start(t, broker.Config{})
	conn, err := kafka.DialContext(ctx, "tcp", second.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	topics, err := conn.ReadPartitions()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range topics {
		if p.Topic == "ephemeral" {
			t.Fatalf("in-memory broker kept topic %q across a restart", p.Topic)
		}
	}
}

// TestAutoCreatedTopicSurvivesACrash: a topic created by a producer's metadata request (as the dead-letter topics and
// the demo's crm.events are) is on disk with its records while the broker runs, so a kill -9 loses neither. The
// crash is a copy of the data directory taken while the broker runs, opened by a second broker.
func TestAutoCreatedTopicSurvivesACrash(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	running := start(t, broker.Config{DataDir: dir})
	produce(t, ctx, running.Addr(), "auto.created", "a", "b", "c")
	// The topic list is saved just after the request that created the topic: wait for it.
	for !strings.Contains(readFile(t, filepath.Join(dir, "topics.json")), "auto.created") {
		if ctx.Err() != nil {
			t.Fatalf("topics.json never listed the auto-created topic: %s", readFile(t, filepath.Join(dir, "topics.json")))
		}
		time.Sleep(20 * time.Millisecond)
	}
	crashed := t.TempDir()
	if err := os.CopyFS(crashed, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	second := start(t, broker.Config{DataDir: crashed})
	if got := readAll(t, ctx, second.Addr(), "auto.created", 3); strings.Join(got, ",") != "a,b,c" {
		t.Errorf("after the crash the topic holds %q, want a,b,c", got)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}
