package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/leadthrough/leadthrough/broker"
	"github.com/leadthrough/leadthrough/event"
	"github.com/leadthrough/leadthrough/simulate"
)

// TestSimulatePublishesWhatGenerateReturns runs `leadthrough simulate` against the embedded broker (one partition,
// so the topic keeps the order) and checks that the topic holds exactly Generate's events, encoded, in order:
// streaming and batching lose, reorder or add nothing, duplicates and late arrivals included.
func TestSimulatePublishesWhatGenerateReturns(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := broker.Start(broker.Config{Listen: "127.0.0.1:0", Partitions: 1, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	const topic = "sim.events"
	var stdout, stderr bytes.Buffer
	err = runSimulate(ctx, []string{"--brokers", b.Addr(), "--topic", topic, "--end", "2026-03-31T00:00:00Z", "--days", "60",
		"--seed", "3", "--managers", "4", "--shuffle-ratio", "0.1", "--duplicate-ratio", "0.05"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("simulate: %v\n%s", err, stderr.String())
	}
	want, err := simulate.Generate(simulate.Config{End: time.Date(2026, 3, 31, 0, 0, 0, 0, time.UTC), Days: 60, Seed: 3,
		Managers: 4, ShuffleRatio: 0.1, DuplicateRatio: 0.05})
	if err != nil {
		t.Fatal(err)
	}
	// 4 first-line managers and the rep promoted among them (simulate.Config.Promotion).
	if !strings.HasPrefix(stdout.String(), fmt.Sprintf("published %d events for 5 managers", len(want))) {
		t.Errorf("stdout %q, want it to report %d events", stdout.String(), len(want))
	}

	conn, err := kafka.DialLeader(ctx, "tcp", b.Addr(), topic, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for i, e := range want {
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		m, err := conn.ReadMessage(1 << 20)
		if err != nil {
			t.Fatalf("message %d of %d: %v", i, len(want), err)
		}
		value, err := event.Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		if string(m.Key) != e.Key() || !bytes.Equal(m.Value, value) {
			t.Fatalf("message %d is %s %s, want %s %s", i, m.Key, m.Value, e.Key(), value)
		}
	}
	_ = conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if m, err := conn.ReadMessage(1 << 20); err == nil {
		t.Fatalf("an extra message after the %d expected: %s", len(want), m.Value)
	}
}

func TestSimulateRejectsAnInvalidConfigAsUsage(t *testing.T) {
	err := runSimulate(context.Background(), []string{"--brokers", "127.0.0.1:1", "--days", "-3"}, io.Discard, io.Discard)
	if err == nil || !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "days must be between") {
		t.Fatalf("runSimulate with --days -3 returned %v, want a usage error about days", err)
	}
}
