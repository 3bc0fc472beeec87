package service_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callevents/callevents"
	"github.com/callevents/callevents/service"
)

// consoleUser is a browser without JavaScript: a cookie jar that does not
// follow redirects, so that each answer can be checked.
type consoleUser struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newConsoleUser(t *testing.T, b *testBundle) *consoleUser {
	jar, _ := cookiejar.New(nil)
	return &consoleUser{t: t, base: b.srv.URL, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type consoleAnswer struct {
	status   int
	location string
	body     string
	header   http.Header
}

func (u *consoleUser) do(req *http.Request) consoleAnswer {
	u.t.Helper()
	resp, err := u.c.Do(req)
	if err != nil {
		u.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return consoleAnswer{status: resp.StatusCode, location: resp.Header.Get("Location"), body: string(body), header: resp.Header}
}

func (u *consoleUser) get(path string) consoleAnswer {
	u.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u.base+path, nil)
	return u.do(req)
}

func (u *consoleUser) post(path string, form url.Values) consoleAnswer {
	u.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return u.do(req)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

// csrf reads the CSRF token from a page, as the browser's form would send it.
func (u *consoleUser) csrf(page string) string {
	u.t.Helper()
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		u.t.Fatalf("no CSRF token on the page:\n%s", page)
	}
	return m[1]
}

// signIn signs in as the bundle's client of scope and returns the cookie.
func (u *consoleUser) signIn(b *testBundle, scope string) *http.Cookie {
	u.t.Helper()
	id, secret, _ := strings.Cut(b.secret[scope], ":")
	a := u.post("/console/sign-in", url.Values{"client_id": {id}, "client_secret": {secret}})
	if a.status != http.StatusSeeOther || a.location != "/console/call-events" {
		u.t.Fatalf("sign-in as %s: HTTP %d %s\n%s", scope, a.status, a.location, a.body)
	}
	base, _ := url.Parse(u.base + "/console/")
	for _, c := range u.c.Jar.Cookies(base) {
		if c.Name == "callevents_console" {
			return c
		}
	}
	u.t.Fatal("no session cookie after sign-in")
	return nil
}

// Ensure the console's whole flow without JavaScript: sign in, open an
// extension, add a POST Call Event with a secret, see a delivery reported
// through the intake on the Deliveries page, open it, resend it, sign out;
// and that no page shows the secret.
func TestConsoleFlow(t *testing.T) {
	b := setup(t, bundleOptions{})
	var tests atomic.Int32
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { tests.Add(1); w.WriteHeader(http.StatusNoContent) }))
	t.Cleanup(rcv.Close)
	u := newConsoleUser(t, b)
	const secret = "whsec_console-flow-secret-0123456789"
	var pages []string
	keep := func(a consoleAnswer) consoleAnswer { pages = append(pages, a.body); return a }

	if a := u.get("/console/"); a.status != http.StatusSeeOther || a.location != "/console/sign-in" {
		t.Fatalf("signed out, /console/: HTTP %d %s", a.status, a.location)
	}
	signIn := keep(u.get("/console/sign-in"))
	for _, label := range []string{`<label for="client_id">Client ID</label>`, `<label for="client_secret">Client secret</label>`, `>Sign in</button>`} {
		if !strings.Contains(signIn.body, label) {
			t.Errorf("the sign-in page lacks %s", label)
		}
	}
	if a := u.post("/console/sign-in", url.Values{"client_id": {"nobody"}, "client_secret": {"wrong"}}); a.status != http.StatusUnauthorized || !strings.Contains(a.body, "Wrong client ID or secret.") {
		t.Errorf("wrong secret: HTTP %d\n%s", a.status, a.body)
	}
	raw := u.post("/console/sign-in", url.Values{"client_id": {strings.Split(b.secret["admin"], ":")[0]}, "client_secret": {strings.Split(b.secret["admin"], ":")[1]}})
	if sc := raw.header.Get("Set-Cookie"); !strings.Contains(sc, "HttpOnly") || !strings.Contains(sc, "SameSite=Strict") || !strings.Contains(sc, "Path=/console/") {
		t.Errorf("Set-Cookie %q, want HttpOnly, SameSite=Strict, Path=/console/", sc)
	}
	cookie := u.signIn(b, "admin") // a session of its own, replacing that one in the jar

	page := keep(u.get("/console/call-events?extension=0003*210"))
	if page.status != http.StatusOK || !strings.Contains(page.body, "Call Events of 0003*210") || !strings.Contains(page.body, "Add Call Event") {
		t.Fatalf("open 0003*210: HTTP %d\n%s", page.status, page.body)
	}
	token := u.csrf(page.body)
	add := url.Values{"csrf": {token}, "extension": {"0003*210"}, "type": {"0"}, "method": {"1"}, "url": {rcv.URL + "/in"}, "note": {"crm"}, "secret": {secret}, "action": {"add"}}
	if a := u.post("/console/call-events", add); a.status != http.StatusSeeOther {
		t.Fatalf("add: HTTP %d\n%s", a.status, a.body)
	}
	ces, _, err := b.db.FindCallEvents(context.Background(), callevents.CallEventFilter{Extension: "0003*210"})
	if err != nil || len(ces) != 1 || ces[0].Method != callevents.MethodPOST || ces[0].Secret != secret || ces[0].URL != rcv.URL+"/in" {
		t.Fatalf("stored Call Events %+v, %v", ces, err)
	}
	id := ces[0].ID
	page = keep(u.get("/console/call-events?extension=0003*210&notice=x"))
	if !strings.Contains(page.body, id) || !strings.Contains(page.body, "POST") || !strings.Contains(page.body, ">Disable</button>") {
		t.Errorf("the list lacks the new Call Event:\n%s", page.body)
	}

	// A field error is shown by its field, in the fault's words, and
	// nothing is stored.
	bad := url.Values{"csrf": {token}, "extension": {"0003*210"}, "type": {"0"}, "method": {"1"}, "url": {"ftp://x"}, "action": {"add"}}
	if a := keep(u.post("/console/call-events", bad)); a.status != http.StatusBadRequest || !strings.Contains(a.body, `<span class="field-error" id="url-error">URL is invalid`) {
		t.Errorf("bad URL: HTTP %d\n%s", a.status, a.body)
	}

	// Send test reaches the receiver and shows the answer.
	test := url.Values{"csrf": {token}, "extension": {"0003*210"}, "type": {"0"}, "id": {id}, "action": {"test"}}
	if a := keep(u.post("/console/call-events", test)); a.status != http.StatusOK || !strings.Contains(a.body, "HTTP 204 in") || tests.Load() != 1 {
		t.Errorf("send test: HTTP %d, %d requests at the receiver\n%s", a.status, tests.Load(), a.body)
	}
	// Disable, then enable.
	for _, action := range []string{"disable", "enable"} {
		f := url.Values{"csrf": {token}, "extension": {"0003*210"}, "type": {"0"}, "id": {id}, "action": {action}}
		if a := u.post("/console/call-events", f); a.status != http.StatusSeeOther {
			t.Fatalf("%s: HTTP %d\n%s", action, a.status, a.body)
		}
	}

	// A call reported through the intake shows on the Deliveries page.
	r := b.postEvents(t, b.bearer("pbx"), `{"callId":"console-call","phase":"dial","callerExtension":"0003*100","calledExtension":"0003*210"}`)
	if r.status != http.StatusAccepted || r.queued == nil || *r.queued != 1 {
		t.Fatalf("intake: HTTP %d %s", r.status, r.raw)
	}
	now := time.Now().UTC()
	claimed, err := b.db.ClaimDue(context.Background(), callevents.Claim{Worker: "w", N: 10, Now: now, Lease: time.Minute})
	if err != nil || len(claimed) != 1 {
		t.Fatalf("claim: %d, %v", len(claimed), err)
	}
	o := callevents.AttemptOutcome{DeliveryID: claimed[0].ID, Next: callevents.DeliveryDelivered, Attempt: callevents.DeliveryAttempt{Attempt: 1, At: now, StatusCode: 204, Latency: 3 * time.Millisecond}}
	if err := b.db.RecordAttempts(context.Background(), "w", []callevents.AttemptOutcome{o}); err != nil {
		t.Fatal(err)
	}
	// The Overview counts it in the last hour and draws it in its chart.
	ov := keep(u.get("/console/overview"))
	if ov.status != http.StatusOK || !strings.Contains(ov.body, "Queue depth (pending)") || !strings.Contains(ov.body, "<th scope=\"row\">Delivered</th><td>1</td>") ||
		!strings.Contains(ov.body, "the last hour: 1 delivered, 0 failed") || !strings.Contains(ov.body, `class="delivered"`) {
		t.Errorf("overview: HTTP %d\n%s", ov.status, ov.body)
	}
	// Open breakers are listed until they close.
	b.breakers.BreakerChanged("0004", "https://crm.example.com", callevents.BreakerOpen)
	if ov := u.get("/console/overview"); !strings.Contains(ov.body, "<td>0004</td><td>https://crm.example.com</td><td>open</td>") {
		t.Errorf("overview without the open breaker:\n%s", ov.body)
	}
	b.breakers.BreakerChanged("0004", "https://crm.example.com", callevents.BreakerClosed)
	if ov := u.get("/console/overview"); strings.Contains(ov.body, "crm.example.com") || !strings.Contains(ov.body, "None: every receiver answers.") {
		t.Errorf("overview still shows the closed breaker:\n%s", ov.body)
	}
	list := keep(u.get("/console/deliveries?extension=0003*210&state=delivered"))
	if list.status != http.StatusOK || !strings.Contains(list.body, claimed[0].ID) || !strings.Contains(list.body, "console-call") {
		t.Fatalf("deliveries: HTTP %d\n%s", list.status, list.body)
	}
	one := keep(u.get("/console/delivery?extension=0003*210&id=" + claimed[0].ID))
	if one.status != http.StatusOK || !strings.Contains(one.body, "HTTP 204") || !strings.Contains(one.body, "3.0 ms") || !strings.Contains(one.body, ">Resend</button>") {
		t.Fatalf("delivery page: HTTP %d\n%s", one.status, one.body)
	}
	resend := u.post("/console/delivery", url.Values{"csrf": {u.csrf(one.body)}, "extension": {"0003*210"}, "id": {claimed[0].ID}})
	if resend.status != http.StatusSeeOther {
		t.Fatalf("resend: HTTP %d\n%s", resend.status, resend.body)
	}
	again := keep(u.get(resend.location))
	if !strings.Contains(again.body, "same webhook-id") || !strings.Contains(again.body, "pending") {
		t.Errorf("after resend:\n%s", again.body)
	}

	for i, p := range pages {
		if strings.Contains(p, secret) {
			t.Errorf("page %d shows the Call Event's secret", i)
		}
	}

	// Sign out ends the session in the store: the old cookie opens nothing.
	if a := u.post("/console/sign-out", url.Values{"csrf": {token}}); a.status != http.StatusSeeOther || !strings.HasPrefix(a.location, "/console/sign-in") {
		t.Fatalf("sign out: HTTP %d %s", a.status, a.location)
	}
	stale := newConsoleUser(t, b)
	req, _ := http.NewRequest(http.MethodGet, b.srv.URL+"/console/call-events?extension=0003*210", nil)
	req.AddCookie(cookie)
	if a := stale.do(req); a.status != http.StatusSeeOther || !strings.HasPrefix(a.location, "/console/sign-in") {
		t.Errorf("the signed-out cookie: HTTP %d %s", a.status, a.location)
	}
}

// Ensure scope is the APIs': an org:0003 client cannot open 0004*100, and
// the page shows nothing of it; a pbx client cannot sign in.
func TestConsoleScope(t *testing.T) {
	b := setup(t, bundleOptions{})
	b.mustAdd(t, "0004*100", int(callevents.DialIn))
	ces, _, _ := b.db.FindCallEvents(context.Background(), callevents.CallEventFilter{Extension: "0004*100"})
	u := newConsoleUser(t, b)
	u.signIn(b, "org:0003")
	for _, path := range []string{"/console/call-events?extension=0004*100", "/console/deliveries?extension=0004*100"} {
		a := u.get(path)
		if a.status != http.StatusForbidden || strings.Contains(a.body, ces[0].ID) || !strings.Contains(a.body, `role="alert"`) {
			t.Errorf("%s as org:0003: HTTP %d\n%s", path, a.status, a.body)
		}
	}
	if a := u.get("/console/call-events?extension=0003*210"); a.status != http.StatusOK {
		t.Errorf("its own extension: HTTP %d", a.status)
	}
	if a := u.get("/console/overview"); strings.Contains(a.body, "Delivery queue") {
		t.Error("an org client sees every organization's queue")
	}
	pbx := newConsoleUser(t, b)
	id, secret, _ := strings.Cut(b.secret["pbx"], ":")
	if a := pbx.post("/console/sign-in", url.Values{"client_id": {id}, "client_secret": {secret}}); a.status != http.StatusUnauthorized || !strings.Contains(a.body, "A pbx client reports calls and manages nothing") || a.header.Get("Set-Cookie") != "" {
		t.Errorf("pbx sign-in: HTTP %d %q\n%s", a.status, a.header.Get("Set-Cookie"), a.body)
	}
}

// Ensure a state change without the session's CSRF token is 403 and
// changes nothing, as is one with another session's token.
func TestConsoleCSRF(t *testing.T) {
	b := setup(t, bundleOptions{})
	id := b.mustAdd(t, "0003*210", int(callevents.DialIn))
	u := newConsoleUser(t, b)
	u.signIn(b, "admin")
	other := newConsoleUser(t, b)
	other.signIn(b, "admin")
	otherToken := other.csrf(other.get("/console/call-events?extension=0003*210").body)
	for name, token := range map[string]string{"none": "", "another session's": otherToken} {
		f := url.Values{"extension": {"0003*210"}, "type": {"0"}, "id": {id}, "action": {"delete"}}
		if token != "" {
			f.Set("csrf", token)
		}
		if a := u.post("/console/call-events", f); a.status != http.StatusForbidden || !strings.Contains(a.body, "CSRF") {
			t.Errorf("%s token: HTTP %d\n%s", name, a.status, a.body)
		}
		if a := u.post("/console/sign-out", url.Values{"csrf": {token}}); a.status != http.StatusForbidden {
			t.Errorf("sign-out with %s token: HTTP %d", name, a.status)
		}
	}
	ces, _, err := b.db.FindCallEvents(context.Background(), callevents.CallEventFilter{Extension: "0003*210"})
	if err != nil || len(ces) != 1 {
		t.Errorf("after the refused deletes: %d Call Events, %v", len(ces), err)
	}
	if a := u.get("/console/call-events?extension=0003*210"); a.status != http.StatusOK {
		t.Errorf("the session ended on a refused sign-out: HTTP %d", a.status)
	}
}

// Ensure failed console sign-ins count towards the APIs' limit on failed
// authentications: past it the address is held, for the console and for
// SOAP alike, even with the right secret.
func TestConsoleSignInRateLimited(t *testing.T) {
	b := setup(t, bundleOptions{limits: service.Limits{FailedAuthPerAddress: service.RateLimit{Burst: 2, Every: time.Hour}}})
	u := newConsoleUser(t, b)
	for range 2 {
		if a := u.post("/console/sign-in", url.Values{"client_id": {"nobody"}, "client_secret": {"wrong"}}); a.status != http.StatusUnauthorized {
			t.Fatalf("wrong secret: HTTP %d", a.status)
		}
	}
	id, secret, _ := strings.Cut(b.secret["admin"], ":")
	a := u.post("/console/sign-in", url.Values{"client_id": {id}, "client_secret": {secret}})
	if a.status != http.StatusTooManyRequests || a.header.Get("Retry-After") == "" || !strings.Contains(a.body, "Too many failed authentication attempts from this address") || a.header.Get("Set-Cookie") != "" {
		t.Errorf("past the limit: HTTP %d Retry-After %q\n%s", a.status, a.header.Get("Retry-After"), a.body)
	}
	_, body := b.post(t, service.PathSOAP, "text/xml", envelope11(tokenHeader(b.tokens["admin"]), `<v1:GetPhoneCallEvents><v1:extension>0003*210</v1:extension></v1:GetPhoneCallEvents>`))
	if !strings.Contains(body, "Too many failed authentication attempts") {
		t.Errorf("SOAP from the held address:\n%s", body)
	}
}

// Ensure Edit changes the URL, method and note, keeps the secret when its
// field is left empty, and shows a field error without saving anything.
func TestConsoleEdit(t *testing.T) {
	b := setup(t, bundleOptions{})
	ctx := context.Background()
	u := newConsoleUser(t, b)
	u.signIn(b, "admin")
	page := u.get("/console/call-events?extension=0003*210")
	token := u.csrf(page.body)
	add := url.Values{"csrf": {token}, "extension": {"0003*210"}, "type": {"2"}, "method": {"0"}, "url": {"http://127.0.0.1:9/a"}, "secret": {"whsec_edit-test-secret-0123456789"}, "action": {"add"}}
	if a := u.post("/console/call-events", add); a.status != http.StatusSeeOther {
		t.Fatalf("add: HTTP %d\n%s", a.status, a.body)
	}
	ces, _, _ := b.db.FindCallEvents(ctx, callevents.CallEventFilter{Extension: "0003*210"})
	id := ces[0].ID
	form := u.get("/console/call-events/edit?extension=0003*210&id=" + id)
	if form.status != http.StatusOK || !strings.Contains(form.body, "Edit Call Event "+id) || !strings.Contains(form.body, `value="http://127.0.0.1:9/a"`) {
		t.Fatalf("edit form: HTTP %d\n%s", form.status, form.body)
	}
	bad := url.Values{"csrf": {token}, "extension": {"0003*210"}, "type": {"2"}, "id": {id}, "method": {"7"}, "url": {"http://127.0.0.1:9/b"}, "action": {"edit"}}
	if a := u.post("/console/call-events", bad); a.status != http.StatusBadRequest || !strings.Contains(a.body, `id="method-error"`) {
		t.Errorf("bad method: HTTP %d\n%s", a.status, a.body)
	}
	if ces, _, _ := b.db.FindCallEvents(ctx, callevents.CallEventFilter{Extension: "0003*210"}); ces[0].URL != "http://127.0.0.1:9/a" {
		t.Errorf("a refused edit changed the URL to %s", ces[0].URL)
	}
	edit := url.Values{"csrf": {token}, "extension": {"0003*210"}, "type": {"2"}, "id": {id}, "method": {"1"}, "url": {"http://127.0.0.1:9/b"}, "note": {"edited"}, "secret": {""}, "action": {"edit"}}
	if a := u.post("/console/call-events", edit); a.status != http.StatusSeeOther {
		t.Fatalf("edit: HTTP %d\n%s", a.status, a.body)
	}
	ces, _, _ = b.db.FindCallEvents(ctx, callevents.CallEventFilter{Extension: "0003*210"})
	if c := ces[0]; c.URL != "http://127.0.0.1:9/b" || c.Method != callevents.MethodPOST || c.Note != "edited" || c.Secret != "whsec_edit-test-secret-0123456789" || c.Type != callevents.Hangup {
		t.Errorf("after edit: %+v", c)
	}
}
