package ingest_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/leadthrough/leadthrough/ingest"
	"github.com/leadthrough/leadthrough/internal/pipelinetest"
	"github.com/leadthrough/leadthrough/internal/testenv"
	"github.com/leadthrough/leadthrough/kafkaconn"
	"github.com/leadthrough/leadthrough/publish"
)

func saslConfig(k testenv.SASLKafka, mechanism, password string) kafkaconn.Config {
	return kafkaconn.Config{TLS: k.TLS(), SASL: kafkaconn.SASL{Mechanism: mechanism, Username: k.User,
		Password: kafkaconn.Secret(password)}}
}

// TestRunOverSASLSSLStoresEventsAndDeadLettersWithEveryMechanism runs the whole path over the SASL_SSL listener:
// publish, consume as a group, insert into ClickHouse, dead-letter, commit.
func TestRunOverSASLSSLStoresEventsAndDeadLettersWithEveryMechanism(t *testing.T) {
	k := testenv.KafkaSASL(t)
	for _, m := range kafkaconn.Mechanisms {
		t.Run(m, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			env := pipelinetest.New(t, "sasl")
			topic := env.Name("sasl-")
			conn := saslConfig(k, m, k.Password)
			msgs := append(goodEvents(t, 0, 20), kafka.Message{Key: []byte("D-1"), Value: []byte(`{"not":"an event"`)})
			if err := publish.Raw(ctx, publish.Config{Brokers: []string{k.Addr}, Topic: topic, Kafka: conn}, msgs); err != nil {
				t.Fatal(err)
			}

			var logs bytes.Buffer
			logger := slog.New(slog.NewTextHandler(&syncWriter{w: &logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
			w := env.Ingest(ctx, t, ingest.Config{Brokers: []string{k.Addr}, Kafka: conn, Topics: []ingest.Topic{{Name: topic}},
				Logger: logger})
			w.WaitStored(ctx, t, 20)
			// The dead letter went out over SASL_SSL too; read it back through the plaintext listener.
			dead := pipelinetest.ReadMessages(t, ctx, env.Kafka, topic+ingest.DefaultDLQSuffix, 1)
			if got := pipelinetest.Headers(dead[0])[ingest.HeaderReason]; got != "malformed_json" {
				t.Errorf("dead letter reason %q, want malformed_json", got)
			}
			w.Stop(t)
			if !strings.Contains(logs.String(), "connection=\"TLS (private CA), SASL "+m+" as "+k.User+"\"") {
				t.Errorf("the start is not logged with the connection:\n%s", logs.String())
			}
			if strings.Contains(logs.String(), k.Password) {
				t.Errorf("the logs show the password:\n%s", logs.String())
			}
		})
	}
}

// syncWriter serialises the writes of the worker's goroutines.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// TestRunStopsAtOnceWhenKafkaRefusesTheConnection: a refused password or an untrusted certificate does not get
// better by waiting, so Run returns it, in one line that names Kafka and never the password.
func TestRunStopsAtOnceWhenKafkaRefusesTheConnection(t *testing.T) {
	k := testenv.KafkaSASL(t)
	const wrong = "wrong-Passw0rd-5512"
	untrusted := saslConfig(k, kafkaconn.ScramSHA256, k.Password)
	untrusted.TLS = untrusted.TLS.Clone()
	untrusted.TLS.RootCAs = nil // the system's CAs, which never signed the test CA
	for _, tc := range []struct {
		name string
		conn kafkaconn.Config
		kind error
		want string
	}{
		{"wrong password", saslConfig(k, kafkaconn.ScramSHA512, wrong), kafkaconn.ErrAuthentication,
			"Kafka at " + k.Addr + ": SASL authentication failed"},
		{"untrusted certificate", untrusted, kafkaconn.ErrTLS,
			"Kafka at " + k.Addr + ": TLS: certificate signed by unknown authority"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			cfg := config(t, k.Addr, unique(t, "refused"))
			cfg.Kafka = tc.conn
			start := time.Now()
			err := ingest.Run(ctx, cfg, &memSink{})
			took := time.Since(start)
			t.Logf("after %v: %v", took.Round(time.Millisecond), err)
			switch {
			case err == nil:
				t.Fatal("Run returned nil")
			case took > 10*time.Second:
				t.Errorf("Run took %v to give up", took)
			case !errors.Is(err, tc.kind):
				t.Errorf("error does not match %v: %v", tc.kind, err)
			case !strings.HasPrefix(err.Error(), tc.want):
				t.Errorf("error does not start with %q: %v", tc.want, err)
			case strings.ContainsAny(err.Error(), "\n\r"):
				t.Errorf("error is not one line: %q", err)
			case strings.Contains(err.Error(), wrong) || strings.Contains(err.Error(), k.Password):
				t.Errorf("error shows a password: %v", err)
			}
		})
	}
}
