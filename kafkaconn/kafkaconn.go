// Package kafkaconn says how leadthrough connects to Kafka: plaintext, TLS (with a private CA, a client certificate,
// a server name) and SASL (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512), as managed Kafka services (Confluent Cloud, Amazon
// MSK, Aiven, Redpanda Cloud) require. From one Config it builds what segmentio/kafka-go needs: a *kafka.Dialer for
// consumer groups and a *kafka.Transport for writers and admin requests. Check dials once and reports, in one line
// that names Kafka and the broker, why a connection cannot work.
//
// It never logs, and no value it returns (errors, String, slog values) ever contains the SASL password.
package kafkaconn

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
)

// SASL mechanisms.
const (
	Plain       = "PLAIN"
	ScramSHA256 = "SCRAM-SHA-256"
	ScramSHA512 = "SCRAM-SHA-512"
)

// Mechanisms are the SASL mechanisms SASL.Mechanism accepts.
var Mechanisms = []string{Plain, ScramSHA256, ScramSHA512}

// DialTimeout bounds one connection attempt, TLS handshake and SASL exchange included, when the caller's context
// sets no earlier deadline.
const DialTimeout = 10 * time.Second

// Config is how to connect to Kafka. The zero Config is plaintext without authentication (the embedded broker,
// a local Kafka).
type Config struct {
	// TLS, when not nil, encrypts every connection and verifies the brokers' certificates with it: against its
	// RootCAs (a private CA) or else the system's roots (what public managed services need), and their names
	// against its ServerName or else each broker's host name. Certificates holds a client certificate for brokers
	// that require one (ssl.client.auth=required).
	//
	// Default: nil (plaintext).
	TLS *tls.Config

	// SASL authenticates every connection.
	//
	// Default: no authentication.
	SASL SASL
}

// SASL configures authentication. Kafka's SASL_SSL listeners need TLS too; SASL without TLS (SASL_PLAINTEXT) sends
// PLAIN credentials in the clear.
type SASL struct {
	// Mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (case-insensitive).
	//
	// Default: "" (no authentication).
	Mechanism string

	// Username and Password are the credentials; both are required with a Mechanism.
	Username string
	Password Secret
}

// Secret is a string that does not print: String, GoString, LogValue and MarshalText all give "[redacted]", so a
// Config can be logged or formatted with %v or %+v without showing the password.
type Secret string

const redacted = "[redacted]"

func (Secret) String() string { return redacted }

func (Secret) GoString() string { return redacted }

func (Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

func (Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// Validate reports a Config that cannot work, without touching the network.
func (c Config) Validate() error {
	s := c.SASL
	if s.Mechanism == "" {
		if s.Username != "" || s.Password != "" {
			return fmt.Errorf("Kafka SASL: a username or password is set but no mechanism (one of %s)", strings.Join(Mechanisms, ", "))
		}
		return nil
	}
	if mechanism(s.Mechanism) == "" {
		return fmt.Errorf("Kafka SASL: unknown mechanism %q (want one of %s)", s.Mechanism, strings.Join(Mechanisms, ", "))
	}
	if s.Username == "" || s.Password == "" {
		return fmt.Errorf("Kafka SASL %s: needs a username and a password", mechanism(s.Mechanism))
	}
	return nil
}

// mechanism returns the canonical name of m, or "" when it is not supported.
func mechanism(m string) string {
	for _, name := range Mechanisms {
		if strings.EqualFold(m, name) {
			return name
		}
	}
	return ""
}

// String describes c for logs: "plaintext", "TLS (private CA), SASL SCRAM-SHA-512 as alice". No password.
func (c Config) String() string {
	var parts []string
	if c.TLS != nil {
		var opts []string
		if c.TLS.RootCAs != nil {
			opts = append(opts, "private CA")
		}
		if len(c.TLS.Certificates) > 0 || c.TLS.GetClientCertificate != nil {
			opts = append(opts, "client certificate")
		}
		if c.TLS.ServerName != "" {
			opts = append(opts, "server name "+c.TLS.ServerName)
		}
		s := "TLS"
		if len(opts) > 0 {
			s += " (" + strings.Join(opts, ", ") + ")"
		}
		parts = append(parts, s)
	}
	if c.SASL.Mechanism != "" {
		parts = append(parts, "SASL "+mechanism(c.SASL.Mechanism)+" as "+c.SASL.Username)
	}
	if len(parts) == 0 {
		return "plaintext"
	}
	return strings.Join(parts, ", ")
}

// LogValue logs c as String does.
func (c Config) LogValue() slog.Value { return slog.StringValue(c.String()) }

// Dialer returns a dialer for consumer groups and their partitions' connections, connecting as c says. Its errors
// match ErrConfig.
func (c Config) Dialer(clientID string) (*kafka.Dialer, error) {
	tlsConfig, mech, err := c.build()
	if err != nil {
		return nil, err
	}
	return &kafka.Dialer{ClientID: clientID, Timeout: DialTimeout, DualStack: true, TLS: tlsConfig, SASLMechanism: mech}, nil
}

// Transport returns a transport for kafka.Writer.Transport and kafka.Client (producers, dead letters, metadata and
// admin requests), connecting as c says. Close its idle connections when done. Its errors match ErrConfig.
func (c Config) Transport(clientID string) (*kafka.Transport, error) {
	tlsConfig, mech, err := c.build()
	if err != nil {
		return nil, err
	}
	return &kafka.Transport{ClientID: clientID, DialTimeout: DialTimeout, TLS: tlsConfig, SASL: mech}, nil
}

// build validates c. Its errors match ErrConfig.
func (c Config) build() (*tls.Config, sasl.Mechanism, error) {
	if err := c.Validate(); err != nil {
		return nil, nil, &configError{err}
	}
	mech, err := c.SASL.mechanism()
	if err != nil {
		return nil, nil, &configError{err}
	}
	var tlsConfig *tls.Config
	if c.TLS != nil {
		tlsConfig = c.TLS.Clone() // kafka-go keeps it: a caller's later change must not reach open connections
	}
	return tlsConfig, mech, nil
}

func (s SASL) mechanism() (sasl.Mechanism, error) {
	var algo scram.Algorithm
	switch mechanism(s.Mechanism) {
	case "":
		return nil, nil
	case Plain:
		return plain.Mechanism{Username: s.Username, Password: string(s.Password)}, nil
	case ScramSHA256:
		algo = scram.SHA256
	case ScramSHA512:
		algo = scram.SHA512
	}
	m, err := scram.Mechanism(algo, s.Username, string(s.Password))
	if err != nil {
		// SASLprep refuses some characters. Its error quotes the character, which may be the password's: leave it out.
		return nil, fmt.Errorf("Kafka SASL %s: the username or password has a character SCRAM does not allow (SASLprep, RFC 4013)", algo.Name())
	}
	return m, nil
}
