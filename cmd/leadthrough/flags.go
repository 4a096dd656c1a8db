package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/leadthrough/leadthrough/indicator"
	"github.com/leadthrough/leadthrough/store"
)

// errUsage marks command-line mistakes: main prints them with the usage hint and exits 2.
var errUsage = errors.New("usage")

// command is one subcommand's flag set. Every flag also reads LEADTHROUGH_<NAME> from the environment; an explicit
// flag wins over the environment, which wins over the default.
type command struct {
	fs  *flag.FlagSet
	env map[string]string // flag name → environment variable
	// parsed run at the end of parse, in order, once every flag has its value: they fill values that depend on
	// several flags or on files named by flags (a secret's -file variant). Their errors are usage errors.
	parsed []func() error
}

func newCommand(name, summary string, out io.Writer) *command {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	c := &command{fs: fs, env: map[string]string{}}
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: leadthrough %s [flags]\n\n%s\n\nFlags (each also read from the environment variable shown):\n", name, summary)
		fs.PrintDefaults()
	}
	return c
}

// envName is the environment variable of a flag: --clickhouse-addr → LEADTHROUGH_CLICKHOUSE_ADDR.
func envName(flagName string) string {
	return "LEADTHROUGH_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func (c *command) register(name, help string) string {
	return c.registerEnv(name, envName(name), help)
}

// registerEnv binds a flag to an explicit environment variable, for a flag whose name means something else in
// another command (import --format vs indicators --format).
func (c *command) registerEnv(name, env, help string) string {
	c.env[name] = env
	return help + " (env " + env + ")"
}

func (c *command) String(name, def, help string) *string {
	return c.fs.String(name, def, c.register(name, help))
}

func (c *command) Int(name string, def int, help string) *int {
	return c.fs.Int(name, def, c.register(name, help))
}

func (c *command) Uint64(name string, def uint64, help string) *uint64 {
	return c.fs.Uint64(name, def, c.register(name, help))
}

func (c *command) Float64(name string, def float64, help string) *float64 {
	return c.fs.Float64(name, def, c.register(name, help))
}

func (c *command) Bool(name string, def bool, help string) *bool {
	return c.fs.Bool(name, def, c.register(name, help))
}

func (c *command) Duration(name string, def time.Duration, help string) *time.Duration {
	return c.fs.Duration(name, def, c.register(name, help))
}

// Func registers a flag parsed by set, which is called for the default (when def != ""), then for each occurrence on
// the command line or, when there is none, for the environment variable.
func (c *command) Func(name, def, help string, set func(string) error) {
	c.fs.Func(name, c.register(name, help)+defaultNote(def), set)
	if def != "" {
		_ = set(def)
	}
}

func defaultNote(def string) string {
	if def == "" {
		return ""
	}
	return fmt.Sprintf(" (default %q)", def)
}

// parse reads the arguments, then, as VictoriaMetrics' lib/envflag does, the environment variable of every flag the
// arguments did not set (flag.Visit): a flag on the command line wins, and a repeatable flag (--topic) takes its
// environment variable only when the command line has none of it. Errors are errUsage.
func (c *command) parse(args []string) error {
	if err := c.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if c.fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, c.fs.Arg(0))
	}
	onCommandLine := map[string]bool{}
	c.fs.Visit(func(f *flag.Flag) { onCommandLine[f.Name] = true })
	var envErr error
	c.fs.VisitAll(func(f *flag.Flag) {
		e := c.env[f.Name]
		if v, ok := os.LookupEnv(e); ok && !onCommandLine[f.Name] && envErr == nil {
			if err := c.fs.Set(f.Name, v); err != nil {
				envErr = fmt.Errorf("%w: %s=%q: %v", errUsage, e, v, err)
			}
		}
	})
	if envErr != nil {
		return envErr
	}
	for _, f := range c.parsed {
		if err := f(); err != nil {
			return err
		}
	}
	return nil
}

// Secret registers a secret given one of two ways: --NAME (env LEADTHROUGH_NAME) or --NAME-file (env
// LEADTHROUGH_NAME_FILE), the path of a file holding it, whose trailing newline (as echo and most secret stores
// leave one) is trimmed. Neither -h nor an error ever shows the secret: the flag has no default and setting it
// never fails, so no message quotes it. The returned function, called after parse, gives the secret ("" when
// neither is set); both set (on the command line or in the environment) or an unreadable file is a usage error.
func (c *command) Secret(name, help string) func() (string, error) {
	file := name + "-file"
	var value, path string
	c.fs.Func(name, c.register(name, help+" (the `secret` itself, never shown; --"+file+" or the environment "+
		"keep it out of ps)"), func(s string) error { value = s; return nil })
	c.fs.Func(file, c.register(file, "`file` holding --"+name+"; a trailing newline is trimmed; instead of --"+name),
		func(s string) error { path = s; return nil })
	return func() (string, error) {
		switch {
		case path == "":
			return value, nil
		case value != "":
			return "", fmt.Errorf("%w: --%s and --%s are both set (flags or %s and %s): use one",
				errUsage, name, file, c.env[name], c.env[file])
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("%w: --%s: %v", errUsage, file, err)
		}
		s := strings.TrimSuffix(string(b), "\n")
		return strings.TrimSuffix(s, "\r"), nil
	}
}

// clickhouseFlags are shared by every command that talks to ClickHouse; database is the default of
// --clickhouse-database (the demo keeps its data apart from a real install's).
func clickhouseFlags(c *command, database string) *store.Config {
	cfg := &store.Config{}
	c.fs.StringVar(&cfg.Addr, "clickhouse-addr", "127.0.0.1:9000",
		c.register("clickhouse-addr", "ClickHouse native-protocol address host:port (HTTP is not used); see --clickhouse-database"))
	c.fs.StringVar(&cfg.Database, "clickhouse-database", database,
		c.register("clickhouse-database", "ClickHouse database; created by leadthrough migrate"))
	c.fs.StringVar(&cfg.User, "clickhouse-user", "default", c.register("clickhouse-user", "ClickHouse user"))
	c.fs.StringVar(&cfg.Cluster, "cluster", "", c.register("cluster",
		"ClickHouse cluster (remote_servers) the schema spans: migrate creates sharded, replicated tables ON CLUSTER; "+
			"every command of the install must name the same one (docs/scaling.md). Empty: one server"))
	password := c.Secret("clickhouse-password", "ClickHouse password of --clickhouse-user")
	tlsConfig := tlsFlags(c, "clickhouse", "ClickHouse", "its secure native port, 9440 by convention")
	c.parsed = append(c.parsed, func() (err error) {
		if cfg.Password, err = password(); err != nil {
			return err
		}
		cfg.TLS, err = tlsConfig()
		return err
	})
	return cfg
}

// brokersFlag is the Kafka bootstrap list.
func brokersFlag(c *command) *[]string {
	var brokers []string
	c.Func("brokers", "127.0.0.1:9092",
		"comma-separated Kafka bootstrap addresses host:port (leadthrough broker serves 127.0.0.1:9092)",
		func(s string) error {
			brokers = nil
			for _, b := range strings.Split(s, ",") {
				if b = strings.TrimSpace(b); b != "" {
					brokers = append(brokers, b)
				}
			}
			if len(brokers) == 0 {
				return errors.New("need at least one host:port")
			}
			return nil
		})
	return &brokers
}

// windowFlags are the indicator window and coaching kinds.
type windowConfig struct {
	window time.Duration
	kinds  []string
}

func windowFlags(c *command) *windowConfig {
	w := &windowConfig{}
	c.Func("window", "30d", "indicator window W: the window is (as-of − W, as-of]; days like 30d or a Go duration like 12h",
		func(s string) error {
			d, err := indicator.ParseWindow(s)
			w.window = d
			return err
		})
	c.Func("coaching-kinds", "coaching_session,one_on_one,call_review,deal_review",
		"comma-separated activity kinds that count as coaching for coaching_coverage",
		func(s string) error {
			w.kinds = nil
			for _, k := range strings.Split(s, ",") {
				if k = strings.TrimSpace(k); k != "" {
					w.kinds = append(w.kinds, k)
				}
			}
			if len(w.kinds) == 0 {
				return errors.New("need at least one kind")
			}
			return nil
		})
	return w
}

// logFlags sets up the process logger. An unknown level is a usage error, from the command line or the environment.
func logFlags(c *command) func() *slog.Logger {
	var level slog.Level
	c.Func("log-level", "info", "log level: debug, info, warn or error", func(s string) error {
		if err := level.UnmarshalText([]byte(s)); err != nil {
			return fmt.Errorf("want debug, info, warn or error, got %q", s)
		}
		return nil
	})
	return func() *slog.Logger {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	}
}
