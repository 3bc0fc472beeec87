// Command callevents runs the callevents service (serve, or a part of it:
// dispatch, ami), applies database migrations (migrate), manages API
// clients (clients), reports call activity (fire) and prints its version.
// With callevents-bench, it is the only place that reads flags and
// CALLEVENTS_* environment variables and that wires the packages together.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/callevents/callevents/cmd/internal/cliflag"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `usage: callevents <command> [flags]

commands:
  serve      run the SOAP API, token endpoint, PBX intake and dispatcher (flags: --listen, --db, …)
  dispatch   deliver call events only (workers; several may share one MySQL/MariaDB database)
  migrate    apply database migrations and print the schema version
  clients    manage API clients: clients add --name N --scope S | clients list | clients remove ID
  ami        read calls from Asterisk (AMI) into the queue: ami --addr 127.0.0.1:5038 --user U --secret S --org 0003
  fire       report call activity to a running server, as a PBX would (--call-id, --phase, --from, --to)
  version    print the version

Every flag can also be set as CALLEVENTS_<FLAG> (for example CALLEVENTS_DB).
Run "callevents <command> -h" for the flags of a command.
`

// run executes one command and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = runServe(ctx, args[1:], stderr)
	case "ami":
		err = runAMI(ctx, args[1:], stderr)
	case "dispatch":
		err = runDispatch(ctx, args[1:], stderr)
	case "migrate":
		err = runMigrate(ctx, args[1:], stdout, stderr)
	case "clients":
		err = runClients(ctx, args[1:], stdout, stderr)
	case "fire":
		err = runFire(ctx, args[1:], stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "callevents", build)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "callevents: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err != nil && err != cliflag.ErrUsage { // the flag package has printed why
		fmt.Fprintln(stderr, "callevents:", err)
	}
	return cliflag.ExitCode(err)
}
