package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/callevents/callevents/cmd/internal/cliflag"
)

// Ensure the bench runs its three phases and reports each figure.
func TestBenchCommand(t *testing.T) {
	var out bytes.Buffer
	code := run(context.Background(), []string{"--events", "300", "--rate", "100", "--rate-duration", "1s", "--ceiling-duration", "200ms"}, &out, io.Discard)
	if code != 0 {
		t.Fatalf("bench exited %d:\n%s", code, out.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var rep report
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &rep); err != nil {
		t.Fatalf("last line is not the JSON report: %v\n%s", err, out.String())
	}
	if rep.Dialect != "sqlite" || rep.CeilingPerSec <= 0 || rep.DeliveriesPerSec <= 0 || rep.RateEvents != 100 || rep.CPUUsPerDelivery <= 0 || rep.LoadCPUUsPerDelivery <= 0 || rep.P50Ms <= 0 || rep.P99Ms < rep.P50Ms {
		t.Errorf("report %+v", rep)
	}
}

// Ensure a second run on a database that holds a run refuses at once,
// saying why, instead of waiting for deliveries its duplicate reports
// never queue.
func TestBenchRefusesAUsedDatabase(t *testing.T) {
	args := []string{"--db", "sqlite:" + filepath.Join(t.TempDir(), "bench.db"), "--events", "50", "--rate", "50", "--rate-duration", "200ms", "--ceiling-duration", "100ms"}
	var out bytes.Buffer
	if code := run(context.Background(), args, &out, io.Discard); code != 0 {
		t.Fatalf("first run exited %d:\n%s", code, out.String())
	}
	var stderr bytes.Buffer
	code := run(context.Background(), args, io.Discard, &stderr)
	if code == 0 || !strings.Contains(stderr.String(), "already holds a bench run") {
		t.Errorf("second run on the same database: exit %d, %q; want a refusal saying it already holds a bench run", code, stderr.String())
	}
}

// badFlagValues has, for every checked flag, a bad value and the complaint
// that names it (%s is the flag or its variable), as callevents' own table
// has for its commands.
var badFlagValues = map[string][]struct{ value, want string }{
	"events":           {{"0", `%s: "0" is less than 1; write 20000`}},
	"batch":            {{"0", `%s: "0" is less than 1; write 100`}},
	"extensions":       {{"x", `%s: "x" is not a whole number; write 100`}},
	"rate":             {{"fast", `%s: "fast" is not a whole number; write 1000`}},
	"rate-duration":    {{"10", `%s: "10" is not a duration; write 10s`}},
	"ceiling-duration": {{"-3s", `%s: "-3s" is negative; write 3s`}},
	"concurrency":      {{"-3", `%s: "-3" is less than 0; write 128`}},
}

// Ensure every flag that takes more than free text names itself, the bad
// value and a good one when the value is bad, given as a flag or as its
// CALLEVENTS_ variable; and that no such flag is declared with the flag
// package's own types, whose messages do neither.
func TestFlagErrors(t *testing.T) {
	newFlagSet := func() *flag.FlagSet { return (&options{}).flagSet(io.Discard) }
	newFlagSet().VisitAll(func(f *flag.Flag) {
		if _, checked := f.Value.(cliflag.Checked); !checked {
			if typ := fmt.Sprintf("%T", f.Value); typ != "*flag.stringValue" {
				t.Errorf("--%s is a %s: declare it with cliflag.Duration, Int, Bool, List or Text", f.Name, typ)
			}
			return
		}
		cases, ok := badFlagValues[f.Name]
		if !ok {
			t.Errorf("--%s: no bad value in badFlagValues", f.Name)
		}
		for _, tc := range cases {
			err := cliflag.Parse(newFlagSet(), []string{"--" + f.Name + "=" + tc.value})
			if want := fmt.Sprintf(tc.want, "--"+f.Name); err == nil || err.Error() != want {
				t.Errorf("--%s=%q:\n got  %v\n want %s", f.Name, tc.value, err, want)
			}
			key := cliflag.EnvName(f.Name)
			t.Setenv(key, tc.value)
			err = cliflag.Parse(newFlagSet(), nil)
			if want := fmt.Sprintf(tc.want, key); err == nil || err.Error() != want {
				t.Errorf("%s=%q:\n got  %v\n want %s", key, tc.value, err, want)
			}
			os.Unsetenv(key) // t.Setenv restores it at the end
		}
	})
}

// Ensure a bad flag value stops the bench before it does anything, with
// exit code 2 and one line on stderr.
func TestBadFlagValueStopsTheBench(t *testing.T) {
	var stderr bytes.Buffer
	code := run(context.Background(), []string{"--rate-duration", "10"}, io.Discard, &stderr)
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	if code != 2 || len(lines) != 1 || !strings.HasPrefix(lines[0], "callevents-bench: --") || !strings.Contains(lines[0], "; write ") {
		t.Errorf("exit %d, want 2 and one line naming the flag:\n%s", code, stderr.String())
	}
}
