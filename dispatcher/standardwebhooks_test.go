package dispatcher_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callevents/callevents"
	"github.com/callevents/callevents/dispatcher/dispatchertest"
)

// The signature test's receiver tools: node, and the npm packages pinned in
// <repo>/.ci/node (installed by .ci/run).
var nodePackages = []string{"standardwebhooks", "svix"}

// needNodeVerifier returns the node_modules folder holding nodePackages,
// skipping the test when node or a package is missing, or failing it under
// CI=true, where .ci/run installs them: a missing one there is a broken
// set-up, not a reason to test less.
func needNodeVerifier(t *testing.T) string {
	t.Helper()
	modules, err := filepath.Abs(filepath.Join("..", ".ci", "node", "node_modules"))
	if err == nil {
		_, err = exec.LookPath("node")
	}
	for _, p := range nodePackages {
		if err == nil {
			_, err = os.Stat(filepath.Join(modules, p, "package.json"))
		}
	}
	if err != nil {
		msg := fmt.Sprintf("node with %s in .ci/node is not available (.ci/run installs them; by hand: cd .ci/node && npm ci): %v", strings.Join(nodePackages, " and "), err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return modules
}

// rawRequest is a request as a node:http receiver sees it.
type rawRequest struct {
	Method  string            `json:"method"`
	URL     string            `json:"url"` // the request target, as sent
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
}

// nodeVerdict is what verify_standardwebhooks.mjs found for one request.
type nodeVerdict struct {
	Payload string            `json:"payload"`
	Params  map[string]string `json:"params"`
	// Per library: "ok", or the error it threw; Tampered has one byte
	// added to the payload, OtherId another webhook-id.
	StandardWebhooks         string `json:"standardwebhooks"`
	StandardWebhooksTampered string `json:"standardwebhooksTampered"`
	StandardWebhooksOtherID  string `json:"standardwebhooksOtherId"`
	Whsec                    string `json:"whsec"`
	WhsecTampered            string `json:"whsecTampered"`
	WhsecOtherID             string `json:"whsecOtherId"`
	Svix                     string `json:"svix"`
	SvixTampered             string `json:"svixTampered"`
	SvixOtherID              string `json:"svixOtherId"`
}

// Ensure real deliveries, POST and GET, verify with the official Standard
// Webhooks library for Node (npm standardwebhooks, with the raw secret and
// with its whsec_ form) and with svix, using the README's payload rule: the
// POST body, or the last ten &-separated fields of a GET's raw query, also
// when the Call Event's URL has a query of its own (a CallID in it
// included), or ends in ? or &.
func TestSignatureVerifiesWithStandardWebhooksLibraries(t *testing.T) {
	modules := needNodeVerifier(t)
	st := openStore(t, "sqlite:"+filepath.Join(t.TempDir(), "callevents.db"))

	var mu sync.Mutex
	var got []rawRequest
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h := map[string]string{"host": r.Host} // node:http keeps Host among the headers
		for k, v := range r.Header {
			h[strings.ToLower(k)] = strings.Join(v, ", ")
		}
		mu.Lock()
		got = append(got, rawRequest{Method: r.Method, URL: r.RequestURI, Headers: h, Body: string(body)})
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rcv.Close)

	urls := map[string]callevents.Method{
		rcv.URL + "/post": callevents.MethodPOST,
		rcv.URL + "/get":  callevents.MethodGET,
		rcv.URL + "/get-own?token=a%26b&CallID=ours": callevents.MethodGET,
		rcv.URL + "/get-mark?":                       callevents.MethodGET,
		rcv.URL + "/get-amp?x=1&":                    callevents.MethodGET,
	}
	for u, m := range urls {
		mustAddCallEvent(t, st, callevents.CallEvent{Extension: extA, Type: callevents.DialIn, Method: m, URL: u, Secret: testSecret})
	}
	mustStart(t, testConfig(t, st))
	activity := dial("call-sw")
	if n := mustAccept(t, st, time.Now(), activity); n != len(urls) {
		t.Fatalf("queued %d, want %d", n, len(urls))
	}
	dispatchertest.WaitFor(t, "every delivery delivered", func() bool {
		for _, d := range deliveries(t, st, extA) {
			if d.State != callevents.DeliveryDelivered {
				return false
			}
		}
		return true
	})
	mu.Lock()
	requests := append([]rawRequest(nil), got...)
	mu.Unlock()
	if len(requests) != len(urls) {
		t.Fatalf("%d requests at the receiver, want %d", len(requests), len(urls))
	}

	verdicts := runNodeVerifier(t, modules, testSecret, requests)
	wantPayload := activity.ExtensionEvents()[1].Params.Encode() // Dial-In on extA
	wantParams, _ := url.ParseQuery(wantPayload)
	for i, v := range verdicts {
		req := requests[i]
		name := req.Method + " " + req.URL
		if v.Payload != wantPayload {
			t.Errorf("%s: payload read as\n %q\nwant\n %q", name, v.Payload, wantPayload)
		}
		if len(v.Params) != 10 || v.Params["CallID"] != "call-sw" || v.Params["CallerIDName"] != wantParams.Get("CallerIDName") {
			t.Errorf("%s: parameters %v", name, v.Params)
		}
		for lib, r := range map[string][3]string{
			"standardwebhooks (raw key)":    {v.StandardWebhooks, v.StandardWebhooksTampered, v.StandardWebhooksOtherID},
			"standardwebhooks (whsec_ key)": {v.Whsec, v.WhsecTampered, v.WhsecOtherID},
			"svix":                          {v.Svix, v.SvixTampered, v.SvixOtherID},
		} {
			if r[0] != "ok" {
				t.Errorf("%s: %s does not verify it: %s", name, lib, r[0])
			}
			for j, what := range []string{"a tampered payload", "another webhook-id"} {
				if !strings.HasPrefix(r[j+1], "WebhookVerificationError") {
					t.Errorf("%s: %s on %s: %q, want a WebhookVerificationError", name, lib, what, r[j+1])
				}
			}
		}
	}
}

// runNodeVerifier runs testdata/verify_standardwebhooks.mjs on requests.
// An ES module finds its packages only in a node_modules beside or above
// it (NODE_PATH does not apply), so it runs from a temporary folder that
// links to modules.
func runNodeVerifier(t *testing.T, modules, secret string, requests []rawRequest) []nodeVerdict {
	t.Helper()
	script, err := os.ReadFile(filepath.Join("testdata", "verify_standardwebhooks.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.Symlink(modules, filepath.Join(dir, "node_modules")); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "verify.mjs")
	if err := os.WriteFile(path, script, 0o644); err != nil {
		t.Fatal(err)
	}
	in, _ := json.Marshal(requests)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", path, secret)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node verify.mjs: %v\n%s", err, stderr.String())
	}
	var verdicts []nodeVerdict
	if err := json.Unmarshal(out, &verdicts); err != nil || len(verdicts) != len(requests) {
		t.Fatalf("node verify.mjs printed %d verdicts for %d requests (%v):\n%s", len(verdicts), len(requests), err, out)
	}
	return verdicts
}

// Ensure the README's receiver reads the payload with the payloadOf that
// TestSignatureVerifiesWithStandardWebhooksLibraries runs, comment and all,
// so that the rule a reader copies is the tested one.
func TestREADMEPayloadRuleIsTheTestedOne(t *testing.T) {
	script, err := os.ReadFile(filepath.Join("testdata", "verify_standardwebhooks.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	start := bytes.Index(script, []byte("// The signed payload:"))
	end := bytes.Index(script, []byte("\n}\n"))
	if start < 0 || end < start {
		t.Fatal("no payloadOf, with its comment, in testdata/verify_standardwebhooks.mjs")
	}
	if rule := script[start : end+3]; !bytes.Contains(readme, rule) {
		t.Errorf("README.md does not show the tested payload rule:\n%s", rule)
	}
}
