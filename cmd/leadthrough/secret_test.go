package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSecretComesFromFlagEnvironmentOrFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	withNewline := write("newline", "s3cr3t\n")
	withCRLF := write("crlf", "s3cr3t\r\n")
	bare := write("bare", " s3cr3t ")
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"unset", nil, nil, ""},
		{"flag", nil, []string{"--db-password", "s3cr3t"}, "s3cr3t"},
		{"environment", map[string]string{"LEADTHROUGH_DB_PASSWORD": "s3cr3t"}, nil, "s3cr3t"},
		{"file drops the trailing newline", nil, []string{"--db-password-file", withNewline}, "s3cr3t"},
		{"file drops a trailing CRLF", nil, []string{"--db-password-file", withCRLF}, "s3cr3t"},
		{"file keeps other whitespace", nil, []string{"--db-password-file", bare}, " s3cr3t "},
		{"file from the environment", map[string]string{"LEADTHROUGH_DB_PASSWORD_FILE": withNewline}, nil, "s3cr3t"},
		{"empty value beside a file", map[string]string{"LEADTHROUGH_DB_PASSWORD": ""},
			[]string{"--db-password-file", withNewline}, "s3cr3t"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			c := newCommand("x", "", io.Discard)
			secret := c.Secret("db-password", "database password")
			if err := c.parse(tt.args); err != nil {
				t.Fatal(err)
			}
			got, err := secret()
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("secret %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSecretMistakesAreUsageErrorsThatNeverQuoteIt(t *testing.T) {
	file := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(file, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"flag and file", nil, []string{"--db-password", "s3cr3t", "--db-password-file", file}, "both set"},
		{"environment and file flag", map[string]string{"LEADTHROUGH_DB_PASSWORD": "s3cr3t"},
			[]string{"--db-password-file", file}, "both set"},
		{"flag and environment file", map[string]string{"LEADTHROUGH_DB_PASSWORD_FILE": file},
			[]string{"--db-password", "s3cr3t"}, "both set"},
		{"missing file", nil, []string{"--db-password-file", file + ".missing"}, "--db-password-file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			c := newCommand("x", "", io.Discard)
			secret := c.Secret("db-password", "database password")
			err := c.parse(tt.args)
			if err == nil {
				_, err = secret()
			}
			if !errors.Is(err, errUsage) {
				t.Fatalf("error %v, want a usage error", err)
			}
			if msg := err.Error(); !strings.Contains(msg, tt.want) || strings.Contains(msg, "s3cr3t") ||
				strings.Contains(msg, "from-file") {
				t.Errorf("error %q: want it to say %q and never quote the secret", msg, tt.want)
			}
		})
	}
}

func TestClickHousePasswordFileFillsTheConfigAndBothSetIsExitCode2(t *testing.T) {
	file := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(file, []byte("s3cr3t\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := newCommand("x", "", io.Discard)
	ch := clickhouseFlags(c, "leadthrough")
	if err := c.parse([]string{"--clickhouse-password-file", file}); err != nil {
		t.Fatal(err)
	}
	if ch.Password != "s3cr3t" {
		t.Errorf("password %q, want the file's content without its newline", ch.Password)
	}

	t.Setenv("LEADTHROUGH_CLICKHOUSE_PASSWORD", "s3cr3t")
	var stderr bytes.Buffer
	if code := run([]string{"migrate", "--clickhouse-password-file", file}, io.Discard, &stderr); code != 2 {
		t.Errorf("exit code %d, want 2 (stderr %q)", code, stderr.String())
	}
	if msg := stderr.String(); !strings.Contains(msg, "--clickhouse-password-file") || strings.Contains(msg, "s3cr3t") {
		t.Errorf("stderr %q: want the usage error naming both flags, without the password", msg)
	}
}

// Help is printed after the environment is applied, so a default taken from the environment would leak there.
func TestHelpNeverShowsASecretFromTheEnvironment(t *testing.T) {
	const secret = "s3cr3t-Pa55"
	file := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(file, []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("LEADTHROUGH_CLICKHOUSE_PASSWORD", secret)
	for name, sc := range subcommands {
		var out bytes.Buffer
		_ = sc.run(context.Background(), []string{"-h"}, io.Discard, &out)
		if strings.Contains(out.String(), secret) {
			t.Errorf("%s -h shows the password:\n%s", name, out.String())
		}
		if strings.Contains(out.String(), "clickhouse-password") && !strings.Contains(out.String(), "-clickhouse-password-file") {
			t.Errorf("%s -h has --clickhouse-password but not --clickhouse-password-file", name)
		}
	}
}
