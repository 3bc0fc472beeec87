package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/callevents/callevents"
	"github.com/callevents/callevents/cmd/internal/cliflag"
)

// clientJSON is what the clients command prints; the secret only on add.
type clientJSON struct {
	ClientID     string `json:"clientId"`
	ClientSecret string `json:"clientSecret,omitempty"`
	Scope        string `json:"scope"`
	Name         string `json:"name,omitempty"`
	Created      string `json:"created,omitempty"`
}

const clientsUsage = `usage:
  callevents clients add --name NAME --scope SCOPE   (SCOPE: admin, pbx, org:yyyy or ext:yyyy*zzz)
  callevents clients list
  callevents clients remove CLIENT_ID
(each takes --db as serve does)
`

// runClients manages API clients on the same database as serve.
func runClients(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, clientsUsage)
		return cliflag.ErrUsage
	}
	var cfg toolConfig
	var name, scope string
	fs := cfg.flagSet("clients "+args[0], stderr)
	switch args[0] {
	case "add":
		fs.StringVar(&name, "name", "", "a name for the client")
		fs.StringVar(&scope, "scope", "", "admin, pbx, org:yyyy or ext:yyyy*zzz")
	case "list", "remove":
	default:
		fmt.Fprint(stderr, clientsUsage)
		return cliflag.ErrUsage
	}
	db, err := openTool(ctx, fs, args[1:], &cfg, stderr)
	if err != nil {
		return err
	}
	defer db.Close()
	enc := json.NewEncoder(stdout)

	switch args[0] {
	case "add":
		if name == "" {
			return fmt.Errorf("clients add: --name is required")
		}
		sc, err := callevents.ParseScope(scope)
		if err != nil {
			return fmt.Errorf("clients add: %s", callevents.ErrorMessage(err))
		}
		c, secret, err := callevents.NewClient(name, sc, time.Now())
		if err != nil {
			return err
		}
		if err := db.CreateClient(ctx, c); err != nil {
			return fmt.Errorf("clients add: %w", err)
		}
		return enc.Encode(clientJSON{ClientID: c.ID, ClientSecret: secret, Scope: string(c.Scope), Name: c.Name})
	case "list":
		clients, err := db.FindClients(ctx)
		if err != nil {
			return fmt.Errorf("clients list: %w", err)
		}
		out := make([]clientJSON, len(clients))
		for i, c := range clients {
			out[i] = clientJSON{ClientID: c.ID, Scope: string(c.Scope), Name: c.Name, Created: c.Created.UTC().Format(time.RFC3339)}
		}
		return enc.Encode(out)
	default: // remove
		if fs.NArg() != 1 {
			fmt.Fprint(stderr, clientsUsage)
			return cliflag.ErrUsage
		}
		id := fs.Arg(0)
		if err := db.DeleteClient(ctx, id); err != nil {
			if callevents.ErrorCode(err, 0) == callevents.CodeAuthInvalid {
				return fmt.Errorf("clients remove: no client with id %q", id)
			}
			return fmt.Errorf("clients remove: %w", err)
		}
		return enc.Encode(map[string]any{"clientId": id, "removed": true})
	}
}
