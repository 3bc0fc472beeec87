package dispatcher_test

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callevents/callevents"
	"github.com/callevents/callevents/dispatcher"
	"github.com/callevents/callevents/dispatcher/dispatchertest"
)

// resolver answers from a table, and can change its answers (as a DNS
// server rebinding a name would).
type resolver struct {
	mu      sync.Mutex
	answers map[string][]string // host → addresses; missing: NXDOMAIN
	lookups map[string]int
}

func newResolver(answers map[string][]string) *resolver {
	return &resolver{answers: answers, lookups: map[string]int{}}
}

func (r *resolver) LookupIPAddr(_ context.Context, host string) ([]net.IPAddr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lookups[host]++
	addrs, ok := r.answers[strings.ToLower(host)]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	var out []net.IPAddr
	for _, a := range addrs {
		out = append(out, net.IPAddr{IP: net.ParseIP(a)})
	}
	return out, nil
}

func (r *resolver) set(host string, addrs ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.answers[host] = addrs
}

func (r *resolver) count(host string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lookups[host]
}

func TestCheckURL(t *testing.T) {
	t.Parallel()
	dns := newResolver(map[string][]string{
		"public.example":    {"93.184.216.34", "2606:2800:220:1::1"},
		"private.example":   {"192.168.0.10"},
		"mixed.example":     {"93.184.216.34", "10.0.0.1"},
		"metadata.example":  {"169.254.169.254"},
		"hooks.internal":    {"10.9.9.9"},
		"a.b.corp.example":  {"192.168.1.1"},
		"corp.example":      {"192.168.1.1"},
		"localhost.example": {"::1"},
		"nat64.example":     {"64:ff9b:1::7f00:1"},
		"siit.example":      {"::ffff:0:a00:1"},
		"teredo.example":    {"2001:0:4136:e378:8000:63bf:80ff:fffe"},
	})
	def := dispatcher.DefaultPolicy()
	def.Resolver = dns
	allow, err := dispatcher.ParseAllowTargets(" 10.0.0.0/8, 127.0.0.1 ,, HOOKS.internal., *.corp.example, fd00::/8")
	if err != nil {
		t.Fatal(err)
	}
	allow.Resolver = dns

	for _, tc := range []struct {
		policy  *dispatcher.OutboundPolicy
		url     string
		refused string // a part of the 309 message; "" when accepted
	}{
		{def, "http://127.0.0.1/hook", "127.0.0.1 is a loopback address"},
		{def, "http://127.0.0.1:8080/hook", "loopback"},
		{def, "http://10.1.2.3/", "10.1.2.3 is a private address"},
		{def, "https://172.16.5.4/", "private"},
		{def, "http://192.168.1.1/", "private"},
		{def, "http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"},
		{def, "http://[::1]:80/", "::1 is a loopback address"},
		{def, "http://[::ffff:127.0.0.1]/", "loopback"},
		{def, "http://[::ffff:10.0.0.1]/", "private"},
		{def, "http://[64:ff9b::a00:1]/", "private"},       // NAT64 of 10.0.0.1
		{def, "http://[2002:a9fe:a9fe::1]/", "link-local"}, // 6to4 of 169.254.169.254
		{def, "http://[fe80::1]/", "link-local"},
		{def, "http://[fd12:3456::1]/", "private"},
		{def, "http://100.64.0.1/", "CGNAT"},
		{def, "http://224.0.0.1/", "multicast"},
		{def, "http://[ff02::1]/", "multicast"},
		{def, "http://0.0.0.0/", "unspecified"},
		{def, "http://[::]/", "unspecified"},
		{def, "http://255.255.255.255/", "broadcast"},
		{def, "http://[::ffff:0:7f00:1]/", "IPv4-translated (SIIT) address of 127.0.0.1, a loopback address"},
		{def, "http://[::ffff:0:a9fe:a9fe]/", "link-local"},
		{def, "http://[64:ff9b::7f00:1]/", "NAT64 address of 127.0.0.1, a loopback address"},
		{def, "http://[64:ff9b:1::7f00:1]/", "NAT64 address of 127.0.0.1, a loopback address"}, // RFC 8215 local-use, /96
		{def, "http://[64:ff9b:1::a9fe:a9fe]/", "link-local"},
		{def, "http://[64:ff9b:1:7f00:0:100::]/", "local-use NAT64"}, // 127.0.0.1 in RFC 6052's /48 format
		{def, "http://[64:ff9b:1:0:7f:0:100:0]/", "local-use NAT64"}, // and in its /64 format
		{def, "http://[64:ff9b:1:abcd::5db8:d822]/", "local-use NAT64"},
		{def, "http://[2002:7f00:1::1]/", "6to4 address of 127.0.0.1, a loopback address"},
		{def, "http://[2002:c0a8:101::]/", "private"},
		{def, "http://[::7f00:1]/", "IPv4-compatible"},
		{def, "http://[::a00:1]/", "IPv4-compatible"},
		{def, "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/", "Teredo"}, // client 127.0.0.1, obfuscated
		{def, "http://[2001:0:5db8:d822::1]/", "Teredo"},
		{def, "http://[::ffff:0:5db8:d822]/", ""},   // 93.184.216.34, translated
		{def, "http://[64:ff9b::5db8:d822]/", ""},   // NAT64 of a public address
		{def, "http://[64:ff9b:1::5db8:d822]/", ""}, // the same through a local-use /96
		{def, "http://[2002:5db8:d822::1]/", ""},    // 6to4 of a public address
		{def, "http://[2001:db9::1]/", ""},          // next to Teredo, not in it
		{def, "http://nat64.example/", "nat64.example resolves to 64:ff9b:1::7f00:1, a NAT64 address of 127.0.0.1"},
		{def, "http://siit.example/", "IPv4-translated"},
		{def, "http://teredo.example/", "Teredo"},
		{def, "http://93.184.216.34/hook", ""},
		{def, "http://[2606:2800:220:1::1]/", ""},
		{def, "http://public.example/hook", ""},
		{def, "http://private.example/hook", "private.example resolves to 192.168.0.10, a private address"},
		{def, "http://mixed.example/", "10.0.0.1"},
		{def, "http://METADATA.example/", "169.254.169.254"},
		{def, "http://localhost.example/", "loopback"},
		{def, "http://unknown.example/hook", ""}, // does not resolve: checked when dialled
		{allow, "http://10.1.2.3/", ""},
		{allow, "http://127.0.0.1/", ""},
		{allow, "http://127.0.0.2/", "loopback"},
		{allow, "http://[::ffff:10.0.0.1]/", ""},
		{allow, "http://[fd00::1]/", ""},
		{allow, "http://[fc00::1]/", "private"},
		{allow, "http://hooks.internal/", ""},
		{allow, "http://Hooks.Internal.:8080/", ""},
		{allow, "http://a.b.corp.example/", ""},
		{allow, "http://corp.example/", "corp.example resolves to 192.168.1.1"},
		{allow, "http://private.example/", "private"},
		{allow, "http://169.254.169.254/", "link-local"},
	} {
		err := tc.policy.CheckURL(context.Background(), tc.url)
		switch {
		case tc.refused == "" && err != nil:
			t.Errorf("CheckURL(%s) with allowlist %q: %v", tc.url, tc.policy, err)
		case tc.refused != "" && err == nil:
			t.Errorf("CheckURL(%s) with allowlist %q accepted it", tc.url, tc.policy)
		case tc.refused != "":
			if code := callevents.ErrorCode(err, 0); code != callevents.CodeTargetNotAllowed {
				t.Errorf("CheckURL(%s): code %d, want 309", tc.url, code)
			}
			if msg := callevents.ErrorMessage(err); !strings.Contains(msg, tc.refused) {
				t.Errorf("CheckURL(%s): message %q does not say %q", tc.url, msg, tc.refused)
			}
		}
	}
	if n := dns.count("hooks.internal"); n != 0 {
		t.Errorf("an allowlisted name was looked up %d times", n)
	}
}

// embeddedRefused are IPv6 addresses that reach a refused IPv4 address,
// one of each form (none is ever dialled: the tests assert the refusal).
var embeddedRefused = []string{
	"::ffff:127.0.0.1",                     // IPv4-mapped
	"::ffff:0:7f00:1",                      // IPv4-translated (SIIT) 127.0.0.1
	"::ffff:0:a9fe:a9fe",                   // ... 169.254.169.254
	"64:ff9b::a00:1",                       // NAT64 well-known prefix, 10.0.0.1
	"64:ff9b:1::7f00:1",                    // NAT64 local-use (RFC 8215), 127.0.0.1
	"64:ff9b:1:7f00:0:100::",               // ... in RFC 6052's /48 format
	"::7f00:1",                             // IPv4-compatible 127.0.0.1
	"2002:a9fe:a9fe::1",                    // 6to4 of 169.254.169.254
	"2001:0:4136:e378:8000:63bf:80ff:fffe", // Teredo, client 127.0.0.1
}

// Ensure Add and Edit refuse them with 309: CallEventService.CheckTarget is
// the policy's CheckURL, as cmd/ wires it.
func TestAddRefusesEmbeddedIPv4(t *testing.T) {
	t.Parallel()
	policy := dispatcher.DefaultPolicy()
	policy.Resolver = newResolver(map[string][]string{"nat64.example": {"64:ff9b:1::7f00:1"}})
	svc := &callevents.CallEventService{Store: sqliteStore(t), CheckTarget: policy.CheckURL}
	admin, err := callevents.ParseScope("admin")
	if err != nil {
		t.Fatal(err)
	}
	p := callevents.Principal{ClientID: "test", Scope: admin}
	ctx := context.Background()
	urls := []string{"http://nat64.example/hook"}
	for _, addr := range embeddedRefused {
		urls = append(urls, "http://["+addr+"]/hook")
	}
	for _, url := range urls {
		if _, err := svc.AddCallEvent(ctx, p, extA, callevents.DialIn, callevents.CallEventUpdate{URL: &url}); callevents.ErrorCode(err, 0) != callevents.CodeTargetNotAllowed {
			t.Errorf("AddCallEvent(%s): %v, want code 309", url, err)
		}
	}
	nat64 := "http://[64:ff9b::5db8:d822]/hook"
	c, err := svc.AddCallEvent(ctx, p, extA, callevents.DialIn, callevents.CallEventUpdate{URL: &nat64})
	if err != nil {
		t.Fatalf("AddCallEvent of a public NAT64 address: %v", err)
	}
	for _, url := range urls {
		if _, err := svc.EditCallEvent(ctx, p, extA, c.Type, c.ID, callevents.CallEventUpdate{URL: &url}); callevents.ErrorCode(err, 0) != callevents.CodeTargetNotAllowed {
			t.Errorf("EditCallEvent to %s: %v, want code 309", url, err)
		}
	}
}

func TestParseAllowTargets(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"10.0.0.0/33", "10.0.0/8", "*", "*.", "foo*.example", "a.*.example", "exa mple.com", "a..b", "-a.example", "http://x.example", "127.1", "10.0.0", "a$b.example"} {
		if p, err := dispatcher.ParseAllowTargets(bad); err == nil {
			t.Errorf("ParseAllowTargets(%q) = %q, want an error", bad, p)
		}
	}
	p, err := dispatcher.ParseAllowTargets("")
	if err != nil || p.CheckURL(context.Background(), "http://127.0.0.1/") == nil {
		t.Errorf("an empty allowlist must be the default policy: %v", err)
	}
}

// deliverRebound adds a Call Event to url, whose host the policy's resolver
// maps to a public address when it is checked at Add time and to rebindTo
// once the dispatcher dials, and returns the failed delivery of one call
// and the resolver.
func deliverRebound(t *testing.T, st testStore, url, rebindTo string) (callevents.Delivery, *resolver) {
	t.Helper()
	dns := newResolver(map[string][]string{"rebind.example": {"93.184.216.34"}})
	policy := dispatcher.DefaultPolicy()
	policy.Resolver = dns
	if err := policy.CheckURL(context.Background(), url); err != nil {
		t.Fatalf("CheckURL at Add time: %v", err)
	}
	dns.set("rebind.example", rebindTo)
	mustAddCallEvent(t, st, callevents.CallEvent{Extension: extA, Type: callevents.DialIn, URL: url})
	cfg := testConfig(t, st)
	cfg.Policy = policy
	mustStart(t, cfg)
	mustAccept(t, st, time.Now(), dial("call-1"))
	return waitDelivery(t, st, extA, "failed", inState(callevents.DeliveryFailed)), dns
}

func TestPolicyAtDialTime(t *testing.T) {
	t.Parallel()
	// The policy's Resolver serves both CheckURL and the dialer. At Add
	// time it answers with a public address; when the request is sent it
	// answers 127.0.0.1, where the receiver listens (a rebinding DNS
	// server would do the same). The dialer's Control hook sees the
	// address actually connected and refuses it before connect(2): no
	// packet leaves, the receiver gets nothing, and the delivery fails at
	// once with class "policy".
	t.Run("rebinding refused", func(t *testing.T) {
		t.Parallel()
		forEachStore(t, func(t *testing.T, st testStore) {
			rc := dispatchertest.NewReceiver(t, nil)
			_, port, _ := net.SplitHostPort(rc.Listener.Addr().String())
			d, dns := deliverRebound(t, st, "http://rebind.example:"+port+"/hook", "127.0.0.1")
			if d.LastError != "policy" || d.Attempts != 1 || len(d.History) != 1 {
				t.Errorf("refused delivery: class %q after %d attempts", d.LastError, d.Attempts)
			}
			if n := len(rc.Hits()); n != 0 {
				t.Errorf("the receiver got %d requests", n)
			}
			if dns.count("rebind.example") < 2 {
				t.Errorf("the dialer did not resolve the name with the policy's resolver")
			}
		})
	})

	// The same name, admitted by the allowlist (by name, or by CIDR), is
	// delivered: the refusal above is the policy's, not a broken set-up.
	for _, allow := range []string{"rebind.example", "*.example", "127.0.0.0/8"} {
		t.Run("allowed by "+allow, func(t *testing.T) {
			t.Parallel()
			forEachStore(t, func(t *testing.T, st testStore) {
				rc := dispatchertest.NewReceiver(t, nil)
				_, port, _ := net.SplitHostPort(rc.Listener.Addr().String())
				policy, err := dispatcher.ParseAllowTargets(allow)
				if err != nil {
					t.Fatal(err)
				}
				policy.Resolver = newResolver(map[string][]string{"rebind.example": {"127.0.0.1"}})
				mustAddCallEvent(t, st, callevents.CallEvent{Extension: extA, Type: callevents.DialIn, URL: "http://rebind.example:" + port + "/hook"})
				cfg := testConfig(t, st)
				cfg.Policy = policy
				mustStart(t, cfg)
				mustAccept(t, st, time.Now(), dial("call-1"))
				waitDelivery(t, st, extA, "delivered", inState(callevents.DeliveryDelivered))
				if hits := rc.Hits(); len(hits) != 1 || hits[0].Path != "/hook" {
					t.Errorf("receiver got %+v", hits)
				}
			})
		})
	}

	// A literal address is checked by the dialer too (a URL stored before
	// the policy changed, say).
	t.Run("literal refused", func(t *testing.T) {
		t.Parallel()
		forEachStore(t, func(t *testing.T, st testStore) {
			rc := dispatchertest.NewReceiver(t, nil)
			mustAddCallEvent(t, st, callevents.CallEvent{Extension: extA, Type: callevents.DialIn, URL: rc.URL})
			cfg := testConfig(t, st)
			cfg.Policy = nil // the default: no allowlist
			mustStart(t, cfg)
			mustAccept(t, st, time.Now(), dial("call-1"))
			d := waitDelivery(t, st, extA, "failed", inState(callevents.DeliveryFailed))
			if d.LastError != "policy" || len(rc.Hits()) != 0 {
				t.Errorf("class %q, %d requests", d.LastError, len(rc.Hits()))
			}
		})
	})

	// Every IPv6 form of a refused IPv4 address is refused on the address
	// dialled too, whether the URL gives it or a name resolves to it (at
	// send time only, as a rebinding DNS server would answer): Control
	// refuses it after the socket is made and before connect(2), so no
	// packet goes to it. TestCallEvent goes through the deliveries' dialer.
	t.Run("embedded IPv4 refused", func(t *testing.T) {
		t.Parallel()
		dns := newResolver(map[string][]string{})
		policy := dispatcher.DefaultPolicy()
		policy.Resolver = dns
		cfg := testConfig(t, sqliteStore(t))
		cfg.Policy = policy
		d, err := dispatcher.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		for i, addr := range embeddedRefused {
			for _, url := range []string{"http://[" + addr + "]:8080/hook", "http://embedded-" + strconv.Itoa(i) + ".example:8080/hook"} {
				dns.set("embedded-"+strconv.Itoa(i)+".example", addr)
				c := callevents.CallEvent{Extension: extA, Type: callevents.DialIn, URL: url}
				res, err := d.TestCallEvent(context.Background(), c)
				if err != nil || res.ErrorClass != "policy" || res.StatusCode != 0 {
					t.Errorf("TestCallEvent to %s (%s) = %+v, %v; want class policy", url, addr, res, err)
				}
			}
		}
	})

	t.Run("rebinding to NAT64 refused", func(t *testing.T) {
		t.Parallel()
		forEachStore(t, func(t *testing.T, st testStore) {
			d, _ := deliverRebound(t, st, "http://rebind.example/hook", "64:ff9b:1::7f00:1")
			if d.LastError != "policy" || d.Attempts != 1 || d.LastStatus != 0 {
				t.Errorf("refused delivery: class %q, status %d after %d attempts", d.LastError, d.LastStatus, d.Attempts)
			}
		})
	})

	t.Run("unresolvable is dns", func(t *testing.T) {
		t.Parallel()
		forEachStore(t, func(t *testing.T, st testStore) {
			policy := allowLoopback(t)
			policy.Resolver = newResolver(map[string][]string{})
			mustAddCallEvent(t, st, callevents.CallEvent{Extension: extA, Type: callevents.DialIn, URL: "http://nowhere.example/hook"})
			cfg := testConfig(t, st)
			cfg.Policy = policy
			cfg.RetrySchedule = []time.Duration{time.Hour}
			mustStart(t, cfg)
			mustAccept(t, st, time.Now(), dial("call-1"))
			d := waitDelivery(t, st, extA, "a failed attempt", retrying(1))
			if d.State != callevents.DeliveryPending || d.LastError != "dns" {
				t.Errorf("state %s, class %q", d.State, d.LastError)
			}
		})
	})
}

func TestTestCallEvent(t *testing.T) {
	t.Parallel()
	rc := dispatchertest.NewReceiver(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		if r.URL.Path == "/unavailable" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	cfg := testConfig(t, sqliteStore(t))
	d, err := dispatcher.New(cfg) // never started: testing needs no Start
	if err != nil {
		t.Fatal(err)
	}
	c := callevents.CallEvent{Extension: extA, Type: callevents.Hangup, Method: callevents.MethodPOST, URL: rc.URL + "/hook?k=v", Secret: testSecret, Status: callevents.StatusEnabled}
	res, err := d.TestCallEvent(context.Background(), c)
	if err != nil || res.StatusCode != 200 || res.ErrorClass != "" || res.Latency <= 0 {
		t.Fatalf("TestCallEvent = %+v, %v", res, err)
	}
	h := rc.Hits()[0]
	for name, want := range map[string]string{"X-CallEvents-Test": "true", "X-CallEvents-Attempt": "1", "X-CallEvents-Sequence": "1", "X-CallEvents-Event": "Hangup", "User-Agent": "callevents/test"} {
		if got := h.Header.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if h.RawQuery != "k=v" {
		t.Errorf("query %q", h.RawQuery)
	}
	dispatchertest.VerifySignature(t, testSecret, h.Header, h.Body)
	callID := strings.TrimPrefix(strings.SplitN(h.Body, "&", 2)[0], "CallID=")
	if !strings.HasPrefix(callID, "test-") {
		t.Errorf("CallID %q", callID)
	}
	checkParams(t, h.Body, [][2]string{
		{"CallID", callID}, {"CallerIDNum", "15550100"}, {"CallerIDName", "Call Events Test"},
		{"CalledDID", "15550199"}, {"CalledExtension", string(extA)}, {"CallStatus", "ANSWER"},
		{"CallFlow", "IN"}, {"CallerExtension", ""}, {"CalledNumber", "15550199"}, {"CallAPIID", "test"},
	})

	c.URL, c.Method, c.Secret = rc.URL+"/unavailable", callevents.MethodGET, ""
	if res, err := d.TestCallEvent(context.Background(), c); err != nil || res.StatusCode != 503 || res.ErrorClass != "http_status" {
		t.Errorf("TestCallEvent of a 503 = %+v, %v", res, err)
	}
	if h := rc.Hits()[1]; h.Header.Get("webhook-signature") != "" || !strings.HasPrefix(h.RawQuery, "CallID=test-") {
		t.Errorf("unsigned GET test request: %+v", h)
	}

	refusing, err := dispatcher.New(dispatcher.Config{Store: sqliteStore(t)})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := refusing.TestCallEvent(context.Background(), c); err != nil || res.StatusCode != 0 || res.ErrorClass != "policy" {
		t.Errorf("TestCallEvent of a refused target = %+v, %v", res, err)
	}
	if n := len(rc.Hits()); n != 2 {
		t.Errorf("receiver got %d requests, want 2", n)
	}
}
