package ingest

import (
	"errors"
	"log/slog"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestConfigDefaultsAreTheDocumentedOnes(t *testing.T) {
	cfg, err := Config{Brokers: []string{"127.0.0.1:9092"}}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.GroupID != "leadthrough-ingest" || cfg.DLQSuffix != ".dlq" || cfg.BatchSize != 50000 ||
		cfg.BatchBytes != 6<<20 || cfg.DecodeWorkers != runtime.GOMAXPROCS(0) ||
		cfg.FlushInterval != time.Second || cfg.MaxMessageBytes != 1<<20 || cfg.Logger != slog.Default() ||
		cfg.Metrics == nil || cfg.SessionTimeout != 10*time.Second || cfg.RebalanceTimeout != 30*time.Second ||
		cfg.heartbeatInterval() != 2*time.Second {
		t.Errorf("defaults: %+v", cfg)
	}
	if len(cfg.Topics) != 1 || cfg.Topics[0].Name != "crm.events" || cfg.Topics[0].Decoder != CloudEvents {
		t.Errorf("default topics: %+v", cfg.Topics)
	}
}

func TestConfigGivesATopicWithoutDecoderCloudEventsWithoutTouchingTheCallersSlice(t *testing.T) {
	topics := []Topic{{Name: "a"}}
	cfg, err := Config{Brokers: []string{"b:9092"}, Topics: topics}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Topics[0].Decoder != CloudEvents {
		t.Errorf("decoder %v, want CloudEvents", cfg.Topics[0].Decoder)
	}
	if topics[0].Decoder != nil {
		t.Error("withDefaults wrote to the caller's Topics")
	}
}

func TestConfigRejectsWhatCannotWork(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no brokers", Config{}, "no Kafka brokers"},
		{"topic without a name", Config{Brokers: []string{"b:9092"}, Topics: []Topic{{}}}, "has no name"},
		{"topic listed twice", Config{Brokers: []string{"b:9092"}, Topics: []Topic{{Name: "a"}, {Name: "a"}}}, "listed twice"},
		{"dead-letter topic consumed", Config{Brokers: []string{"b:9092"}, Topics: []Topic{{Name: "a"}, {Name: "a.dlq"}}},
			`dead-letter topic "a.dlq" of "a" is also consumed`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.cfg.withDefaults()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
	if _, err := (Config{}).withDefaults(); !errors.Is(err, ErrNoBrokers) {
		t.Errorf("no brokers: %v, want ErrNoBrokers", err)
	}
}

func TestBackoffDoublesAndIsCapped(t *testing.T) {
	tests := []struct {
		attempt int
		want    time.Duration
	}{
		{1, 100 * time.Millisecond}, {2, 200 * time.Millisecond}, {4, 800 * time.Millisecond},
		{9, 25600 * time.Millisecond}, {10, 30 * time.Second}, {1000, 30 * time.Second},
	}
	for _, tt := range tests {
		if got := backoff(tt.attempt); got != tt.want {
			t.Errorf("backoff(%d) = %v, want %v", tt.attempt, got, tt.want)
		}
	}
}
