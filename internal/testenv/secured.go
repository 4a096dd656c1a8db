package testenv

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Secured is a secured listener of a test service and what a client needs to use it, as the service's script
// writes it into a secrets directory (ca.crt, user, password).
type Secured struct {
	Addr         string         // host:port of the TLS listener
	CAFile       string         // PEM certificate of the test CA that signed the listener's (for 127.0.0.1 and localhost)
	CAs          *x509.CertPool // CAFile, loaded
	User         string         // a user with a password
	PasswordFile string         // the password, with a trailing newline
	Password     string         // the password itself
}

// SASLKafka is the test Kafka broker's SASL_SSL listener; its user is valid for PLAIN, SCRAM-SHA-256 and
// SCRAM-SHA-512 (scripts/kafka.sh).
type SASLKafka = Secured

// SecureClickHouse is the test ClickHouse server's secure native port and its user with a password (the default
// user has none; scripts/clickhouse.sh).
type SecureClickHouse = Secured

// TLS returns a client TLS configuration that trusts the test CA.
func (s Secured) TLS() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: s.CAs}
}

// KafkaSASL returns the SASL_SSL listener of the test Kafka broker (LEADTHROUGH_TEST_KAFKA_SASL) and what a client
// needs to use it, from the directory LEADTHROUGH_TEST_KAFKA_SECRETS (scripts/kafka.sh writes it). Unset: a skip, or
// a failure under `make test` or CI; set but unreadable: always a failure.
func KafkaSASL(t testing.TB) SASLKafka {
	t.Helper()
	return secured(t, "LEADTHROUGH_TEST_KAFKA_SASL", "Apache Kafka SASL_SSL listener (host:port)",
		"LEADTHROUGH_TEST_KAFKA_SECRETS", "scripts/kafka.sh")
}

// ClickHouseSecure returns the secure port of the test ClickHouse server (LEADTHROUGH_TEST_CLICKHOUSE_SECURE) and
// what a client needs to use it, from the directory LEADTHROUGH_TEST_CLICKHOUSE_SECRETS (scripts/clickhouse.sh
// writes it). Unset: a skip, or a failure under `make test` or CI; set but unreadable: always a failure.
func ClickHouseSecure(t testing.TB) SecureClickHouse {
	t.Helper()
	return secured(t, "LEADTHROUGH_TEST_CLICKHOUSE_SECURE", "ClickHouse secure native port (TLS, host:port)",
		"LEADTHROUGH_TEST_CLICKHOUSE_SECRETS", "scripts/clickhouse.sh")
}

func secured(t testing.TB, addrEnv, what, secretsEnv, script string) Secured {
	t.Helper()
	addr := lookup(t, addrEnv, what)
	dir := lookup(t, secretsEnv, "directory with the CA certificate and password user that "+script+" writes")
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("%s: %v (%s start writes it)", secretsEnv, err, script)
		}
		return string(b)
	}
	s := Secured{
		Addr:         addr,
		CAFile:       filepath.Join(dir, "ca.crt"),
		CAs:          x509.NewCertPool(),
		User:         strings.TrimSpace(read("user")),
		PasswordFile: filepath.Join(dir, "password"),
		Password:     strings.TrimRight(read("password"), "\r\n"),
	}
	if !s.CAs.AppendCertsFromPEM([]byte(read("ca.crt"))) {
		t.Fatalf("%s holds no PEM certificate", s.CAFile)
	}
	if s.User == "" || s.Password == "" {
		t.Fatalf("%s: user or password is empty", dir)
	}
	return s
}
