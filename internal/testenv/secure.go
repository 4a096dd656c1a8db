package testenv

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// SecureClickHouse is the test ClickHouse server's secure native port and the user with a password that
// scripts/clickhouse.sh sets up for it.
type SecureClickHouse struct {
	Addr         string         // host:port of the secure native port (TLS)
	CAFile       string         // PEM certificate of the test CA that signed the server's (for 127.0.0.1 and localhost)
	CAs          *x509.CertPool // CAFile, loaded
	User         string         // a user that has a password (the default user has none)
	PasswordFile string         // the password, with a trailing newline
	Password     string         // the password itself
}

// ClickHouseSecure returns the secure port of the test ClickHouse server (LEADTHROUGH_TEST_CLICKHOUSE_SECURE) and
// what a client needs to use it, from the directory LEADTHROUGH_TEST_CLICKHOUSE_SECRETS (ca.crt, user, password;
// scripts/clickhouse.sh writes it). Unset: a skip, or a failure under `make test` or CI; set but unreadable: always
// a failure.
func ClickHouseSecure(t testing.TB) SecureClickHouse {
	t.Helper()
	addr := lookup(t, "LEADTHROUGH_TEST_CLICKHOUSE_SECURE", "ClickHouse secure native port (TLS, host:port)")
	dir := lookup(t, "LEADTHROUGH_TEST_CLICKHOUSE_SECRETS",
		"directory with the test ClickHouse's CA certificate and password user (scripts/clickhouse.sh writes it)")
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("LEADTHROUGH_TEST_CLICKHOUSE_SECRETS: %v (scripts/clickhouse.sh start writes it)", err)
		}
		return string(b)
	}
	s := SecureClickHouse{
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
