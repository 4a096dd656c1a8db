package kafkaconn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/segmentio/kafka-go"
)

// Kinds of connection failure that retrying does not cure: the configuration or the broker's must change first. An
// *Error matches one of them with errors.Is, or neither when the failure may be transient (a broker that is down,
// restarting or unreachable). Permanent tells them apart.
var (
	// ErrTLS: the TLS handshake failed: an untrusted or expired certificate, a name mismatch, a broker that does
	// not speak TLS on that port, or one that refused the client certificate.
	ErrTLS = errors.New("Kafka TLS handshake failed")
	// ErrAuthentication: the broker refused the SASL credentials or the mechanism.
	ErrAuthentication = errors.New("Kafka SASL authentication failed")
	// ErrConfig: the Config is invalid or a file it names cannot be used.
	ErrConfig = errors.New("invalid Kafka connection settings")
)

// Permanent reports whether err is a connection failure that retrying will not cure: ErrTLS, ErrAuthentication or
// ErrConfig. A process waiting for Kafka to come up should stop waiting and report it.
func Permanent(err error) bool {
	return errors.Is(err, ErrTLS) || errors.Is(err, ErrAuthentication) || errors.Is(err, ErrConfig)
}

// Error is a failed connection to one broker, explained in one line: "Kafka at host:port: what failed (hint)".
type Error struct {
	Addr string // the broker's address as dialed
	kind error  // ErrTLS, ErrAuthentication or nil
	msg  string
	err  error
}

func (e *Error) Error() string { return "Kafka at " + e.Addr + ": " + e.msg }

// Unwrap returns the underlying error, from kafka-go, crypto/tls or net.
func (e *Error) Unwrap() error { return e.err }

// Is matches the Error's kind: ErrTLS or ErrAuthentication.
func (e *Error) Is(target error) bool { return e.kind != nil && target == e.kind }

// configError is an invalid Config, matching ErrConfig.
type configError struct{ err error }

func (e *configError) Error() string        { return e.err.Error() }
func (e *configError) Unwrap() error        { return e.err }
func (e *configError) Is(target error) bool { return target == ErrConfig }

// Check dials each of brokers in turn until one accepts a connection as c says: TCP, the TLS handshake, SASL
// authentication, then an ApiVersions and a Metadata request (a SASL listener answers ApiVersions before
// authentication, not Metadata). It returns nil on the first success. Otherwise it returns the first Permanent
// failure, or else every broker's *Error in one line; each attempt is bounded by DialTimeout, and ctx ending stops
// it. Startup probes use it; it opens no connection that outlives the call.
func (c Config) Check(ctx context.Context, brokers []string) error {
	dialer, err := c.Dialer("leadthrough-check")
	if err != nil {
		return err
	}
	if len(brokers) == 0 {
		return &configError{errors.New("Kafka: no broker address")}
	}
	var errs joined
	for _, addr := range brokers {
		err := c.checkOne(ctx, dialer, addr)
		if err == nil {
			return nil
		}
		if Permanent(err) || ctx.Err() != nil {
			return err
		}
		errs = append(errs, err)
	}
	if len(errs) == 1 {
		return errs[0]
	}
	return errs
}

func (c Config) checkOne(ctx context.Context, dialer *kafka.Dialer, addr string) error {
	conn, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return c.explain(ctx, addr, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	deadline := time.Now().Add(DialTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := conn.SetDeadline(deadline); err != nil {
		return c.explain(ctx, addr, err)
	}
	if _, err := conn.ApiVersions(); err != nil {
		return c.explain(ctx, addr, err)
	}
	if _, err := conn.Brokers(); err != nil {
		return c.explain(ctx, addr, err)
	}
	return nil
}

// explain turns err, from a connection as c says to the broker at addr under ctx, into an *Error.
func (c Config) explain(ctx context.Context, addr string, err error) error {
	if e := (*Error)(nil); errors.As(err, &e) {
		return err
	}
	e := &Error{Addr: addr, err: err}
	var (
		unknownCA   x509.UnknownAuthorityError
		hostname    x509.HostnameError
		invalid     x509.CertificateInvalidError
		verify      *tls.CertificateVerificationError
		notTLS      tls.RecordHeaderError
		alert       tls.AlertError
		kafkaErr    kafka.Error
		opErr       *net.OpError
		dnsErr      *net.DNSError
		tlsEnabled  = c.TLS != nil
		saslEnabled = c.SASL.Mechanism != ""
	)
	switch {
	case errors.As(err, &unknownCA):
		e.kind, e.msg = ErrTLS, "TLS: certificate signed by unknown authority"
		if c.TLS != nil && c.TLS.RootCAs != nil {
			e.msg += " (the CA certificates given do not include the one that signed the broker's certificate)"
		} else {
			e.msg += " (a private CA? give its certificate as the TLS CA file)"
		}
	case errors.As(err, &hostname):
		e.kind, e.msg = ErrTLS, "TLS: "+oneLine(hostname.Error())+" (set the TLS server name to a name the certificate carries)"
	case errors.As(err, &invalid):
		e.kind, e.msg = ErrTLS, "TLS: "+oneLine(invalid.Error())
	case errors.As(err, &verify):
		e.kind, e.msg = ErrTLS, "TLS: "+oneLine(verify.Err.Error())
	case errors.As(err, &notTLS):
		e.kind, e.msg = ErrTLS, "TLS: the broker did not answer with a TLS handshake (a PLAINTEXT or SASL_PLAINTEXT listener? then turn TLS off)"
	case errors.As(err, &alert):
		e.kind, e.msg = ErrTLS, "TLS: the broker refused the handshake: "+oneLine(alert.Error())
		if c.TLS != nil && len(c.TLS.Certificates) == 0 && c.TLS.GetClientCertificate == nil {
			e.msg += " (does it require a client certificate?)"
		}
	case errors.Is(err, kafka.SASLAuthenticationFailed):
		e.kind, e.msg = ErrAuthentication, fmt.Sprintf("SASL authentication failed: the broker refused user %q with %s (wrong username or password, or no such user for this mechanism)",
			c.SASL.Username, mechanism(c.SASL.Mechanism))
	case errors.Is(err, kafka.UnsupportedSASLMechanism):
		e.kind, e.msg = ErrAuthentication, "SASL: the broker does not enable mechanism "+mechanism(c.SASL.Mechanism)+" on this listener"
	case errors.As(err, &kafkaErr) && (kafkaErr == kafka.IllegalSASLState || kafkaErr == kafka.SASLAuthenticationFailed):
		e.kind, e.msg = ErrAuthentication, "SASL: "+kafkaErr.Title()
	case ctx.Err() != nil && !errors.Is(err, context.DeadlineExceeded) && !isTimeout(err):
		e.msg = "connection abandoned: " + ctx.Err().Error()
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		e.msg = "no answer within " + DialTimeout.String()
		if !tlsEnabled {
			e.msg += " (a TLS listener waits for a TLS handshake: turn TLS on?)"
		}
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET):
		e.msg = "the broker closed the connection"
		switch {
		case !tlsEnabled:
			e.msg += " (a TLS or SASL_SSL listener? turn TLS on)"
		case !saslEnabled:
			e.msg += " (a SASL listener? set a SASL mechanism, username and password)"
		default:
			e.msg += " (a listener without TLS? turn TLS off; or the broker is restarting)"
		}
	case errors.As(err, &dnsErr):
		e.msg = "cannot resolve " + dnsErr.Name + ": " + dnsErr.Err
	case errors.As(err, &opErr):
		cause := opErr.Err
		for errors.Unwrap(cause) != nil { // *os.SyscallError "connect: connection refused" → "connection refused"
			cause = errors.Unwrap(cause)
		}
		e.msg = oneLine(cause.Error())
		if opErr.Op == "dial" {
			e.msg = "cannot connect: " + e.msg
		}
	default:
		e.msg = oneLine(err.Error())
	}
	return e
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// joined is the failure of every broker, in one line.
type joined []error

func (j joined) Error() string {
	msgs := make([]string, len(j))
	for i, e := range j {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "; ")
}

func (j joined) Unwrap() []error { return j }
