package kafkaconn_test

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/leadthrough/leadthrough/kafkaconn"
)

const password = "s3cret-Passw0rd"

func TestConfigNeverPrintsThePassword(t *testing.T) {
	cfg := kafkaconn.Config{TLS: &tls.Config{ServerName: "kafka.example.com"},
		SASL: kafkaconn.SASL{Mechanism: kafkaconn.ScramSHA512, Username: "alice", Password: password}}
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("connecting", "kafka", cfg, "sasl", cfg.SASL, "password", cfg.SASL.Password)
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("connecting", "kafka", cfg, "sasl", cfg.SASL)
	js, err := json.Marshal(cfg.SASL)
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]string{
		"String":      cfg.String(),
		"%v":          fmt.Sprintf("%v", cfg),
		"%+v":         fmt.Sprintf("%+v", cfg),
		"%#v":         fmt.Sprintf("%#v", cfg),
		"%v SASL":     fmt.Sprintf("%v", cfg.SASL),
		"%+v SASL":    fmt.Sprintf("%+v", cfg.SASL),
		"%#v SASL":    fmt.Sprintf("%#v", cfg.SASL),
		"%s password": fmt.Sprintf("%s", cfg.SASL.Password),
		"slog":        logged.String(),
		"json":        string(js),
	} {
		if strings.Contains(s, password) {
			t.Errorf("%s shows the password: %s", name, s)
		}
	}
	if got, want := cfg.String(), "TLS (server name kafka.example.com), SASL SCRAM-SHA-512 as alice"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got := (kafkaconn.Config{}).String(); got != "plaintext" {
		t.Errorf("zero Config String() = %q, want plaintext", got)
	}
}

func TestValidateRejectsIncompleteSASL(t *testing.T) {
	for _, tc := range []struct {
		name string
		sasl kafkaconn.SASL
		want string // "" for valid
	}{
		{"none", kafkaconn.SASL{}, ""},
		{"PLAIN", kafkaconn.SASL{Mechanism: "PLAIN", Username: "u", Password: "p"}, ""},
		{"mechanism is case-insensitive", kafkaconn.SASL{Mechanism: "scram-sha-256", Username: "u", Password: "p"}, ""},
		{"unknown mechanism", kafkaconn.SASL{Mechanism: "GSSAPI", Username: "u", Password: "p"}, `unknown mechanism "GSSAPI"`},
		{"no username", kafkaconn.SASL{Mechanism: "SCRAM-SHA-512", Password: "p"}, "needs a username and a password"},
		{"no password", kafkaconn.SASL{Mechanism: "PLAIN", Username: "u"}, "needs a username and a password"},
		{"credentials without mechanism", kafkaconn.SASL{Username: "u", Password: password}, "no mechanism"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := kafkaconn.Config{SASL: tc.sasl}
			err := cfg.Validate()
			_, _, derr := dialerAndTransport(cfg)
			switch {
			case tc.want == "" && (err != nil || derr != nil):
				t.Fatalf("Validate() = %v, Dialer/Transport: %v; want both nil", err, derr)
			case tc.want == "":
				return
			case err == nil || !strings.Contains(err.Error(), tc.want):
				t.Fatalf("Validate() = %v, want it to contain %q", err, tc.want)
			case !errors.Is(derr, kafkaconn.ErrConfig) || !kafkaconn.Permanent(derr):
				t.Fatalf("Dialer/Transport error %v does not match ErrConfig", derr)
			case strings.Contains(err.Error(), password):
				t.Fatalf("error shows the password: %v", err)
			}
		})
	}
}

func dialerAndTransport(cfg kafkaconn.Config) (any, any, error) {
	d, err := cfg.Dialer("test")
	if err != nil {
		return nil, nil, err
	}
	tr, err := cfg.Transport("test")
	return d, tr, err
}

func TestDialerAndTransportCarryTLSAndSASL(t *testing.T) {
	tlsConfig := &tls.Config{ServerName: "kafka.example.com"}
	for _, m := range kafkaconn.Mechanisms {
		cfg := kafkaconn.Config{TLS: tlsConfig, SASL: kafkaconn.SASL{Mechanism: m, Username: "u", Password: password}}
		d, err := cfg.Dialer("test")
		if err != nil {
			t.Fatal(err)
		}
		tr, err := cfg.Transport("test")
		if err != nil {
			t.Fatal(err)
		}
		if d.SASLMechanism == nil || d.SASLMechanism.Name() != m || tr.SASL == nil || tr.SASL.Name() != m {
			t.Errorf("%s: dialer mechanism %v, transport mechanism %v", m, d.SASLMechanism, tr.SASL)
		}
		if d.TLS == nil || d.TLS.ServerName != "kafka.example.com" || tr.TLS == nil || tr.TLS.ServerName != "kafka.example.com" {
			t.Errorf("%s: TLS not carried: dialer %v, transport %v", m, d.TLS, tr.TLS)
		}
		if d.TLS == tlsConfig || tr.TLS == tlsConfig {
			t.Errorf("%s: the caller's *tls.Config is shared, not cloned", m)
		}
	}
	d, err := kafkaconn.Config{}.Dialer("test")
	if err != nil || d.TLS != nil || d.SASLMechanism != nil {
		t.Errorf("zero Config: dialer %+v, %v; want plaintext without SASL", d, err)
	}
}
