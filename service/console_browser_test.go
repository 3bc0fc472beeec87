package service_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/callevents/callevents/dispatcher"
	"github.com/callevents/callevents/dispatcher/dispatchertest"
)

// consoleScreenshotsEnv names a folder for the browser test's screenshots
// (the README's come from `CONSOLE_SCREENSHOTS=../docs/console go test
// ./service -run TestConsoleBrowser`); without it they go to a temp folder.
const consoleScreenshotsEnv = "CONSOLE_SCREENSHOTS"

// Ensure the console works in a real browser (Debian's headless Chromium
// through chromedp), JavaScript on, as an admin would use it: sign in, open
// an extension, add a POST Call Event with a secret, report a call through
// the intake, see it delivered on the Deliveries page, open it, Resend it
// (the receiver gets the same webhook-id again), sign out. axe-core checks
// every page for serious or critical accessibility violations, and no page
// contains the Call Event's secret.
func TestConsoleBrowser(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		requireTool(t, "chromium (apt-get install chromium)")
	}
	axePath, _ := filepath.Abs(filepath.Join("..", ".ci", "node", "node_modules", "axe-core", "axe.min.js"))
	axeSource, err := os.ReadFile(axePath)
	if err != nil {
		requireTool(t, "axe-core in .ci/node (cd .ci/node && npm ci)")
	}
	shots := os.Getenv(consoleScreenshotsEnv)
	if shots == "" {
		shots = t.TempDir()
	} else if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}

	b := setup(t, bundleOptions{})
	var mu sync.Mutex
	var ids, signatures []string
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		ids = append(ids, r.Header.Get("webhook-id"))
		signatures = append(signatures, r.Header.Get("webhook-signature"))
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rcv.Close)
	received := func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), ids...) }
	policy, err := dispatcher.ParseAllowTargets("127.0.0.0/8")
	if err != nil {
		t.Fatal(err)
	}
	disp, err := dispatcher.New(dispatcher.Config{Store: b.db, Policy: policy, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := disp.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { disp.Stop(context.Background()) })

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(1280, 900))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(cancel)
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(cancelTimeout)
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	const secret = "whsec_browser-test-secret-0123456789"
	var pages []string
	// check screenshots the page, runs axe on it and keeps its HTML.
	check := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("%s: screenshot: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(shots, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
		html, err := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html")))
		if err != nil {
			t.Fatalf("%s: html: %v", name, err)
		}
		pages = append(pages, html)
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](string(axeSource)+";true")); err != nil {
			t.Fatalf("%s: injecting axe: %v", name, err)
		}
		found, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`axe.run(document, {resultTypes: ["violations"]}).then(r =>
			r.violations.filter(v => v.impact === "serious" || v.impact === "critical").map(v => v.id + ": " + v.help + " " + v.nodes.map(n => n.target.join(" ")).join(", ")))`,
			chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("%s: axe: %v", name, err)
		}
		for _, v := range found {
			t.Errorf("%s: axe: %s", name, v)
		}
	}
	id, clientSecret, _ := strings.Cut(b.secret["admin"], ":")

	// axe is injected through the DevTools protocol: the console's own CSP
	// admits no script, as it has none.
	if _, err := chromedp.Call(ctx, page.SetBypassCSP, page.SetBypassCSPParams{Enabled: true}); err != nil {
		t.Fatal(err)
	}
	do("open", chromedp.Navigate(b.srv.URL+"/console/"), chromedp.WaitVisible(chromedp.ID("client_id")))
	check("sign-in")
	do("sign in", chromedp.SendKeys(chromedp.ID("client_id"), id), chromedp.SendKeys(chromedp.ID("client_secret"), clientSecret),
		chromedp.Click(chromedp.CSS(`form.card button[type="submit"]`)), chromedp.WaitVisible(chromedp.ID("extension")))
	do("open the extension", chromedp.SendKeys(chromedp.ID("extension"), "0003*210"), chromedp.Click(chromedp.CSS(`form.inline button`)),
		chromedp.WaitVisible(chromedp.ID("url")))
	do("add a Call Event", chromedp.SetValue(chromedp.ID("type"), "0"), chromedp.SetValue(chromedp.ID("method"), "1"),
		chromedp.SendKeys(chromedp.ID("url"), rcv.URL+"/in"), chromedp.SendKeys(chromedp.ID("note"), "browser"),
		chromedp.SendKeys(chromedp.ID("secret"), secret), chromedp.Click(chromedp.CSS(`button[value="add"]`)),
		chromedp.WaitVisible(chromedp.CSS(`p.notice`)))
	check("call-events")

	r := b.postEvents(t, b.bearer("pbx"), `{"callId":"browser-call","phase":"dial","callerExtension":"0003*100","calledExtension":"0003*210"}`)
	if r.status != http.StatusAccepted || r.queued == nil || *r.queued != 1 {
		t.Fatalf("intake: HTTP %d %s", r.status, r.raw)
	}
	dispatchertest.WaitWithin(t, 30*time.Second, "the delivery at the receiver", func() bool { return len(received()) == 1 })
	deliveries := b.srv.URL + "/console/deliveries?extension=0003*210"
	dispatchertest.WaitWithin(t, 30*time.Second, "the delivery shown delivered", func() bool {
		do("deliveries", chromedp.Navigate(deliveries), chromedp.WaitVisible(chromedp.CSS("table")))
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("td.state-delivered").length`))
		return err == nil && n == 1
	})
	check("deliveries")
	do("open the delivery", chromedp.Click(chromedp.CSS(`td a code`)), chromedp.WaitVisible(chromedp.CSS(`main form button[type="submit"]`)))
	check("delivery")
	// The page shows the signature the receiver got (and not the secret).
	mu.Lock()
	sent := signatures[0]
	mu.Unlock()
	if html := pages[len(pages)-1]; sent == "" || !strings.Contains(html, sent) {
		t.Errorf("the delivery page does not show the webhook-signature %q that was sent", sent)
	}
	do("resend", chromedp.Click(chromedp.CSS(`main form button[type="submit"]`)), chromedp.WaitVisible(chromedp.CSS(`p.notice`)))
	dispatchertest.WaitWithin(t, 30*time.Second, "the resent delivery at the receiver", func() bool { return len(received()) == 2 })
	if got := received(); got[0] == "" || got[0] != got[1] {
		t.Errorf("webhook-ids %q: want the same one twice", got)
	}
	do("overview", chromedp.Navigate(b.srv.URL+"/console/overview"), chromedp.WaitVisible(chromedp.CSS(`svg.chart`)))
	check("overview")
	do("sign out", chromedp.Click(chromedp.CSS(`form.signout button`)), chromedp.WaitVisible(chromedp.ID("client_id")))
	location, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil || !strings.Contains(location, "/console/sign-in") {
		t.Errorf("after sign-out the browser is at %s (%v)", location, err)
	}
	for i, html := range pages {
		if strings.Contains(html, secret) {
			t.Errorf("page %d contains the Call Event's secret", i)
		}
	}
}
