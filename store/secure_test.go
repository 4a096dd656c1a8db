package store

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/leadthrough/leadthrough/indicator"
	"github.com/leadthrough/leadthrough/internal/scenario"
	"github.com/leadthrough/leadthrough/internal/testenv"
)

// secureConfig reaches the test server's secure port as its password user, trusting the test CA.
func secureConfig(sec testenv.SecureClickHouse, database string) Config {
	return Config{Addr: sec.Addr, Database: database, User: sec.User, Password: sec.Password,
		TLS: &tls.Config{RootCAs: sec.CAs}, DialTimeout: 5 * time.Second}
}

func TestSecurePortWithPasswordMigratesInsertsAndComputesIndicators(t *testing.T) {
	sec := testenv.ClickHouseSecure(t)
	ctx := context.Background()
	name := fmt.Sprintf("lt_test_secure_%d", time.Now().UnixNano()%1_000_000)
	cfg := secureConfig(sec, name)
	if err := CreateDatabase(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = s.DropDatabase(context.Background(), name)
		s.Close()
	})
	if _, err := s.Migrate(ctx, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatal(err)
	}
	// The queries run as the password user (18.16 has no currentUser(): ask the process list about ourselves).
	var user string
	if err := s.Conn().QueryRow(ctx, "SELECT user FROM system.processes WHERE query LIKE '%lt-secure-whoami%'").
		Scan(&user); err != nil || user != sec.User {
		t.Fatalf("running as %q (%v), want %q", user, err, sec.User)
	}
	asOf := time.Date(2026, 3, 31, 12, 0, 0, 0, time.UTC)
	evs := scenario.Random(7, asOf)
	insert(t, s, evs)
	p := indicator.Params{AsOf: asOf, Window: 30 * 24 * time.Hour}
	got, err := s.Indicators(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if diff := compareRows(got, indicator.Reference(evs, p)); diff != "" {
		t.Fatalf("indicators over TLS differ from the reference model:\n%s", diff)
	}
	if len(got) == 0 {
		t.Fatal("no indicator rows: the scenario should have managers")
	}
}

// connectErr opens cfg and returns the error, failing the test when it takes longer than DialTimeout and a margin.
func connectErr(t *testing.T, cfg Config) error {
	t.Helper()
	start := time.Now()
	s, err := Open(context.Background(), cfg)
	if took := time.Since(start); took > cfg.DialTimeout+time.Second {
		t.Errorf("Open took %s, want it bounded by DialTimeout %s", took, cfg.DialTimeout)
	}
	if err == nil {
		s.Close()
		t.Fatal("Open succeeded, want an error")
	}
	return err
}

func TestWrongPasswordIsOneLinePermanentErrorNamingClickHouse(t *testing.T) {
	sec := testenv.ClickHouseSecure(t)
	plain := testenv.ClickHouse(t)
	const wrong = "not-the-Passw0rd"
	for _, tt := range []struct {
		name string
		cfg  Config
	}{
		{"secure port", func() Config {
			c := secureConfig(sec, "default")
			c.Password = wrong
			return c
		}()},
		{"secure port, no password", func() Config {
			c := secureConfig(sec, "default")
			c.Password = ""
			return c
		}()},
		{"secure port, unknown user", func() Config {
			c := secureConfig(sec, "default")
			c.User, c.Password = "nobody_here", wrong
			return c
		}()},
		{"plaintext port", Config{Addr: plain, Database: "default", User: sec.User, Password: wrong, DialTimeout: 5 * time.Second}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := connectErr(t, tt.cfg)
			want := fmt.Sprintf("ClickHouse at %s: authentication failed for user %q", tt.cfg.Addr, tt.cfg.User)
			if err.Error() != want {
				t.Errorf("error %q, want %q", err, want)
			}
			if !errors.Is(err, ErrAuth) || errors.Is(err, ErrUnreachable) || errors.Is(err, ErrTLS) {
				t.Errorf("error %q: want ErrAuth only, so that nobody retries it", err)
			}
			if strings.Contains(err.Error(), wrong) || strings.Contains(err.Error(), sec.Password) {
				t.Errorf("error %q shows a password", err)
			}
		})
	}
}

// newCA makes a certificate authority nobody has heard of.
func newCA(t *testing.T) *x509.Certificate {
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
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func TestTLSFailuresAreOneLinePermanentErrorsNamingClickHouse(t *testing.T) {
	sec := testenv.ClickHouseSecure(t)
	plain := testenv.ClickHouse(t)
	other := x509.NewCertPool()
	other.AddCert(newCA(t))
	host, port, _ := net.SplitHostPort(sec.Addr)
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"untrusted CA", Config{Addr: sec.Addr, User: sec.User, Password: sec.Password, TLS: &tls.Config{RootCAs: other}},
			"TLS: certificate signed by unknown authority"},
		{"name not in the certificate", Config{Addr: sec.Addr, User: sec.User, Password: sec.Password,
			TLS: &tls.Config{RootCAs: sec.CAs, ServerName: "clickhouse.example.com"}},
			"TLS: certificate is valid for"},
		{"plaintext port", Config{Addr: plain, TLS: &tls.Config{RootCAs: sec.CAs}},
			"TLS: the server does not speak TLS"},
	}
	if host == "127.0.0.1" {
		tests = append(tests, struct {
			name string
			cfg  Config
			want string
		}{"localhost is in the certificate", Config{Addr: net.JoinHostPort("localhost", port), User: sec.User,
			Password: "wrong", TLS: &tls.Config{RootCAs: sec.CAs}}, "authentication failed"})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Database, tt.cfg.DialTimeout = "default", 5*time.Second
			err := connectErr(t, tt.cfg)
			prefix := "ClickHouse at " + tt.cfg.Addr + ": "
			if msg := err.Error(); !strings.HasPrefix(msg, prefix+tt.want) || strings.Contains(msg, "\n") {
				t.Errorf("error %q, want one line starting %q", msg, prefix+tt.want)
			}
			if errors.Is(err, ErrUnreachable) {
				t.Errorf("error %q is ErrUnreachable: a caller would retry it forever", err)
			}
			if tt.want != "authentication failed" && !errors.Is(err, ErrTLS) {
				t.Errorf("error %q is not ErrTLS", err)
			}
			if strings.Contains(err.Error(), sec.Password) {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
}

func TestPlaintextToTheSecurePortSaysSoAndStaysRetryable(t *testing.T) {
	sec := testenv.ClickHouseSecure(t)
	err := connectErr(t, Config{Addr: sec.Addr, Database: "default", DialTimeout: 5 * time.Second})
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "enable TLS") || strings.Contains(err.Error(), "\n") {
		t.Errorf("error %q: want one line, ErrUnreachable, suggesting TLS", err)
	}
}

// A server that accepts connections and never answers (a firewall, a wedged process, a TLS port behind a proxy that
// waits) must not hang Open: it gives up after DialTimeout, as a retryable failure.
func TestSilentServerTimesOutWithinDialTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { <-done; c.Close() }()
		}
	}()
	for _, tt := range []struct {
		name     string
		tls      *tls.Config
		protocol string
	}{{"native", nil, ProtocolNative}, {"native TLS", &tls.Config{}, ProtocolNative}, {"https", &tls.Config{}, ProtocolHTTP}} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{Addr: ln.Addr().String(), Database: "default", Protocol: tt.protocol, TLS: tt.tls,
				DialTimeout: 500 * time.Millisecond}
			err := connectErr(t, cfg)
			if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "timed out") {
				t.Errorf("error %q: want ErrUnreachable, timed out", err)
			}
		})
	}
}

// Over HTTP, TLS makes it https: the same verification and the same errors. No ClickHouse here serves https to
// clickhouse-go (18.16 rejects its HTTP requests; the chdb bridge is plain HTTP), so an https endpoint from the
// standard library stands in for the handshake and answers as ClickHouse does to a wrong password.
func TestHTTPSVerifiesTheServerAndReportsAuthentication(t *testing.T) {
	var gotUser, gotKey string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotUser, gotKey = r.Header.Get("X-ClickHouse-User"), r.Header.Get("X-ClickHouse-Key")
		w.Header().Set("X-ClickHouse-Exception-Code", "516")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, "Code: 516. DB::Exception: x: Authentication failed: password is incorrect, or there is no user with such name. (AUTHENTICATION_FAILED)")
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the rejected handshake is expected
	srv.StartTLS()
	defer srv.Close()
	addr := srv.Listener.Addr().String()
	trusted := x509.NewCertPool()
	trusted.AddCert(srv.Certificate())

	cfg := Config{Addr: addr, Database: "default", Protocol: ProtocolHTTP, User: "x", Password: "s3cr3t",
		TLS: &tls.Config{}, DialTimeout: 5 * time.Second}
	err := connectErr(t, cfg)
	if want := "ClickHouse at " + addr + ": TLS: certificate signed by unknown authority"; err.Error() != want || !errors.Is(err, ErrTLS) {
		t.Errorf("untrusted: error %q, want %q (ErrTLS)", err, want)
	}

	cfg.TLS = &tls.Config{RootCAs: trusted}
	err = connectErr(t, cfg)
	if want := "ClickHouse at " + addr + `: authentication failed for user "x"`; err.Error() != want || !errors.Is(err, ErrAuth) {
		t.Errorf("trusted: error %q, want %q (ErrAuth)", err, want)
	}
	if gotUser != "x" || gotKey != "s3cr3t" {
		t.Errorf("the server got user %q and key %q, want the credentials in headers over https", gotUser, gotKey)
	}
}
