package kafkaconn_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/leadthrough/leadthrough/internal/testenv"
	"github.com/leadthrough/leadthrough/kafkaconn"
)

// fast bounds how long a refused connection may take to be reported: it must never hang.
const fast = 5 * time.Second

func sasl(k testenv.SASLKafka, mechanism, password string) kafkaconn.Config {
	return kafkaconn.Config{TLS: k.TLS(), SASL: kafkaconn.SASL{Mechanism: mechanism, Username: k.User,
		Password: kafkaconn.Secret(password)}}
}

// check runs Check against addr and returns its error and how long it took.
func check(t *testing.T, cfg kafkaconn.Config, addr string) (error, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	start := time.Now()
	err := cfg.Check(ctx, []string{addr})
	return err, time.Since(start)
}

// wantOneLine fails the test unless err is a quick one-line error that names Kafka at addr, contains want, and
// shows none of secrets.
func wantOneLine(t *testing.T, err error, took time.Duration, addr, want string, secrets ...string) {
	t.Helper()
	if err == nil {
		t.Fatal("Check succeeded, want an error")
	}
	msg := err.Error()
	t.Logf("error after %v: %s", took.Round(time.Millisecond), msg)
	if took > fast {
		t.Errorf("took %v, want under %v", took, fast)
	}
	if !strings.HasPrefix(msg, "Kafka at "+addr+": ") {
		t.Errorf("error does not start with %q: %s", "Kafka at "+addr+": ", msg)
	}
	if !strings.Contains(msg, want) {
		t.Errorf("error does not contain %q: %s", want, msg)
	}
	if strings.ContainsAny(msg, "\r\n") {
		t.Errorf("error is not one line: %q", msg)
	}
	for _, s := range secrets {
		if strings.Contains(msg, s) {
			t.Errorf("error shows a password: %s", msg)
		}
	}
}

func TestCheckAuthenticatesOverSASLSSLWithEveryMechanism(t *testing.T) {
	k := testenv.KafkaSASL(t)
	for _, m := range kafkaconn.Mechanisms {
		t.Run(m, func(t *testing.T) {
			if err, _ := check(t, sasl(k, m, k.Password), k.Addr); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestCheckWrongPasswordIsAQuickOneLineAuthenticationError(t *testing.T) {
	k := testenv.KafkaSASL(t)
	const wrong = "not-the-Passw0rd-8731"
	for _, m := range kafkaconn.Mechanisms {
		t.Run(m, func(t *testing.T) {
			err, took := check(t, sasl(k, m, wrong), k.Addr)
			wantOneLine(t, err, took, k.Addr, "SASL authentication failed", wrong, k.Password)
			if !errors.Is(err, kafkaconn.ErrAuthentication) || !kafkaconn.Permanent(err) {
				t.Errorf("error does not match ErrAuthentication: %v", err)
			}
			if !strings.Contains(err.Error(), k.User) || !strings.Contains(err.Error(), m) {
				t.Errorf("error names neither the user nor the mechanism: %v", err)
			}
		})
	}
	t.Run("unknown user", func(t *testing.T) {
		cfg := sasl(k, kafkaconn.ScramSHA256, k.Password)
		cfg.SASL.Username = "nobody"
		err, took := check(t, cfg, k.Addr)
		wantOneLine(t, err, took, k.Addr, "SASL authentication failed", k.Password)
	})
}

func TestCheckUntrustedCertificateIsAQuickOneLineTLSError(t *testing.T) {
	k := testenv.KafkaSASL(t)
	for _, tc := range []struct {
		name string
		tls  *tls.Config
		want string
	}{
		{"the system's CAs", &tls.Config{}, "TLS: certificate signed by unknown authority"},
		{"another private CA", &tls.Config{RootCAs: otherCA(t)}, "TLS: certificate signed by unknown authority " +
			"(the CA certificates given do not include"},
		{"a name the certificate does not carry", &tls.Config{RootCAs: k.CAs, ServerName: "kafka.example.com"},
			"TLS: x509: certificate is valid for localhost"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := sasl(k, kafkaconn.ScramSHA512, k.Password)
			cfg.TLS = tc.tls
			err, took := check(t, cfg, k.Addr)
			wantOneLine(t, err, took, k.Addr, tc.want, k.Password)
			if !errors.Is(err, kafkaconn.ErrTLS) || !kafkaconn.Permanent(err) {
				t.Errorf("error does not match ErrTLS: %v", err)
			}
		})
	}
}

func TestCheckExplainsAMismatchedListener(t *testing.T) {
	k := testenv.KafkaSASL(t)
	plaintext := testenv.Kafka(t)
	t.Run("plaintext to the SASL_SSL listener", func(t *testing.T) {
		err, took := check(t, kafkaconn.Config{}, k.Addr)
		wantOneLine(t, err, took, k.Addr, "the broker closed the connection (a TLS or SASL_SSL listener? turn TLS on)")
	})
	t.Run("TLS without SASL to the SASL_SSL listener", func(t *testing.T) {
		err, took := check(t, kafkaconn.Config{TLS: k.TLS()}, k.Addr)
		wantOneLine(t, err, took, k.Addr, "(a SASL listener? set a SASL mechanism, username and password)")
	})
	t.Run("TLS to the plaintext listener", func(t *testing.T) {
		err, took := check(t, sasl(k, kafkaconn.Plain, k.Password), plaintext)
		wantOneLine(t, err, took, plaintext, "the broker closed the connection", k.Password)
	})
	t.Run("nothing listening", func(t *testing.T) {
		addr := "127.0.0.1:1"
		err, took := check(t, sasl(k, kafkaconn.Plain, k.Password), addr)
		wantOneLine(t, err, took, addr, "cannot connect: connection refused", k.Password)
		if kafkaconn.Permanent(err) {
			t.Errorf("a broker that is down is reported as permanent: %v", err)
		}
	})
}

// otherCA is a CA that signed nothing the broker has.
func otherCA(t *testing.T) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "another CA"},
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
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool
}
