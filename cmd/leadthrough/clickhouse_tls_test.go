package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/leadthrough/leadthrough/internal/testenv"
	"github.com/leadthrough/leadthrough/store"
)

// TestLeadthroughProcess is not a test: runLeadthrough starts the test binary again with it to run leadthrough as a
// process, so that everything the process writes (its logs go straight to os.Stderr) is seen.
func TestLeadthroughProcess(t *testing.T) {
	if os.Getenv("LEADTHROUGH_TEST_PROCESS") != "1" {
		t.Skip("helper process for runLeadthrough")
	}
	args := os.Args
	for i, a := range args {
		if a == "--" {
			args = args[i+1:]
			break
		}
	}
	os.Exit(run(args, os.Stdout, os.Stderr))
}

// runLeadthrough runs `leadthrough args…` in a child process with env added and returns its exit code and
// everything it wrote to stdout and stderr.
func runLeadthrough(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], append([]string{"-test.run=^TestLeadthroughProcess$", "--"}, args...)...)
	cmd.Env = append(append(os.Environ(), "LEADTHROUGH_TEST_PROCESS=1"), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), out.String()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, out.String()
}

func TestMigrateOverTLSWithAPasswordFile(t *testing.T) {
	sec := testenv.ClickHouseSecure(t)
	db := fmt.Sprintf("lt_test_cli_tls_%d", time.Now().UnixNano()%1_000_000)
	var stdout, stderr bytes.Buffer
	// The password file ends in a newline, as scripts/clickhouse.sh writes it: it must be trimmed.
	code := run([]string{"migrate", "--clickhouse-addr", sec.Addr, "--clickhouse-database", db, "--clickhouse-tls",
		"--clickhouse-tls-ca-file", sec.CAFile, "--clickhouse-user", sec.User, "--clickhouse-password-file",
		sec.PasswordFile, "--log-level", "error"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit code %d: %s", code, stderr.String())
	}
	ctx := context.Background()
	s, err := store.Open(ctx, store.Config{Addr: testenv.ClickHouse(t), Database: db})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	defer s.DropDatabase(ctx, db)
	if v, err := s.SchemaVersion(ctx); err != nil || v == 0 {
		t.Errorf("schema version %d (%v) after migrate over TLS", v, err)
	}
}

// untrustedCAFile writes the certificate of a CA that signed nothing the server has.
func untrustedCAFile(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "some other CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "other-ca.crt")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// A failing migrate, at the most verbose log level, says in one line what failed and never shows the password:
// not in its error, not in its logs.
func TestFailingMigrateNeverShowsThePassword(t *testing.T) {
	sec := testenv.ClickHouseSecure(t)
	const wrong = "Wr0ng-but-Distinctive"
	base := []string{"migrate", "--clickhouse-addr", sec.Addr, "--clickhouse-user", sec.User, "--log-level", "debug",
		"--clickhouse-database", "lt_test_never_created"}
	tests := []struct {
		name     string
		env      []string
		args     []string
		want     string
		password string
	}{
		{"wrong password in the environment", []string{"LEADTHROUGH_CLICKHOUSE_PASSWORD=" + wrong},
			[]string{"--clickhouse-tls", "--clickhouse-tls-ca-file", sec.CAFile},
			fmt.Sprintf("ClickHouse at %s: authentication failed for user %q", sec.Addr, sec.User), wrong},
		{"wrong password on the command line", nil,
			[]string{"--clickhouse-tls", "--clickhouse-tls-ca-file", sec.CAFile, "--clickhouse-password", wrong},
			fmt.Sprintf("ClickHouse at %s: authentication failed for user %q", sec.Addr, sec.User), wrong},
		{"right password, untrusted certificate", []string{"LEADTHROUGH_CLICKHOUSE_PASSWORD_FILE=" + sec.PasswordFile},
			[]string{"--clickhouse-tls", "--clickhouse-tls-ca-file", untrustedCAFile(t)},
			fmt.Sprintf("ClickHouse at %s: TLS: certificate signed by unknown authority", sec.Addr), sec.Password},
		{"right password, plaintext to the secure port", []string{"LEADTHROUGH_CLICKHOUSE_PASSWORD=" + sec.Password}, nil,
			fmt.Sprintf("cannot reach ClickHouse at %s", sec.Addr), sec.Password},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			code, out := runLeadthrough(t, tt.env, append(append([]string{}, base...), tt.args...)...)
			if took := time.Since(start); took > 15*time.Second {
				t.Errorf("took %s: want a prompt failure", took)
			}
			if code != 1 {
				t.Errorf("exit code %d, want 1; output:\n%s", code, out)
			}
			if strings.Contains(out, tt.password) {
				t.Errorf("the output shows the password:\n%s", out)
			}
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if last := lines[len(lines)-1]; !strings.HasPrefix(last, "leadthrough migrate: "+tt.want) {
				t.Errorf("last line %q, want it to start %q", last, "leadthrough migrate: "+tt.want)
			}
		})
	}
}

func TestClickHouseTLSFlagMistakesAreUsageErrors(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"CA without TLS", []string{"--clickhouse-tls-ca-file", notPEM}, "--clickhouse-tls-ca-file needs --clickhouse-tls"},
		{"server name without TLS", []string{"--clickhouse-tls-server-name", "x"}, "--clickhouse-tls-server-name needs --clickhouse-tls"},
		{"missing CA file", []string{"--clickhouse-tls", "--clickhouse-tls-ca-file", filepath.Join(dir, "nope")}, "--clickhouse-tls-ca-file"},
		{"CA file without a certificate", []string{"--clickhouse-tls", "--clickhouse-tls-ca-file", notPEM}, "no PEM certificate"},
		{"certificate without key", []string{"--clickhouse-tls", "--clickhouse-tls-cert-file", notPEM}, "set both or neither"},
		{"unusable key pair", []string{"--clickhouse-tls", "--clickhouse-tls-cert-file", notPEM,
			"--clickhouse-tls-key-file", notPEM}, "--clickhouse-tls-cert-file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			// Port 1 refuses connections: a usage error must come first.
			args := append([]string{"migrate", "--clickhouse-addr", "127.0.0.1:1"}, tt.args...)
			if code := run(args, io.Discard, &stderr); code != 2 {
				t.Errorf("exit code %d, want 2 (stderr %q)", code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("stderr %q does not say %q", stderr.String(), tt.want)
			}
		})
	}
}

func TestClickHouseTLSFlagsBuildTheStoreConfig(t *testing.T) {
	sec := testenv.ClickHouseSecure(t)
	c := newCommand("x", "", io.Discard)
	ch := clickhouseFlags(c, "leadthrough")
	if err := c.parse(nil); err != nil {
		t.Fatal(err)
	}
	if ch.TLS != nil {
		t.Errorf("TLS config %+v without --clickhouse-tls, want nil (plaintext)", ch.TLS)
	}

	c = newCommand("x", "", io.Discard)
	ch = clickhouseFlags(c, "leadthrough")
	t.Setenv("LEADTHROUGH_CLICKHOUSE_TLS", "true")
	t.Setenv("LEADTHROUGH_CLICKHOUSE_TLS_CA_FILE", sec.CAFile)
	if err := c.parse([]string{"--clickhouse-tls-server-name", "localhost"}); err != nil {
		t.Fatal(err)
	}
	if ch.TLS == nil || ch.TLS.RootCAs == nil || ch.TLS.ServerName != "localhost" || ch.TLS.InsecureSkipVerify {
		t.Fatalf("TLS config %+v: want the CA, the server name and verification on", ch.TLS)
	}
}
