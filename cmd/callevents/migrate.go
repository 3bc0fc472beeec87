package main

import (
	"context"
	"encoding/json"
	"io"
)

// runMigrate applies pending migrations and prints the schema version.
func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg toolConfig
	db, err := openTool(ctx, cfg.flagSet("migrate", stderr), args, &cfg, stderr)
	if err != nil {
		return err
	}
	defer db.Close()
	v, err := db.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	return json.NewEncoder(stdout).Encode(map[string]any{"schemaVersion": v, "dialect": db.Dialect()})
}
