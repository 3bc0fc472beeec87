package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/callevents/callevents/cmd/internal/cliflag"
)

// flagSets returns a fresh flag set of every command, by command name.
func flagSets() map[string]*flag.FlagSet {
	sets := map[string]*flag.FlagSet{}
	sets["serve"] = (&serveConfig{}).flagSet(io.Discard)
	sets["dispatch"] = (&dispatchConfig{}).flagSet(io.Discard)
	sets["ami"] = (&amiConfig{}).flagSet(io.Discard)
	sets["migrate"] = (&toolConfig{}).flagSet("migrate", io.Discard)
	sets["fire"] = newFireFlagSet(&fireActivity{}, &fireOptions{}, io.Discard)
	return sets
}

// badFlagValues has, for every flag that takes a duration, a number, a
// true/false, a list or one of a few words, a bad value and the complaint
// that names it (%s is the flag or its variable).
var badFlagValues = map[string][]struct{ value, want string }{
	"log-format":          {{"yaml", `%s: "yaml" is not a log format; write json or text`}},
	"log-level":           {{"verbose", `%s: "verbose" is not a log level; write debug, info, warn or error`}},
	"max-per-extension":   {{"lots", `%s: "lots" is not a whole number; write 100`}, {"-1", `%s: "-1" is less than 0; write 100`}},
	"token-ttl":           {{"2", `%s: "2" is not a duration; write 2s`}},
	"console":             {{"yes", `%s: "yes" is neither true nor false; write true or false`}},
	"console-session-ttl": {{"8", `%s: "8" is not a duration; write 8s`}},
	"trusted-proxies":     {{"10.0.0.5,proxy.internal", `%s: "proxy.internal" is neither a CIDR nor an IP address; write 10.0.0.5,192.168.0.0/24`}},
	"dispatch":            {{"yes", `%s: "yes" is neither true nor false; write true or false`}},
	"shutdown-timeout":    {{"-1s", `%s: "-1s" is negative; write 15s`}},
	"allow-targets": {
		{"10.0.0.0/33", `%s: "10.0.0.0/33" is not a CIDR; write 10.0.0.0/8,192.168.1.10,crm.internal,*.example.com`},
		{"crm.internal, not a host", `%s: "not a host" is neither an IP address nor a host name (a leading *. is the only wildcard); write 10.0.0.0/8,192.168.1.10,crm.internal,*.example.com`},
	},
	"concurrency":          {{"-3", `%s: "-3" is less than 0; write 128`}},
	"receiver-concurrency": {{"1.5", `%s: "1.5" is not a whole number; write 32`}},
	"order-hold":           {{"a minute", `%s: "a minute" is not a duration; write 1m (a number and a unit: ms, s, m or h)`}},
	"breaker-failures":     {{"five", `%s: "five" is not a whole number; write 5`}},
	"delivery-timeout":     {{"10", `%s: "10" is not a duration; write 10s`}},
	"lease":                {{"60", `%s: "60" is not a duration; write 60s`}},
	"rescue-interval":      {{"fast", `%s: "fast" is not a duration; write 10s (a number and a unit: ms, s, m or h)`}},
	"retention":            {{"7d", `%s: "7d" is not a duration; write 168h (a number and a unit: ms, s, m or h)`}},
	"ami-org":              {{"3", `%s: "3" is not an organization code; write 0003`}},
	"org":                  {{"00003", `%s: "00003" is not an organization code; write 0003`}},
	"ami-map": {
		{"210:0003*210", `%s: "210:0003*210" is not endpoint=extended number; write 210=0003*210,alice=0003*211`},
		{"210=0003*210,210=0003*211", `%s: "210=0003*211" maps endpoint "210" a second time; write 210=0003*210,alice=0003*211`},
	},
	"map":      {{"alice=211", `%s: "alice=211" is not endpoint=extended number; write 210=0003*210,alice=0003*211`}},
	"ami-dids": {{"4930123456;4930123457", `%s: "4930123456;4930123457" is not a phone number; write 4930123456,+4930123457`}},
	"dids":     {{"4930123456, 030 1234", `%s: "030 1234" is not a phone number; write 4930123456,+4930123457`}},
}

// Ensure every flag that takes more than free text names itself, the bad
// value and a good one when the value is bad, given as a flag or as its
// CALLEVENTS_ variable; and that no such flag is declared with the flag
// package's own types, whose messages do neither.
func TestFlagErrors(t *testing.T) {
	for command := range flagSets() {
		flagSets()[command].VisitAll(func(f *flag.Flag) {
			if _, checked := f.Value.(cliflag.Checked); !checked {
				if typ := fmt.Sprintf("%T", f.Value); typ != "*flag.stringValue" {
					t.Errorf("%s --%s is a %s: declare it with cliflag.Duration, Int, Bool, List or Text", command, f.Name, typ)
				}
				return
			}
			cases, ok := badFlagValues[f.Name]
			if !ok {
				t.Errorf("%s --%s: no bad value in badFlagValues", command, f.Name)
			}
			for _, tc := range cases {
				// The flag form.
				fs := flagSets()[command]
				err := cliflag.Parse(fs, []string{"--" + f.Name + "=" + tc.value})
				if want := fmt.Sprintf(tc.want, "--"+f.Name); err == nil || err.Error() != want {
					t.Errorf("%s --%s=%q:\n got  %v\n want %s", command, f.Name, tc.value, err, want)
				}
				// The environment form, named by its variable.
				key := cliflag.EnvName(f.Name)
				t.Setenv(key, tc.value)
				err = cliflag.Parse(flagSets()[command], nil)
				if want := fmt.Sprintf(tc.want, key); err == nil || err.Error() != want {
					t.Errorf("%s %s=%q:\n got  %v\n want %s", command, key, tc.value, err, want)
				}
				os.Unsetenv(key) // t.Setenv restores it at the end
			}
		})
	}
}

// Ensure good values still parse to what they say, from a flag or the
// environment, with the flag winning.
func TestFlagValuesParse(t *testing.T) {
	var cfg serveConfig
	t.Setenv("CALLEVENTS_RETENTION", "48h")
	t.Setenv("CALLEVENTS_LEASE", "90s")
	fs := cfg.flagSet(io.Discard)
	err := cliflag.Parse(fs, []string{"--lease", "2m", "--dispatch=false", "--concurrency", " 7 ", "--allow-targets", "10.0.0.0/8, *.example.com",
		"--ami-map", "210=0003*210", "--ami-dids", "+4930123456", "--ami-org", "0003", "--log-level", "debug"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Delivery.Retention != 48*time.Hour || cfg.Delivery.Lease != 2*time.Minute || cfg.Dispatch || cfg.Delivery.Concurrency != 7 ||
		cfg.Outbound.AllowTargets != "10.0.0.0/8, *.example.com" || cfg.AMI.Map != "210=0003*210" || cfg.AMI.DIDs != "+4930123456" || cfg.AMI.Org != "0003" || cfg.Log.Level != "debug" {
		t.Errorf("parsed %+v", cfg)
	}
	// Defaults are untouched by an empty environment.
	var dflt dispatchConfig
	if err := cliflag.Parse(dflt.flagSet(io.Discard), nil); err != nil {
		t.Fatal(err)
	}
	if dflt.Delivery.Lease != 90*time.Second || dflt.Delivery.OrderHold != 60*time.Second || dflt.Delivery.Concurrency != 128 || dflt.Log.Format != "json" {
		t.Errorf("defaults %+v", dflt)
	}
}

// Ensure a bad flag value stops the command before it does anything, with
// exit code 2 and one line on stderr: serve does not create its database.
func TestBadFlagValueStopsTheCommand(t *testing.T) {
	dir := t.TempDir()
	db := "sqlite:" + filepath.Join(dir, "never.db")
	for _, args := range [][]string{
		{"serve", "--listen", "127.0.0.1:0", "--db", db, "--lease", "60"},
		{"dispatch", "--db", db, "--retention", "7d"},
		{"ami", "--db", db, "--addr", "127.0.0.1:1", "--map", "nonsense"},
		{"migrate", "--db", db, "--log-level", "loud"},
		{"clients", "list", "--db", db, "--log-format", "xml"},
	} {
		var stderr bytes.Buffer
		code := run(context.Background(), args, io.Discard, &stderr)
		lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
		if code != 2 || len(lines) != 1 || !strings.HasPrefix(lines[0], "callevents: --") || !strings.Contains(lines[0], "; write ") {
			t.Errorf("%v: exit %d, want 2 and one line naming the flag:\n%s", args, code, stderr.String())
		}
	}
	if matches, _ := filepath.Glob(filepath.Join(dir, "*")); len(matches) != 0 {
		t.Errorf("a command with a bad flag created %v", matches)
	}
}
