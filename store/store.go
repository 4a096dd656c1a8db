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
	"errors"
	"fmt"
	"net"
	"regexp"
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
	Password string
	// Protocol is ProtocolNative ("native", the default) or ProtocolHTTP ("http": ClickHouse's HTTP interface, via
	// clickhouse-go's HTTP protocol). clickhouse-go cannot use ClickHouse 18.16 over HTTP (18.16 rejects its
	// client_protocol_version parameter as an unknown setting); the tests use "http" to reach a current ClickHouse
	// embedded in chdb (scripts/chdb_bridge.py).
	Protocol string
	// DialTimeout bounds connecting; default 5s.
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

// ErrUnreachable wraps failures to connect, so commands can print a hint instead of a stack of driver errors.
var ErrUnreachable = errors.New("cannot reach ClickHouse")

var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Store is a connection pool to one leadthrough database.
type Store struct {
	conn driver.Conn
	cfg  Config
}

// Open connects to the database cfg.Database, which must exist (see Migrate / CreateDatabase).
func Open(ctx context.Context, cfg Config) (*Store, error) {
	cfg = cfg.withDefaults()
	if !identifier.MatchString(cfg.Database) {
		return nil, fmt.Errorf("invalid ClickHouse database name %q: use letters, digits and _", cfg.Database)
	}
	conn, err := dial(ctx, cfg, cfg.Database)
	if err != nil {
		return nil, err
	}
	return &Store{conn: conn, cfg: cfg}, nil
}

// CreateDatabase creates cfg.Database if it does not exist yet.
func CreateDatabase(ctx context.Context, cfg Config) error {
	cfg = cfg.withDefaults()
	if !identifier.MatchString(cfg.Database) {
		return fmt.Errorf("invalid ClickHouse database name %q: use letters, digits and _", cfg.Database)
	}
	conn, err := dial(ctx, cfg, "default")
	if err != nil {
		return err
	}
	defer conn.Close()
	// An identifier cannot be a bound parameter; it is checked against `identifier` above.
	if err := conn.Exec(ctx, "CREATE DATABASE IF NOT EXISTS `"+cfg.Database+"`"); err != nil {
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
		return nil, fmt.Errorf("%w at %s: %v", ErrUnreachable, cfg.Addr, err)
	}
	if err := conn.Ping(ctx); err != nil {
		conn.Close()
		var ex *clickhouse.Exception
		if errors.As(err, &ex) {
			return nil, fmt.Errorf("ClickHouse at %s: %w", cfg.Addr, err)
		}
		return nil, fmt.Errorf("%w at %s: %s", ErrUnreachable, cfg.Addr, describeDialError(err))
	}
	return conn, nil
}

func describeDialError(err error) string {
	var op *net.OpError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, context.DeadlineExceeded):
		return "timed out"
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

// DropDatabase removes a database and everything in it.
func (s *Store) DropDatabase(ctx context.Context, name string) error {
	if !identifier.MatchString(name) {
		return fmt.Errorf("invalid ClickHouse database name %q", name)
	}
	if err := s.conn.Exec(ctx, "DROP DATABASE IF EXISTS `"+name+"`"); err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	return nil
}
