package main

import (
	"bufio"
	"flag"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/callevents/callevents/cmd/internal/cliflag"
)

// Ensure every variable the packaged env file sets or suggests (in a
// comment) is one of serve's, with a value serve accepts: the file is what
// an operator edits first, and a misspelt name would be ignored silently.
func TestPackagedEnvFile(t *testing.T) {
	f, err := os.Open("packaging/callevents.env")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	line := regexp.MustCompile(`^#?(CALLEVENTS_[A-Z0-9_]+)=(.*)$`)
	var cfg serveConfig
	flags := map[string]bool{}
	cfg.flagSet(io.Discard).VisitAll(func(fl *flag.Flag) { flags[cliflag.EnvName(fl.Name)] = true })
	seen := 0
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		m := line.FindStringSubmatch(sc.Text())
		if m == nil {
			if text := strings.TrimSpace(sc.Text()); text != "" && !strings.HasPrefix(text, "#") {
				t.Errorf("line %d is neither a comment nor CALLEVENTS_…=value: %q", n, text)
			}
			continue
		}
		seen++
		key, value := m[1], m[2]
		if !flags[key] {
			t.Errorf("line %d: %s is no variable of serve", n, key)
			continue
		}
		if value == "" {
			continue
		}
		t.Setenv(key, value)
		var cfg serveConfig
		if err := cliflag.Parse(cfg.flagSet(io.Discard), nil); err != nil {
			t.Errorf("line %d: %v", n, err)
		}
		os.Unsetenv(key)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if seen < 5 {
		t.Errorf("found only %d variables in the env file", seen)
	}
}

// Ensure the shipped binary links no test scaffolding: the bench, with its
// loopback servers and profiler, is cmd/callevents-bench.
func TestBinaryLinksNoBenchRig(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := strings.Fields(string(out))
	for _, pkg := range []string{"net/http/httptest", "runtime/pprof", "testing"} {
		for _, dep := range deps {
			if dep == pkg {
				t.Errorf("callevents depends on %s", pkg)
			}
		}
	}
}
