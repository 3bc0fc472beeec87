package service_test

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/callevents/callevents/service"
)

// nestedEnvelope is a SOAP 1.1 envelope with a bogus token whose
// operation element holds n elements nested in one another (<a><a>…), the
// shape of the issue 11 report: 1 MiB of them is about 145,000.
func nestedEnvelope(n int) string {
	var sb strings.Builder
	sb.Grow(7*n + 512)
	sb.WriteString(`<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:v1="urn:callevents:phonecallevents:1"><soapenv:Header>`)
	sb.WriteString(tokenHeader("bogus-token"))
	sb.WriteString(`</soapenv:Header><soapenv:Body><v1:GetPhoneCallEvents><v1:extension>0003*210</v1:extension>`)
	sb.WriteString(strings.Repeat("<a>", n))
	sb.WriteString(strings.Repeat("</a>", n))
	sb.WriteString(`</v1:GetPhoneCallEvents></soapenv:Body></soapenv:Envelope>`)
	return sb.String()
}

// Ensure 40 concurrent 1 MiB envelopes of ~145,000 nested elements with a
// bogus token all get a fault, and the process (the test binary is the
// server, through httptest) peaks under 250 MB of resident memory.
// Before the limits each one cost about 25 MB to decode, before
// authentication, and 40 at once took the process to 1 GB.
func TestNestedEnvelopesMemory(t *testing.T) {
	const concurrent, limit = 40, 250 << 20
	b := setup(t, bundleOptions{})
	n := (service.MaxBodyBytesDefault - 1024) / 7
	doc := nestedEnvelope(n)
	if len(doc) > service.MaxBodyBytesDefault {
		t.Fatalf("the envelope is %d bytes, more than the body limit", len(doc))
	}
	base, reset := resetPeakRSS(t)

	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan string, concurrent)
	for range concurrent {
		wg.Go(func() {
			<-start
			resp, err := http.Post(b.srv.URL+service.PathSOAP, "text/xml; charset=utf-8", strings.NewReader(doc))
			if err != nil {
				errs <- err.Error()
				return
			}
			defer resp.Body.Close()
			var body strings.Builder
			bufio.NewReader(resp.Body).WriteTo(&body)
			f, ok := parseFault(t, body.String())
			if !ok || f.code != "400" || !strings.Contains(f.message, "nested more than") {
				errs <- fmt.Sprintf("HTTP %d fault %+v", resp.StatusCode, f)
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	peak := peakRSS(t)
	t.Logf("peak RSS %d MB (%d MB before) for %d concurrent envelopes of %d nested elements", peak>>20, base>>20, concurrent, n)
	if !reset {
		peak -= base // what the envelopes added to the peak of earlier tests
	}
	if peak > limit {
		t.Errorf("peak RSS %d MB, want under %d MB", peak>>20, limit>>20)
	}
}

// resetPeakRSS collects garbage, resets the process's peak resident set
// size (VmHWM) to its current one, and returns it. Where the reset is not
// allowed (reset false), it returns the peak so far.
func resetPeakRSS(t *testing.T) (rss int64, reset bool) {
	t.Helper()
	runtime.GC()
	debug.FreeOSMemory()
	err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
	if err != nil {
		t.Logf("cannot reset VmHWM (%v): counting from the peak so far", err)
	}
	return peakRSS(t), err == nil
}

// peakRSS reads VmHWM from /proc/self/status; it skips where there is none.
func peakRSS(t *testing.T) int64 {
	t.Helper()
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status: %v", err)
	}
	for line := range strings.SplitSeq(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("VmHWM %q: %v", rest, err)
			}
			return kb << 10
		}
	}
	t.Skip("no VmHWM in /proc/self/status")
	return 0
}
