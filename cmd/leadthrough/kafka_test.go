package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/leadthrough/leadthrough/internal/pipelinetest"
	"github.com/leadthrough/leadthrough/internal/testenv"
)

// kafkaCommands are the commands that talk to Kafka and so take the Kafka security flags.
var kafkaCommands = []string{"ingest", "serve", "simulate", "import"}

func TestKafkaSecurityFlagsAreInTheHelpWithoutThePassword(t *testing.T) {
	const secret = "hunter2-Kafka-secret"
	file := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(file, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("LEADTHROUGH_KAFKA_SASL_PASSWORD", secret)
	t.Setenv("LEADTHROUGH_KAFKA_SASL_USERNAME", "alice")
	t.Setenv("LEADTHROUGH_KAFKA_SASL_MECHANISM", "PLAIN")
	for _, name := range kafkaCommands {
		t.Run(name, func(t *testing.T) {
			for _, args := range [][]string{{name, "-h"}, {name, "--kafka-sasl-password", secret, "-h"}} {
				var stdout, stderr bytes.Buffer
				if code := run(args, &stdout, &stderr); code != 0 {
					t.Fatalf("%v: exit %d\n%s", args, code, stderr.String())
				}
				help := stdout.String() + stderr.String()
				for _, want := range []string{"-kafka-tls ", "LEADTHROUGH_KAFKA_TLS)", "-kafka-tls-ca-file", "-kafka-tls-cert-file",
					"-kafka-tls-key-file", "-kafka-tls-server-name", "-kafka-sasl-mechanism", "-kafka-sasl-username",
					"-kafka-sasl-password secret", "LEADTHROUGH_KAFKA_SASL_PASSWORD)", "-kafka-sasl-password-file",
					"LEADTHROUGH_KAFKA_SASL_PASSWORD_FILE", "SCRAM-SHA-512"} {
					if !strings.Contains(help, want) {
						t.Errorf("%v: help lacks %q", args, want)
					}
				}
				if strings.Contains(help, secret) {
					t.Errorf("%v: help shows the password:\n%s", args, help)
				}
			}
		})
	}
}

func TestKafkaSecurityMistakesAreUsageErrorsThatNeverShowThePassword(t *testing.T) {
	const secret = "hunter2-Kafka-secret"
	file := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(file, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"unknown mechanism", nil, []string{"--kafka-sasl-mechanism", "GSSAPI"},
			"want one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512"},
		{"mechanism without username", nil, []string{"--kafka-sasl-mechanism", "PLAIN", "--kafka-sasl-password", secret},
			"--kafka-sasl-mechanism PLAIN needs --kafka-sasl-username"},
		{"mechanism without password", nil, []string{"--kafka-sasl-mechanism", "SCRAM-SHA-256", "--kafka-sasl-username", "a"},
			"needs --kafka-sasl-username and --kafka-sasl-password"},
		{"password without mechanism", map[string]string{"LEADTHROUGH_KAFKA_SASL_PASSWORD": secret},
			[]string{"--kafka-sasl-username", "a"}, "need --kafka-sasl-mechanism"},
		{"password and password file", map[string]string{"LEADTHROUGH_KAFKA_SASL_PASSWORD": secret},
			[]string{"--kafka-sasl-mechanism", "PLAIN", "--kafka-sasl-username", "a", "--kafka-sasl-password-file", file},
			"--kafka-sasl-password and --kafka-sasl-password-file are both set"},
		{"CA file without TLS", nil, []string{"--kafka-tls-ca-file", file}, "--kafka-tls-ca-file needs --kafka-tls"},
		{"unusable CA file", nil, []string{"--kafka-tls", "--kafka-tls-ca-file", file}, "no PEM certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			for _, name := range kafkaCommands {
				var stdout, stderr bytes.Buffer
				args := append([]string{name}, tc.args...)
				if name == "import" {
					args = append(args, "--format", "csv", file)
				}
				code := run(args, &stdout, &stderr)
				out := stdout.String() + stderr.String()
				if code != 2 || !strings.Contains(out, tc.want) {
					t.Errorf("%s: exit %d, want 2 and %q:\n%s", name, code, tc.want, out)
				}
				if strings.Contains(out, secret) {
					t.Errorf("%s: output shows the password:\n%s", name, out)
				}
			}
		})
	}
}

// TestSimulateAndImportPublishOverSASLSSL: the flags and their environment variables reach the producer; the
// password file's trailing newline is not part of the password.
func TestSimulateAndImportPublishOverSASLSSL(t *testing.T) {
	k := testenv.KafkaSASL(t)
	plaintext := testenv.Kafka(t)
	deals := filepath.Join("..", "..", "crm", "csvimport", "testdata", "generic", "deals.csv")
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
	}{
		{"simulate, flags and password file", nil, []string{"simulate", "--days", "3", "--managers", "1",
			"--brokers", k.Addr, "--kafka-tls", "--kafka-tls-ca-file", k.CAFile, "--kafka-sasl-mechanism", "SCRAM-SHA-512",
			"--kafka-sasl-username", k.User, "--kafka-sasl-password-file", k.PasswordFile}},
		{"import, environment", map[string]string{"LEADTHROUGH_BROKERS": k.Addr, "LEADTHROUGH_KAFKA_TLS": "true",
			"LEADTHROUGH_KAFKA_TLS_CA_FILE": k.CAFile, "LEADTHROUGH_KAFKA_SASL_MECHANISM": "scram-sha-256",
			"LEADTHROUGH_KAFKA_SASL_USERNAME": k.User, "LEADTHROUGH_KAFKA_SASL_PASSWORD": k.Password},
			[]string{"import", "--format", "csv", "--source", "crm/acme", "--csv-deal-id", "Opportunity ID",
				"--csv-owner", "Owner", "--csv-created", "Created Date", "--csv-closed", "Close Date",
				"--csv-outcome", "Stage", "--csv-amount", "Amount", "--csv-won", "Closed Won", deals}},
		{"simulate, PLAIN", nil, []string{"simulate", "--days", "3", "--managers", "1", "--brokers", k.Addr,
			"--kafka-tls", "--kafka-tls-ca-file", k.CAFile, "--kafka-sasl-mechanism", "PLAIN",
			"--kafka-sasl-username", k.User, "--kafka-sasl-password", k.Password}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for key, v := range tc.env {
				t.Setenv(key, v)
			}
			topic := fmt.Sprintf("cli-sasl-%d", time.Now().UnixNano())
			var stdout, stderr bytes.Buffer
			if code := run(append(tc.args, "--topic", topic), &stdout, &stderr); code != 0 {
				t.Fatalf("exit %d\n%s%s", code, stdout.String(), stderr.String())
			}
			if n := countMessages(t, plaintext, topic); n == 0 {
				t.Errorf("topic %s is empty after:\n%s", topic, stdout.String())
			}
		})
	}
}

// TestWrongKafkaPasswordIsOneLineNamingKafka runs simulate (publish) and ingest and serve --ingest (consume), as
// processes logging at debug level, with a wrong password: each must fail at once with one line that names Kafka
// and the failed authentication, and neither the password nor the wrong one may appear in anything it writes.
func TestWrongKafkaPasswordIsOneLineNamingKafka(t *testing.T) {
	k := testenv.KafkaSASL(t)
	env := pipelinetest.New(t, "kafka_refused")
	const wrong = "wrong-Passw0rd-6720"
	security := []string{"--log-level", "debug", "--brokers", k.Addr, "--topic", env.Name("refused-"), "--kafka-tls",
		"--kafka-tls-ca-file", k.CAFile, "--kafka-sasl-mechanism", "SCRAM-SHA-512", "--kafka-sasl-username", k.User}
	daemon := []string{"--clickhouse-addr", env.ClickHouse, "--clickhouse-database", env.Database, "--listen", "127.0.0.1:0"}
	for _, tc := range []struct {
		name     string
		args     []string
		password string // the environment variable that holds the wrong password
	}{
		{"simulate", append([]string{"simulate", "--days", "1", "--managers", "1"}, security...),
			"LEADTHROUGH_KAFKA_SASL_PASSWORD=" + wrong},
		{"ingest", append(append([]string{"ingest"}, security...), daemon...),
			"LEADTHROUGH_KAFKA_SASL_PASSWORD_FILE=" + writeFile(t, wrong+"\n")},
		{"serve", append(append([]string{"serve", "--ingest"}, security...), daemon...),
			"LEADTHROUGH_KAFKA_SASL_PASSWORD=" + wrong},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			code, out := runLeadthrough(t, []string{tc.password}, tc.args...)
			took := time.Since(start)
			t.Logf("exit %d after %v:\n%s", code, took.Round(time.Millisecond), out)
			if code != 1 || took > 15*time.Second {
				t.Errorf("exit %d after %v, want 1 at once", code, took)
			}
			var errLine string
			for _, l := range strings.Split(out, "\n") {
				if strings.HasPrefix(l, "leadthrough "+tc.name+": ") {
					errLine = l
				}
			}
			if !strings.Contains(errLine, "Kafka at "+k.Addr+": SASL authentication failed") {
				t.Errorf("no one-line error naming Kafka and the failed authentication")
			}
			if strings.Contains(out, wrong) || strings.Contains(out, k.Password) {
				t.Errorf("output shows a password")
			}
		})
	}
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// countMessages is how many messages topic holds, summed over its partitions.
func countMessages(t *testing.T, addr, topic string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	offsets, err := partitionOffsets(ctx, addr, topic)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, o := range offsets {
		n += o.end - o.first
	}
	return n
}

// offsetRange is where a partition's messages are: offsets first up to (not including) end.
type offsetRange struct{ first, end int64 }

// partitionOffsets is the offset range of each partition of topic at addr, as its leader says now.
func partitionOffsets(ctx context.Context, addr, topic string) (map[int]offsetRange, error) {
	conn, err := kafka.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	parts, err := conn.ReadPartitions(topic)
	conn.Close()
	if err != nil {
		return nil, fmt.Errorf("partitions of %s: %w", topic, err)
	}
	out := make(map[int]offsetRange, len(parts))
	for _, p := range parts {
		leader, err := kafka.DialLeader(ctx, "tcp", addr, topic, p.ID)
		if err != nil {
			return nil, err
		}
		first, end, err := leader.ReadOffsets()
		leader.Close()
		if err != nil {
			return nil, fmt.Errorf("offsets of %s[%d]: %w", topic, p.ID, err)
		}
		out[p.ID] = offsetRange{first, end}
	}
	return out, nil
}
