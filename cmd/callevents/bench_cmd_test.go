package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
)

// Ensure `callevents bench` runs its three phases and reports each figure.
func TestBenchCommand(t *testing.T) {
	var out bytes.Buffer
	code := run(context.Background(), []string{"bench", "--events", "300", "--rate", "100", "--rate-duration", "1s", "--ceiling-duration", "200ms"}, &out, io.Discard)
	if code != 0 {
		t.Fatalf("bench exited %d:\n%s", code, out.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var rep benchReport
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &rep); err != nil {
		t.Fatalf("last line is not the JSON report: %v\n%s", err, out.String())
	}
	if rep.Dialect != "sqlite" || rep.CeilingPerSec <= 0 || rep.DeliveriesPerSec <= 0 || rep.RateEvents != 100 || rep.P50Ms <= 0 || rep.P99Ms < rep.P50Ms {
		t.Errorf("report %+v", rep)
	}
}
