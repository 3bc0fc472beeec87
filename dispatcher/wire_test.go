package dispatcher_test

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/callevents/callevents"
	"github.com/callevents/callevents/dispatcher/dispatchertest"
)

// wantParams are the ten parameters, in order, that extA's Dial-In
// receiver gets for dial("call-1").
var wantParams = [][2]string{
	{"CallID", "call-1"}, {"CallerIDNum", "+40 721 000 111"}, {"CallerIDName", "Ana Popescu & Co"},
	{"CalledDID", "0213100200"}, {"CalledExtension", string(extA)}, {"CallStatus", "CALLING"},
	{"CallFlow", "IN"}, {"CallerExtension", string(extB)}, {"CalledNumber", "210"}, {"CallAPIID", "api-7"},
}

// checkParams checks that payload is exactly the ten parameters, in order.
func checkParams(t *testing.T, payload string, want [][2]string) {
	t.Helper()
	pairs := strings.Split(payload, "&")
	if len(pairs) != len(want) {
		t.Fatalf("payload %q has %d parameters, want %d", payload, len(pairs), len(want))
	}
	for i, pair := range pairs {
		k, v, _ := strings.Cut(pair, "=")
		k, err1 := url.QueryUnescape(k)
		v, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil || k != want[i][0] || v != want[i][1] {
			t.Errorf("parameter %d is %q=%q, want %q=%q", i, k, v, want[i][0], want[i][1])
		}
	}
}

func TestWireFormat(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		method callevents.Method
		path   string // with the query the URL already has
		query  string // what the receiver must see before the parameters
	}{
		{"GET", callevents.MethodGET, "/hook", ""},
		{"GET with query", callevents.MethodGET, "/hook?token=a%20b&x=1", "token=a%20b&x=1&"},
		{"GET with empty query", callevents.MethodGET, "/hook?", ""},
		{"POST", callevents.MethodPOST, "/hook?token=abc", "token=abc"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			forEachStore(t, func(t *testing.T, st testStore) {
				// The first attempt fails, so that the second shows what changes.
				rc := dispatchertest.NewReceiver(t, func(w http.ResponseWriter, _ *http.Request, n int) {
					if n == 1 {
						w.WriteHeader(http.StatusInternalServerError)
					}
				})
				mustAddCallEvent(t, st, callevents.CallEvent{
					Extension: extA, Type: callevents.DialIn, Method: tc.method, URL: rc.URL + tc.path, Secret: testSecret,
				})
				cfg := testConfig(t, st)
				cfg.RetrySchedule = []time.Duration{time.Millisecond}
				mustStart(t, cfg)
				if n := mustAccept(t, st, time.Now(), dial("call-1")); n != 1 {
					t.Fatalf("queued %d deliveries, want 1", n)
				}
				d := waitDelivery(t, st, extA, "delivered", inState(callevents.DeliveryDelivered))

				hits := rc.Hits()
				if len(hits) != 2 {
					t.Fatalf("receiver got %d requests, want 2", len(hits))
				}
				for i, h := range hits {
					var payload string
					switch tc.method {
					case callevents.MethodGET:
						if h.Method != http.MethodGet || h.Body != "" {
							t.Errorf("request %d: %s with body %q, want GET without body", i+1, h.Method, h.Body)
						}
						if !strings.HasPrefix(h.RawQuery, tc.query) {
							t.Fatalf("request %d: query %q lost the URL's own query %q", i+1, h.RawQuery, tc.query)
						}
						payload = strings.TrimPrefix(h.RawQuery, tc.query)
					case callevents.MethodPOST:
						if h.Method != http.MethodPost || h.RawQuery != tc.query {
							t.Errorf("request %d: %s ?%s, want POST ?%s", i+1, h.Method, h.RawQuery, tc.query)
						}
						if ct := h.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
							t.Errorf("request %d: Content-Type %q", i+1, ct)
						}
						payload = h.Body
					}
					if h.Path != "/hook" {
						t.Errorf("request %d: path %q", i+1, h.Path)
					}
					checkParams(t, payload, wantParams)
					dispatchertest.VerifySignature(t, testSecret, h.Header, payload)
					for name, want := range map[string]string{
						"User-Agent":           "callevents/test",
						"X-CallEvents-Event":   "Dial-In",
						"X-CallEvents-Attempt": strconv.Itoa(i + 1),
						// The first of its order key, on the retry too.
						"X-CallEvents-Sequence": "1",
						"webhook-id":            d.ID,
					} {
						if got := h.Header.Get(name); got != want {
							t.Errorf("request %d: %s is %q, want %q", i+1, name, got, want)
						}
					}
					if h.Header.Get("X-CallEvents-Test") != "" {
						t.Errorf("request %d: a real delivery carries X-CallEvents-Test", i+1)
					}
				}
				if d.Attempts != 2 || len(d.History) != 2 {
					t.Fatalf("delivery has %d attempts and %d history entries, want 2 and 2", d.Attempts, len(d.History))
				}
				if h := d.History[0]; h.Attempt != 1 || h.StatusCode != 500 || h.ErrorClass != "http_status" {
					t.Errorf("first attempt recorded as %+v", h)
				}
				if h := d.History[1]; h.Attempt != 2 || h.StatusCode != 200 || h.ErrorClass != "" || h.Latency <= 0 {
					t.Errorf("second attempt recorded as %+v", h)
				}
			})
		})
	}
}

// A Call Event without a secret gets no signature, and each event type
// names itself in X-CallEvents-Event.
func TestUnsignedAndEventNames(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st testStore) {
		rc := dispatchertest.NewReceiver(t, nil)
		for _, typ := range callevents.EventTypes() {
			for _, ext := range []callevents.Extension{extA, extB} {
				mustAddCallEvent(t, st, callevents.CallEvent{Extension: ext, Type: typ, URL: rc.URL + "/" + typ.String()})
			}
		}
		mustStart(t, testConfig(t, st))
		mustAccept(t, st, time.Now(), dial("c"), func() callevents.CallActivity {
			a := dial("c")
			a.Phase = callevents.PhaseAnswer
			return a
		}(), hangup("c"))
		hits := rc.WaitHits(t, 6)
		seen := map[string]int{}
		for _, h := range hits {
			if h.Header.Get("webhook-signature") != "" {
				t.Errorf("unsigned Call Event got webhook-signature %q", h.Header.Get("webhook-signature"))
			}
			if h.Header.Get("webhook-id") == "" || h.Header.Get("webhook-timestamp") == "" {
				t.Errorf("missing webhook-id or webhook-timestamp: %v", h.Header)
			}
			if got, want := h.Header.Get("X-CallEvents-Event"), strings.TrimPrefix(h.Path, "/"); got != want {
				t.Errorf("X-CallEvents-Event %q at %s", got, h.Path)
			}
			seen[h.Path]++
		}
		for path, want := range map[string]int{"/Dial-In": 1, "/Dial-Out": 1, "/Answer-In": 1, "/Answer-Out": 1, "/Hangup": 2} {
			if seen[path] != want {
				t.Errorf("%s got %d requests, want %d", path, seen[path], want)
			}
		}
	})
}
