// Package store is leadthrough's ClickHouse layer: the schema (versioned migrations), the batch insert of canonical
// events, and the named queries that attribute deals and compute the indicators.
//
// It speaks ClickHouse's native protocol (Config.Protocol "http" selects the HTTP interface instead, which the tests
// use to reach a current ClickHouse embedded in chdb) and writes SQL that runs on ClickHouse 18.16 as well as current
// releases: every INSERT names its columns, JOINs say ALL, one JOIN per SELECT, no window functions. Values are
// always bound, never concatenated. It must never know about Kafka or Prometheus.
package store

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Config says where ClickHouse is.
type Config struct {
	Addr     string // host:port of the native protocol (of the HTTP interface with ProtocolHTTP); default "127.0.0.1:9000"
	Database string // default "leadthrough"; created by Migrate
	User     string // default "default"
	Password string // never part of an error or a log line
	// TLS, when not nil, encrypts the connection and verifies the server with it: the secure native port (9440 by
	// convention and on ClickHouse Cloud) or, with ProtocolHTTP, https. Verification is on unless the caller sets
	// InsecureSkipVerify; an empty ServerName means the host of Addr; nil RootCAs means the system's CAs. Default
	// nil: plaintext.
	TLS *tls.Config
	// Protocol is ProtocolNative ("native", the default) or ProtocolHTTP ("http": ClickHouse's HTTP interface, via
	// clickhouse-go's HTTP protocol). clickhouse-go cannot use ClickHouse 18.16 over HTTP (18.16 rejects its
	// client_protocol_version parameter as an unknown setting); the tests use "http" to reach a current ClickHouse
	// embedded in chdb (scripts/chdb_bridge.py).
	Protocol string
	// Cluster is the ClickHouse cluster (a <remote_servers> entry of the servers' configuration) the schema spans:
	// Migrate creates replicated tables sharded across it, Distributed tables over them and DDL ON CLUSTER, and the
	// store's sessions use the settings a cluster needs (store/cluster.go, docs/scaling.md). Every command of one
	// install must use the same value; Open and Migrate refuse a database migrated for another one
	// (ErrSchemaMode). Default "": one server, no ZooKeeper, plain MergeTree tables.
	Cluster string
	// DialTimeout bounds connecting: TCP, the TLS handshake, logging in and a first ping; Open and CreateDatabase
	// give up after it. Default 5s.
	DialTimeout time.Duration
}

func (c Config) withDefaults() Config {
	if c.Addr == "" {
		c.Addr = "127.0.0.1:9000"
	}
	if c.Protocol == "" {
		c.Protocol = ProtocolNative
	}
	if c.Database == "" {
		c.Database = "leadthrough"
	}
	if c.User == "" {
		c.User = "default"
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = 5 * time.Second
	}
	return c
}

// The values of Config.Protocol.
const (
	ProtocolNative = "native"
	ProtocolHTTP   = "http"
)

// Open and CreateDatabase return one-line errors that name ClickHouse and its address, never a stack of driver
// errors and never the password. Three kinds are told apart with errors.Is:
var (
	// ErrUnreachable: the network failed (refused, reset, timed out, closed): ClickHouse may be down or starting.
	// The only kind worth retrying; every other error from Open comes back the same until the configuration or the
	// server changes.
	ErrUnreachable = errors.New("cannot reach ClickHouse")
	// ErrAuth: ClickHouse refused the user or password (it does not say which, and neither does the error),
	// e.g. `ClickHouse at 127.0.0.1:9440: authentication failed for user "x"`. Permanent.
	ErrAuth = errors.New("authentication failed")
	// ErrTLS: the TLS handshake failed for a reason the configuration has to fix, e.g.
	// `ClickHouse at 127.0.0.1:9440: TLS: certificate signed by unknown authority`, or a plaintext port. Permanent.
	ErrTLS = errors.New("TLS")
)

var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Store is a connection pool to one leadthrough database.
type Store struct {
	conn driver.Conn
	cfg  Config

	attributionMu sync.RWMutex // keeps statements on deal_attribution and DROP PARTITIONs of it apart: lock.go
}

// Open connects to the database cfg.Database, which must exist (see Migrate / CreateDatabase).
func Open(ctx context.Context, cfg Config) (*Store, error) {
	cfg = cfg.withDefaults()
	if !identifier.MatchString(cfg.Database) {
		return nil, fmt.Errorf("invalid ClickHouse database name %q: use letters, digits and _", cfg.Database)
	}
	if cfg.Cluster != "" && !identifier.MatchString(cfg.Cluster) {
		return nil, fmt.Errorf("invalid ClickHouse cluster name %q: use letters, digits and _", cfg.Cluster)
	}
	conn, err := dial(ctx, cfg, cfg.Database)
	if err != nil {
		return nil, err
	}
	s := &Store{conn: conn, cfg: cfg}
	if cfg.Cluster != "" {
		s.conn = clusterConn{conn}
	}
	if _, _, err := s.checkSchemaMode(ctx); err != nil {
		conn.Close()
		return nil, err
	}
	return s, nil
}

// CreateDatabase creates cfg.Database if it does not exist yet.
func CreateDatabase(ctx context.Context, cfg Config) error {
	cfg = cfg.withDefaults()
	if !identifier.MatchString(cfg.Database) {
		return fmt.Errorf("invalid ClickHouse database name %q: use letters, digits and _", cfg.Database)
	}
	if cfg.Cluster != "" && !identifier.MatchString(cfg.Cluster) {
		return fmt.Errorf("invalid ClickHouse cluster name %q: use letters, digits and _", cfg.Cluster)
	}
	conn, err := dial(ctx, cfg, "default")
	if err != nil {
		return err
	}
	defer conn.Close()
	// An identifier cannot be a bound parameter; it is checked against `identifier` above.
	if err := conn.Exec(ctx, "CREATE DATABASE IF NOT EXISTS `"+cfg.Database+"`"+onCluster(cfg.Cluster)); err != nil {
		return fmt.Errorf("create database %s: %w", cfg.Database, err)
	}
	return nil
}

func dial(ctx context.Context, cfg Config, database string) (driver.Conn, error) {
	opts := &clickhouse.Options{
		Protocol:    clickhouse.Native,
		Addr:        []string{cfg.Addr},
		Auth:        clickhouse.Auth{Database: database, Username: cfg.User, Password: cfg.Password},
		DialTimeout: cfg.DialTimeout,
		Settings:    clickhouse.Settings{"max_execution_time": 600},
	}
	if cfg.Cluster != "" {
		for k, v := range clusterSettings {
			opts.Settings[k] = v
		}
	}
	if cfg.TLS != nil {
		opts.TLS = cfg.TLS.Clone()
	}
	switch cfg.Protocol {
	case ProtocolNative:
	case ProtocolHTTP:
		opts.Protocol = clickhouse.HTTP
		// Plain bodies both ways: the test bridge to chdb (scripts/chdb_bridge.py) does not implement ClickHouse's
		// HTTP compression, and clickhouse-go's default for HTTP is none anyway.
		opts.Compression = &clickhouse.Compression{Method: clickhouse.CompressionNone}
	default:
		return nil, fmt.Errorf("invalid ClickHouse protocol %q: use %q or %q", cfg.Protocol, ProtocolNative, ProtocolHTTP)
	}
	conn, err := clickhouse.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("ClickHouse at %s: %v", cfg.Addr, err)
	}
	// The driver bounds dialling by DialTimeout but not the reads that follow; a server that accepts connections
	// and never answers must not hang the caller.
	pingCtx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()
	if err := conn.Ping(pingCtx); err != nil {
		conn.Close()
		if ctx.Err() != nil {
			// The caller gave up (a signal, its own deadline): not ClickHouse's fault, and not worth a retry.
			return nil, fmt.Errorf("connect to ClickHouse at %s: %w", cfg.Addr, ctx.Err())
		}
		return nil, connectError(cfg, err)
	}
	return conn, nil
}

// ClickHouse's error codes for a login it refuses: 192–195 up to 20.x, 516 since.
const (
	codeUnknownUser          = 192
	codeWrongPassword        = 193
	codeRequiredPassword     = 194
	codeIPAddressNotAllowed  = 195
	codeAuthenticationFailed = 516
)

// connectError makes a failure to connect one line naming ClickHouse, of one of the kinds ErrUnreachable, ErrAuth
// and ErrTLS, or a server exception.
func connectError(cfg Config, err error) error {
	var ex *clickhouse.Exception
	if errors.As(err, &ex) {
		switch ex.Code {
		case codeUnknownUser, codeWrongPassword, codeRequiredPassword, codeAuthenticationFailed:
			return fmt.Errorf("ClickHouse at %s: %w for user %q", cfg.Addr, ErrAuth, cfg.User)
		case codeIPAddressNotAllowed:
			return fmt.Errorf("ClickHouse at %s: %w for user %q: not allowed from this address", cfg.Addr, ErrAuth, cfg.User)
		}
		return fmt.Errorf("ClickHouse at %s: %w", cfg.Addr, ex)
	}
	if msg, ok := describeTLSError(err); ok {
		return fmt.Errorf("ClickHouse at %s: %w: %s", cfg.Addr, ErrTLS, msg)
	}
	msg := describeDialError(err)
	if cfg.TLS == nil && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)) {
		// ClickHouse's secure port drops a plaintext hello without a word. Still ErrUnreachable: a server that is
		// restarting does the same.
		msg += " (if it is a secure port, enable TLS)"
	}
	return fmt.Errorf("%w at %s: %s", ErrUnreachable, cfg.Addr, msg)
}

// describeTLSError says why a TLS handshake failed when retrying cannot help: the server's certificate does not
// verify, the server does not speak TLS, or it rejected the handshake (a client certificate it wants, a protocol
// version or cipher it lacks).
func describeTLSError(err error) (string, bool) {
	var (
		unknownAuthority x509.UnknownAuthorityError
		hostname         x509.HostnameError
		invalid          x509.CertificateInvalidError
		verify           *tls.CertificateVerificationError
		record           tls.RecordHeaderError
		op               *net.OpError
	)
	switch {
	case errors.As(err, &unknownAuthority):
		return "certificate signed by unknown authority", true
	case errors.As(err, &hostname):
		return strings.TrimPrefix(hostname.Error(), "x509: "), true
	case errors.As(err, &invalid):
		return strings.TrimPrefix(invalid.Error(), "x509: "), true
	case errors.As(err, &verify):
		return strings.TrimPrefix(verify.Err.Error(), "x509: "), true
	case errors.As(err, &record):
		return "the server does not speak TLS (a plaintext port?)", true
	case errors.As(err, &op) && op.Op == "remote error":
		// crypto/tls reports an alert from the server as a net.OpError "remote error" around "tls: …".
		return "the server rejected the handshake: " + strings.TrimPrefix(op.Err.Error(), "tls: "), true
	}
	return "", false
}

func describeDialError(err error) string {
	var (
		op      *net.OpError
		timeout interface{ Timeout() bool }
	)
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, clickhouse.ErrAcquireConnTimeout),
		errors.As(err, &timeout) && timeout.Timeout():
		return "timed out"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "the server closed the connection"
	case errors.As(err, &op):
		return op.Err.Error()
	}
	return err.Error()
}

// Close releases the connections.
func (s *Store) Close() error { return s.conn.Close() }

// Conn is the store's connection pool, for tools and tests that run their own SQL, like the dashboards' panels.
func (s *Store) Conn() driver.Conn { return s.conn }

// Database is the name of the database in use.
func (s *Store) Database() string { return s.cfg.Database }

// DropDatabase removes a database and everything in it; on a cluster (Config.Cluster), on every node.
func (s *Store) DropDatabase(ctx context.Context, name string) error {
	if !identifier.MatchString(name) {
		return fmt.Errorf("invalid ClickHouse database name %q", name)
	}
	if err := s.conn.Exec(ctx, "DROP DATABASE IF EXISTS `"+name+"`"+onCluster(s.cfg.Cluster)); err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	return nil
}
