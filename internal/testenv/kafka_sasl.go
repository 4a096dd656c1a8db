package testenv

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// SASLKafka is the test Kafka broker's SASL_SSL listener and the user that scripts/kafka.sh sets up for it.
type SASLKafka struct {
	Addr         string         // host:port of the SASL_SSL listener
	CAFile       string         // PEM certificate of the test CA that signed the listener's (for 127.0.0.1 and localhost)
	CAs          *x509.CertPool // CAFile, loaded
	User         string         // valid for PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512
	PasswordFile string         // the password, with a trailing newline
	Password     string         // the password itself
}

// TLS returns a client TLS configuration that trusts the test CA.
func (k SASLKafka) TLS() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: k.CAs}
}

// KafkaSASL returns the SASL_SSL listener of the test Kafka broker (LEADTHROUGH_TEST_KAFKA_SASL) and what a client
// needs to use it, from the directory LEADTHROUGH_TEST_KAFKA_SECRETS (ca.crt, user, password; scripts/kafka.sh
// writes it). Unset: a skip, or a failure under `make test` or CI; set but unreadable: always a failure.
func KafkaSASL(t testing.TB) SASLKafka {
	t.Helper()
	addr := lookup(t, "LEADTHROUGH_TEST_KAFKA_SASL", "Apache Kafka SASL_SSL listener (host:port)")
	dir := lookup(t, "LEADTHROUGH_TEST_KAFKA_SECRETS",
		"directory with the test Kafka's CA certificate and SASL user (scripts/kafka.sh writes it)")
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("LEADTHROUGH_TEST_KAFKA_SECRETS: %v (scripts/kafka.sh start writes it)", err)
		}
		return string(b)
	}
	k := SASLKafka{
		Addr:         addr,
		CAFile:       filepath.Join(dir, "ca.crt"),
		CAs:          x509.NewCertPool(),
		User:         strings.TrimSpace(read("user")),
		PasswordFile: filepath.Join(dir, "password"),
		Password:     strings.TrimRight(read("password"), "\r\n"),
	}
	if !k.CAs.AppendCertsFromPEM([]byte(read("ca.crt"))) {
		t.Fatalf("%s holds no PEM certificate", k.CAFile)
	}
	if k.User == "" || k.Password == "" {
		t.Fatalf("%s: user or password is empty", dir)
	}
	return k
}
