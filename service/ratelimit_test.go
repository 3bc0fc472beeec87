package service_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/callevents/callevents/dispatcher/dispatchertest"
	"github.com/callevents/callevents/service"
)

// clientFrom returns an HTTP client whose connections come from ip, a
// loopback address: a second caller on the same machine.
func clientFrom(ip string) *http.Client {
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext}}
}

type answer struct {
	status     int
	body       string
	retryAfter string
}

func (b *testBundle) send(t *testing.T, from *http.Client, method, path, contentType, auth, body string) answer {
	t.Helper()
	req, err := http.NewRequest(method, b.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := from.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, string(out), resp.Header.Get("Retry-After")}
}

// The four ways in to authenticate, each with the given credentials.
func (b *testBundle) soapWithToken(t *testing.T, from *http.Client, token string) answer {
	return b.send(t, from, "POST", service.PathSOAP, "text/xml", "", envelope11(tokenHeader(token), `<v1:GetPhoneCallEvents><v1:extension>0003*210</v1:extension></v1:GetPhoneCallEvents>`))
}

func (b *testBundle) soapWithPassword(t *testing.T, from *http.Client, user, password string) answer {
	header := `<v1:userCredentials><v1:username>` + user + `</v1:username><v1:password>` + password + `</v1:password></v1:userCredentials>`
	return b.send(t, from, "POST", service.PathSOAP, "text/xml", "", envelope11(header, `<v1:GetPhoneCallEvents><v1:extension>0003*210</v1:extension></v1:GetPhoneCallEvents>`))
}

func (b *testBundle) restWithToken(t *testing.T, from *http.Client, token string) answer {
	return b.send(t, from, "GET", "/uapi/extensions/@me/0003*210/phoneCallEvents", "", "Bearer "+token, "")
}

func (b *testBundle) intakeWithToken(t *testing.T, from *http.Client, token string) answer {
	return b.send(t, from, "POST", service.PathEvents, "application/json", "Bearer "+token, `{"callId":"c1","phase":"dial","callerExtension":"0003*210","calledNumber":"5550100"}`)
}

func (b *testBundle) tokenRequest(t *testing.T, from *http.Client, idSecret string) answer {
	id, secret, _ := strings.Cut(idSecret, ":")
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}}
	return b.send(t, from, "POST", service.PathToken, "application/x-www-form-urlencoded", "", form.Encode())
}

func jsonErrorCode(t *testing.T, body string) string {
	t.Helper()
	var got struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("not a JSON error: %v\n%s", err, body)
	}
	return got.Error.Code
}

// Ensure failed authentications from one address, on any endpoint, lock
// that address out of every endpoint — right credentials included — with
// a clear answer and Retry-After, while another address is unaffected, and
// that the lock lifts once the bucket refills.
func TestFailedAuthLimitPerAddress(t *testing.T) {
	clock := dispatchertest.NewClockAt(time.Now())
	b := setup(t, bundleOptions{limits: service.Limits{
		FailedAuthPerAddress: service.RateLimit{Burst: 3, Every: time.Minute},
		FailedAuthPerClient:  service.RateLimit{Burst: -1},
		Now:                  clock.Now,
	}})
	here, there := clientFrom("127.0.0.1"), clientFrom("127.0.0.2")
	good := b.tokens["admin"]

	// Three failures, one per edge, are within the burst: each is a plain 100/401.
	if a := b.soapWithPassword(t, here, "nobody", "guess"); a.status != 500 || !strings.Contains(a.body, ">100<") {
		t.Fatalf("SOAP wrong password: %d %s", a.status, a.body)
	}
	if a := b.restWithToken(t, here, "guess"); a.status != 401 {
		t.Fatalf("REST wrong token: %d %s", a.status, a.body)
	}
	if a := b.intakeWithToken(t, here, "guess"); a.status != 401 {
		t.Fatalf("intake wrong token: %d %s", a.status, a.body)
	}

	// Now every way in is closed to this address, even with a good token.
	if a := b.intakeWithToken(t, here, good); a.status != 429 || jsonErrorCode(t, a.body) != "too_many_requests" || a.retryAfter != "60" {
		t.Errorf("intake after the limit: %d Retry-After %q %s", a.status, a.retryAfter, a.body)
	}
	if a := b.restWithToken(t, here, good); a.status != 429 || jsonErrorCode(t, a.body) != "too_many_requests" || a.retryAfter == "" {
		t.Errorf("REST after the limit: %d Retry-After %q %s", a.status, a.retryAfter, a.body)
	}
	if a := b.soapWithToken(t, here, good); a.status != 500 || !strings.Contains(a.body, ">100<") ||
		!strings.Contains(a.body, "Too many failed authentication attempts from this address") || a.retryAfter == "" {
		t.Errorf("SOAP after the limit: %d Retry-After %q %s", a.status, a.retryAfter, a.body)
	}
	if a := b.tokenRequest(t, here, b.secret["admin"]); a.status != 429 || !strings.Contains(a.body, `"slow_down"`) || a.retryAfter == "" {
		t.Errorf("token endpoint after the limit: %d Retry-After %q %s", a.status, a.retryAfter, a.body)
	}

	// Another address is not held to this one's failures.
	if a := b.intakeWithToken(t, there, good); a.status != 202 {
		t.Errorf("intake from another address: %d %s", a.status, a.body)
	}
	if a := b.soapWithToken(t, there, good); a.status != 200 {
		t.Errorf("SOAP from another address: %d %s", a.status, a.body)
	}

	// One attempt comes back per Every.
	clock.Advance(time.Minute)
	if a := b.restWithToken(t, here, good); a.status != 200 {
		t.Errorf("REST once the bucket refilled: %d %s", a.status, a.body)
	}
}

// Ensure failed authentications naming one client from one address lock
// that address out for that client — right secret included — while the
// same client from another address, and another client from this one, are
// unaffected; and that the lock lifts once the bucket refills.
func TestFailedAuthLimitPerClient(t *testing.T) {
	clock := dispatchertest.NewClockAt(time.Now())
	b := setup(t, bundleOptions{limits: service.Limits{
		FailedAuthPerAddress: service.RateLimit{Burst: -1},
		FailedAuthPerClient:  service.RateLimit{Burst: 2, Every: 30 * time.Second},
		Now:                  clock.Now,
	}})
	here, there := clientFrom("127.0.0.1"), clientFrom("127.0.0.3")
	victim, password, _ := strings.Cut(b.secret["org:0003"], ":")
	for range 2 {
		if a := b.soapWithPassword(t, here, victim, "guess"); a.status != 500 || !strings.Contains(a.body, ">100<") {
			t.Fatalf("wrong password: %d %s", a.status, a.body)
		}
	}
	if a := b.tokenRequest(t, here, b.secret["org:0003"]); a.status != 429 || a.retryAfter != "30" {
		t.Errorf("token for the client from the failing address: %d Retry-After %q %s", a.status, a.retryAfter, a.body)
	}
	if a := b.soapWithPassword(t, here, victim, password); a.status != 500 || !strings.Contains(a.body, "for this client from this address") {
		t.Errorf("right password from the failing address: %d %s", a.status, a.body)
	}
	if a := b.tokenRequest(t, there, b.secret["org:0003"]); a.status != 200 {
		t.Errorf("token for the client from another address: %d %s", a.status, a.body)
	}
	if a := b.soapWithPassword(t, there, victim, password); a.status != 200 {
		t.Errorf("right password from another address: %d %s", a.status, a.body)
	}
	if a := b.tokenRequest(t, here, b.secret["admin"]); a.status != 200 {
		t.Errorf("another client from the failing address: %d %s", a.status, a.body)
	}
	clock.Advance(30 * time.Second)
	if a := b.soapWithPassword(t, here, victim, password); a.status != 200 {
		t.Errorf("once the bucket refilled: %d %s", a.status, a.body)
	}
}

// Ensure strangers cannot lock a client out: with the default limits,
// wrong secrets for the victim's client id from a dozen other addresses,
// on the token endpoint and over SOAP, past every per-client burst, leave
// the victim's right secret from its own address accepted on both; while
// an attacking address that fails past the per-address limit is still
// refused there, its right credentials included.
func TestStrangersCannotLockOutAClient(t *testing.T) {
	b := setup(t, bundleOptions{})
	victimID, password, _ := strings.Cut(b.secret["org:0003"], ":")
	attempts := max(service.FailedAuthPerClientDefault.Burst, service.TokenPerClientDefault.Burst) + 2
	for i := range attempts {
		attacker := clientFrom(fmt.Sprintf("127.0.0.%d", 10+i))
		if a := b.tokenRequest(t, attacker, victimID+":guess"); a.status != 401 {
			t.Fatalf("attacker %d, token endpoint: %d %s", i, a.status, a.body)
		}
		if a := b.soapWithPassword(t, attacker, victimID, "guess"); a.status != 500 || !strings.Contains(a.body, ">100<") {
			t.Fatalf("attacker %d, SOAP: %d %s", i, a.status, a.body)
		}
	}
	victim := clientFrom("127.0.0.1")
	if a := b.tokenRequest(t, victim, b.secret["org:0003"]); a.status != 200 || !strings.Contains(a.body, "access_token") {
		t.Errorf("the victim's right secret on the token endpoint: %d %s", a.status, a.body)
	}
	if a := b.soapWithPassword(t, victim, victimID, password); a.status != 200 {
		t.Errorf("the victim's right password over SOAP: %d %s", a.status, a.body)
	}

	// One attacking address goes on, with tokens (no client id): past the
	// per-address burst it is refused, whatever it sends.
	attacker := clientFrom("127.0.0.10")
	for range service.FailedAuthPerAddressDefault.Burst {
		b.restWithToken(t, attacker, "guess")
	}
	if a := b.tokenRequest(t, attacker, b.secret["org:0003"]); a.status != 429 || !strings.Contains(a.body, `"slow_down"`) {
		t.Errorf("token endpoint from the attacking address: %d %s", a.status, a.body)
	}
	if a := b.soapWithPassword(t, attacker, victimID, password); a.status != 500 || !strings.Contains(a.body, "from this address") {
		t.Errorf("SOAP from the attacking address: %d %.300s", a.status, a.body)
	}
	if a := b.soapWithPassword(t, victim, victimID, password); a.status != 200 {
		t.Errorf("the victim after the attacker was refused: %d %s", a.status, a.body)
	}
}

// Ensure the token endpoint answers 429 slow_down with Retry-After past
// its per-address rate, and past its rate per client id from one address,
// even to right credentials; the same client from another address is not
// held to it.
func TestTokenEndpointRateLimit(t *testing.T) {
	clock := dispatchertest.NewClockAt(time.Now())
	b := setup(t, bundleOptions{limits: service.Limits{
		TokenPerAddress: service.RateLimit{Burst: 3, Every: 10 * time.Second},
		TokenPerClient:  service.RateLimit{Burst: 2, Every: 20 * time.Second},
		Now:             clock.Now,
	}})
	here, there := clientFrom("127.0.0.1"), clientFrom("127.0.0.4")
	for i := range 2 {
		if a := b.tokenRequest(t, here, b.secret["admin"]); a.status != 200 {
			t.Fatalf("request %d: %d %s", i+1, a.status, a.body)
		}
	}
	if a := b.tokenRequest(t, here, b.secret["admin"]); a.status != 429 || !strings.Contains(a.body, `"slow_down"`) || a.retryAfter != "20" {
		t.Errorf("3rd request for one client from one address: %d Retry-After %q %s", a.status, a.retryAfter, a.body)
	}
	if a := b.tokenRequest(t, here, b.secret["pbx"]); a.status != 429 || a.retryAfter != "10" {
		t.Errorf("4th request from one address: %d Retry-After %q %s", a.status, a.retryAfter, a.body)
	}
	if a := b.tokenRequest(t, there, b.secret["admin"]); a.status != 200 {
		t.Errorf("the same client from another address: %d %s", a.status, a.body)
	}
}

// Ensure the defaults stop a password-guessing run: twenty-odd wrong
// guesses from one address, then the address is refused.
func TestFailedAuthDefaultLimit(t *testing.T) {
	b := setup(t, bundleOptions{})
	here := clientFrom("127.0.0.1")
	limited := 0
	for range service.FailedAuthPerAddressDefault.Burst + 5 {
		if a := b.restWithToken(t, here, "guess"); a.status == 429 {
			limited++
		}
	}
	if limited < 4 {
		t.Errorf("%d of %d guesses refused, want the ones past %d", limited, service.FailedAuthPerAddressDefault.Burst+5, service.FailedAuthPerAddressDefault.Burst)
	}
}

// Ensure that behind a trusted proxy the caller is the address its
// X-Forwarded-For names (the last one the proxies did not add, so a caller
// cannot escape by prepending addresses), and that without trusted proxies
// the header is ignored.
func TestFailedAuthLimitBehindTrustedProxy(t *testing.T) {
	restFrom := func(b *testBundle, forwardedFor, token string) int {
		req, _ := http.NewRequest("GET", b.srv.URL+"/uapi/extensions/@me/0003*210/phoneCallEvents", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("X-Forwarded-For", forwardedFor)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	limits := service.Limits{FailedAuthPerAddress: service.RateLimit{Burst: 2, Every: time.Hour}, FailedAuthPerClient: service.RateLimit{Burst: -1}}

	trusting := limits
	trusting.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	b := setup(t, bundleOptions{limits: trusting})
	good := b.tokens["admin"]
	restFrom(b, "203.0.113.9", "guess")
	restFrom(b, "198.51.100.1, 203.0.113.9", "guess") // a forged first hop changes nothing
	if got := restFrom(b, "192.0.2.77, 203.0.113.9", good); got != 429 {
		t.Errorf("the guessing caller behind the proxy: HTTP %d, want 429", got)
	}
	if got := restFrom(b, "198.51.100.7", good); got != 200 {
		t.Errorf("another caller behind the same proxy: HTTP %d, want 200", got)
	}

	b = setup(t, bundleOptions{limits: limits})
	restFrom(b, "203.0.113.1", "guess")
	restFrom(b, "203.0.113.2", "guess")
	if got := restFrom(b, "203.0.113.3", b.tokens["admin"]); got != 429 {
		t.Errorf("X-Forwarded-For from an untrusted peer was believed: HTTP %d, want 429", got)
	}
}
