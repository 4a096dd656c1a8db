package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/leadthrough/leadthrough/store"
)

func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("migrate", "Creates the database and applies the schema migrations it has not recorded yet. Safe to re-run.", stderr)
	chCfg := clickhouseFlags(c, "leadthrough")
	logger := logFlags(c)
	if err := c.parse(args); err != nil {
		return err
	}
	s, err := migrate(ctx, *chCfg, logger())
	if err != nil {
		return err
	}
	defer s.Close()
	v, err := s.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "database %s at %s is at schema version %d\n", chCfg.Database, chCfg.Addr, v)
	return nil
}

// migrate creates the database, opens it and applies pending migrations.
func migrate(ctx context.Context, cfg store.Config, log *slog.Logger) (*store.Store, error) {
	if err := store.CreateDatabase(ctx, cfg); err != nil {
		return nil, err
	}
	s, err := store.Open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if _, err := s.Migrate(ctx, log); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}
