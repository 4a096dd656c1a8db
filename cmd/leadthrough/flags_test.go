package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestEnvironmentSetsFlagsAndCommandLineWins(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		addr    string
		window  time.Duration
		brokers []string
	}{
		{"defaults", nil, nil, "127.0.0.1:9000", 30 * 24 * time.Hour, []string{"127.0.0.1:9092"}},
		{"environment", map[string]string{"LEADTHROUGH_CLICKHOUSE_ADDR": "ch:9000", "LEADTHROUGH_WINDOW": "7d",
			"LEADTHROUGH_BROKERS": "k1:9092, k2:9092"}, nil, "ch:9000", 7 * 24 * time.Hour, []string{"k1:9092", "k2:9092"}},
		{"flag over environment", map[string]string{"LEADTHROUGH_CLICKHOUSE_ADDR": "ch:9000", "LEADTHROUGH_WINDOW": "7d"},
			[]string{"--clickhouse-addr", "other:9001", "--window", "12h"}, "other:9001", 12 * time.Hour, []string{"127.0.0.1:9092"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			c := newCommand("x", "", io.Discard)
			ch := clickhouseFlags(c, "leadthrough")
			w := windowFlags(c)
			brokers := brokersFlag(c)
			if err := c.parse(tt.args); err != nil {
				t.Fatal(err)
			}
			if ch.Addr != tt.addr || w.window != tt.window || strings.Join(*brokers, ",") != strings.Join(tt.brokers, ",") {
				t.Errorf("got addr %s window %s brokers %v, want %s %s %v", ch.Addr, w.window, *brokers, tt.addr, tt.window, tt.brokers)
			}
		})
	}
}

func TestTopicFlagReplacesDefaultAndRepeats(t *testing.T) {
	tests := []struct {
		name string
		env  string
		args []string
		want string
	}{
		{"default", "", nil, "crm.events=cloudevents"},
		{"one flag replaces the default", "", []string{"--topic", "a"}, "a=cloudevents"},
		{"repeated", "", []string{"--topic", "a", "--topic", "b=hubspot", "--topic", "c=salesforce-cdc"},
			"a=cloudevents,b=hubspot,c=salesforce-cdc"},
		{"environment list", "x,y", nil, "x=cloudevents,y=cloudevents"},
		{"flag instead of the environment", "x", []string{"--topic", "y"}, "y=cloudevents"},
		{"repeated flag instead of the environment", "x,z", []string{"--topic", "y", "--topic", "w=hubspot"},
			"y=cloudevents,w=hubspot"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.env != "" {
				t.Setenv("LEADTHROUGH_TOPIC", tt.env)
			}
			c := newCommand("x", "", io.Discard)
			topics := topicsFlag(c)
			if err := c.parse(tt.args); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, t := range *topics {
				got = append(got, t.name+"="+t.format)
			}
			if got := strings.Join(got, ","); got != tt.want {
				t.Errorf("topics %s, want %s", got, tt.want)
			}
		})
	}
}

func TestBadInputIsAUsageErrorWithExitCode2(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"unknown command", nil, []string{"nope"}, "unknown command"},
		{"unknown flag", nil, []string{"indicators", "--nope"}, "flag provided but not defined"},
		{"bad window", nil, []string{"indicators", "--window", "30x"}, "invalid window"},
		{"bad format", nil, []string{"indicators", "--format", "xml"}, "--format must be table or json"},
		{"bad as-of", nil, []string{"indicators", "--as-of", "yesterday"}, "RFC 3339"},
		{"unknown topic format", nil, []string{"ingest", "--topic", "t=avro"}, `unknown format "avro"`},
		{"stage both won and lost", nil, []string{"ingest", "--topic", "t=hubspot", "--hubspot-won-stages", "s1",
			"--hubspot-lost-stages", "s1"}, "hubspot"},
		{"bad environment", map[string]string{"LEADTHROUGH_BATCH_SIZE": "many"}, []string{"ingest"}, "LEADTHROUGH_BATCH_SIZE"},
		// Port 1 refuses connections: a level that slipped through would fail later, with exit code 1.
		{"bad log level", nil, []string{"migrate", "--log-level", "loud", "--clickhouse-addr", "127.0.0.1:1"},
			`invalid value "loud" for flag -log-level: want debug, info, warn or error`},
		{"bad log level in the environment", map[string]string{"LEADTHROUGH_LOG_LEVEL": "verbose"},
			[]string{"migrate", "--clickhouse-addr", "127.0.0.1:1"}, `LEADTHROUGH_LOG_LEVEL="verbose"`},
		{"bad format in the environment", map[string]string{"LEADTHROUGH_FORMAT": "xml"},
			[]string{"indicators", "--clickhouse-addr", "127.0.0.1:1"}, "--format must be table or json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var stderr bytes.Buffer
			if code := run(tt.args, io.Discard, &stderr); code != 2 {
				t.Errorf("exit code %d, want 2 (stderr %q)", code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("stderr %q does not mention %q", stderr.String(), tt.want)
			}
		})
	}
}

func TestEnvironmentIsIgnoredForAFlagOnTheCommandLine(t *testing.T) {
	t.Setenv("LEADTHROUGH_BATCH_SIZE", "many") // invalid, but the flag below is given
	t.Setenv("LEADTHROUGH_LOG_LEVEL", "loud")
	c := newCommand("x", "", io.Discard)
	in := addIngestFlags(c)
	logFlags(c)
	if err := c.parse([]string{"--batch-size", "10", "--log-level", "warn"}); err != nil {
		t.Fatal(err)
	}
	if in.cfg.BatchSize != 10 {
		t.Errorf("batch size %d, want 10", in.cfg.BatchSize)
	}
}

func TestImportReadsTheEnvironmentAfterItsFlagsAndPath(t *testing.T) {
	file := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(file, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("LEADTHROUGH_CLICKHOUSE_USER", "env-user")
	t.Setenv("LEADTHROUGH_CLICKHOUSE_DATABASE", "env_db")
	c := newCommand("import", "", io.Discard)
	ch := clickhouseFlags(c, "leadthrough")
	path, err := parseWithPath(c, []string{"--clickhouse-user", "flag-user", "export.csv", "--clickhouse-password-file", file})
	if err != nil {
		t.Fatal(err)
	}
	if path != "export.csv" || ch.User != "flag-user" || ch.Database != "env_db" || ch.Password != "from-file" {
		t.Errorf("path %q user %q database %q password from file %v, want export.csv, flag-user, env_db, true",
			path, ch.User, ch.Database, ch.Password == "from-file")
	}
}

func TestUnreachableClickHouseIsOneLineWithAHint(t *testing.T) {
	var stderr bytes.Buffer
	// Port 1 on loopback refuses connections.
	code := run([]string{"indicators", "--clickhouse-addr", "127.0.0.1:1"}, io.Discard, &stderr)
	if code != 1 {
		t.Fatalf("exit code %d, want 1", code)
	}
	msg := stderr.String()
	if strings.Count(strings.TrimSpace(msg), "\n") != 0 || !strings.Contains(msg, "cannot reach ClickHouse at 127.0.0.1:1") ||
		!strings.Contains(msg, "make clickhouse-up") {
		t.Errorf("message %q: want one line naming the address with a hint", msg)
	}
}

func TestEveryFlagHasAnEnvironmentVariableInItsHelp(t *testing.T) {
	for name, sc := range subcommands {
		var out bytes.Buffer
		if err := sc.run(context.Background(), []string{"-h"}, io.Discard, &out); err == nil {
			t.Errorf("%s -h: want flag.ErrHelp", name)
		}
		flags, envs := 0, strings.Count(out.String(), "(env LEADTHROUGH_")
		for _, line := range strings.Split(out.String(), "\n") {
			if strings.HasPrefix(line, "  -") {
				flags++
			}
		}
		if flags == 0 || flags != envs {
			t.Errorf("%s: %d flags but %d environment variables in its help:\n%s", name, flags, envs, out.String())
		}
	}
}
