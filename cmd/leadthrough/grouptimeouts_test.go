package main

import (
	"io"
	"testing"
	"time"
)

func TestIngestGroupTimeoutsComeFromFlagsAndEnvironment(t *testing.T) {
	tests := []struct {
		name               string
		env                map[string]string
		args               []string
		session, rebalance time.Duration
	}{
		{"defaults", nil, nil, 10 * time.Second, 30 * time.Second},
		{"environment", map[string]string{"LEADTHROUGH_SESSION_TIMEOUT": "7s", "LEADTHROUGH_REBALANCE_TIMEOUT": "1m"}, nil,
			7 * time.Second, time.Minute},
		{"flags", map[string]string{"LEADTHROUGH_SESSION_TIMEOUT": "7s"},
			[]string{"--session-timeout", "45s", "--rebalance-timeout", "2m"}, 45 * time.Second, 2 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			c := newCommand("ingest", "", io.Discard)
			f := addIngestFlags(c)
			if err := c.parse(tt.args); err != nil {
				t.Fatal(err)
			}
			if f.cfg.SessionTimeout != tt.session || f.cfg.RebalanceTimeout != tt.rebalance {
				t.Errorf("session %s rebalance %s, want %s %s", f.cfg.SessionTimeout, f.cfg.RebalanceTimeout, tt.session,
					tt.rebalance)
			}
		})
	}
}
