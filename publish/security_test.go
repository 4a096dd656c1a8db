package publish_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/leadthrough/leadthrough/event"
	"github.com/leadthrough/leadthrough/internal/testenv"
	"github.com/leadthrough/leadthrough/kafkaconn"
	"github.com/leadthrough/leadthrough/publish"
)

func saslConfig(k testenv.SASLKafka, mechanism, password string) kafkaconn.Config {
	return kafkaconn.Config{TLS: k.TLS(), SASL: kafkaconn.SASL{Mechanism: mechanism, Username: k.User,
		Password: kafkaconn.Secret(password)}}
}

func events(n int) []event.Event {
	evs := make([]event.Event, n)
	for i := range evs {
		evs[i] = event.Event{Source: "crm/test", ID: fmt.Sprintf("evt-%d", i), Type: event.DealCreated,
			Time: time.Date(2026, 3, 2, 14, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Minute),
			Data: event.Data{DealID: fmt.Sprintf("D-%d", i), OwnerID: "U-7"}}
	}
	return evs
}

// TestEventsArePublishedOverSASLSSLWithEveryMechanism publishes through the SASL_SSL listener and reads the events
// back through the plaintext listener of the same broker.
func TestEventsArePublishedOverSASLSSLWithEveryMechanism(t *testing.T) {
	k := testenv.KafkaSASL(t)
	plaintext := testenv.Kafka(t)
	for _, m := range kafkaconn.Mechanisms {
		t.Run(m, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			topic := fmt.Sprintf("publish-sasl-%s-%d", strings.ToLower(m), time.Now().UnixNano())
			evs := events(10)
			w, err := publish.NewWriter(publish.Config{Brokers: []string{k.Addr}, Topic: topic, Kafka: saslConfig(k, m, k.Password)})
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Write(ctx, evs[:5]); err != nil {
				t.Fatal(err)
			}
			if err := w.Write(ctx, evs[5:]); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}

			r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{plaintext}, Topic: topic,
				GroupID: topic, StartOffset: kafka.FirstOffset, MaxWait: 200 * time.Millisecond})
			defer r.Close()
			seen := map[string]bool{}
			for len(seen) < len(evs) {
				msg, err := r.ReadMessage(ctx)
				if err != nil {
					t.Fatalf("read back %d of %d events: %v", len(seen), len(evs), err)
				}
				e, err := event.Decode(msg.Value)
				if err != nil {
					t.Fatal(err)
				}
				seen[e.ID] = true
			}
		})
	}
}

// TestPublishFailsAtOnceWhenKafkaRefusesTheConnection: a refused password or an untrusted certificate is reported
// at once, in one line that names Kafka and the broker, and never the password.
func TestPublishFailsAtOnceWhenKafkaRefusesTheConnection(t *testing.T) {
	k := testenv.KafkaSASL(t)
	const wrong = "wrong-Passw0rd-9923"
	untrusted := saslConfig(k, kafkaconn.Plain, k.Password)
	untrusted.TLS.RootCAs = nil
	for _, tc := range []struct {
		name string
		conn kafkaconn.Config
		kind error
		want string
	}{
		{"wrong password", saslConfig(k, kafkaconn.ScramSHA256, wrong), kafkaconn.ErrAuthentication,
			"Kafka at " + k.Addr + ": SASL authentication failed"},
		{"untrusted certificate", untrusted, kafkaconn.ErrTLS,
			"Kafka at " + k.Addr + ": TLS: certificate signed by unknown authority"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			start := time.Now()
			err := publish.Events(ctx, publish.Config{Brokers: []string{k.Addr}, Topic: "publish-refused", Kafka: tc.conn}, events(3))
			took := time.Since(start)
			t.Logf("after %v: %v", took.Round(time.Millisecond), err)
			switch {
			case err == nil:
				t.Fatal("publish succeeded")
			case took > 5*time.Second:
				t.Errorf("took %v to fail", took)
			case !errors.Is(err, tc.kind):
				t.Errorf("error does not match %v: %v", tc.kind, err)
			case !strings.Contains(err.Error(), tc.want):
				t.Errorf("error does not contain %q: %v", tc.want, err)
			case strings.ContainsAny(err.Error(), "\n\r"):
				t.Errorf("error is not one line: %q", err)
			case strings.Contains(err.Error(), wrong) || strings.Contains(err.Error(), k.Password):
				t.Errorf("error shows a password: %v", err)
			}
		})
	}
}
