package dispatcher

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/callevents/callevents"
)

// request is one request to send: a delivery's attempt, or a test.
type request struct {
	id      string // webhook-id
	typ     callevents.EventType
	attempt int
	// sequence is the delivery's place in its order key (a test event
	// is alone in one: 1).
	sequence int
	url      string
	method   callevents.Method
	secret   string
	payload  string
	test     bool
	// at is when the attempt is made: its webhook-timestamp, and the
	// time the delivery log keeps for it, so the log shows the signature
	// that was sent.
	at time.Time
}

// result is what came of a request.
type result struct {
	status     int                   // 0 without an HTTP answer
	class      callevents.ErrorClass // "" on 2xx
	latency    time.Duration
	retryAfter string // the Retry-After header of the answer
	err        error  // the cause of class, for the log
}

// sender sends requests through one HTTP client (and so one policy).
type sender struct {
	client    *http.Client
	transport *http.Transport
	userAgent string
	timeout   time.Duration
	// tests bounds the TestCallEvent requests in flight: tests run outside
	// the queue and its Concurrency bound, so they get a bound of their own.
	tests *testSlots
}

func newSender(cfg Config) *sender {
	transport := &http.Transport{
		Proxy:                 nil, // never a proxy from the environment: the policy must see the target
		DialContext:           cfg.Policy.dialer(cfg.Timeout),
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          cfg.Concurrency,
		MaxIdleConnsPerHost:   cfg.Concurrency,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   cfg.Timeout,
		ResponseHeaderTimeout: cfg.Timeout,
		// Go's default allows 10 MB of headers per answer: 128 requests
		// in flight to a receiver that sends that much would hold over a
		// gigabyte. Over HTTP/2 the same value is the advertised
		// SETTINGS_MAX_HEADER_LIST_SIZE.
		MaxResponseHeaderBytes: MaxResponseHeader,
	}
	return &sender{
		client: &http.Client{
			Transport: transport,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse // a 3xx is a failure, not a hint
			},
		},
		transport: transport,
		userAgent: cfg.UserAgent,
		timeout:   cfg.Timeout,
		tests:     newTestSlots(),
	}
}

// targetURL appends the payload to rawURL's query for a GET, keeping the
// query the URL already has.
func targetURL(rawURL string, method callevents.Method, payload string) string {
	if method != callevents.MethodGET {
		return rawURL
	}
	switch {
	case !strings.Contains(rawURL, "?"):
		return rawURL + "?" + payload
	case strings.HasSuffix(rawURL, "?"), strings.HasSuffix(rawURL, "&"):
		return rawURL + payload
	default:
		return rawURL + "&" + payload
	}
}

// send makes one request and classifies what came of it. ctx cancels it.
func (s *sender) send(ctx context.Context, r request) result {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()

	method, body := http.MethodGet, io.Reader(nil)
	if r.method == callevents.MethodPOST {
		method, body = http.MethodPost, strings.NewReader(r.payload)
	}
	target := targetURL(r.url, r.method, r.payload)
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil || (req.URL.Scheme != "http" && req.URL.Scheme != "https") || req.URL.Host == "" || req.URL.User != nil {
		// Validated at Add and Edit, so this cannot happen; were it to,
		// retrying would not help.
		return result{class: callevents.ErrorClassPolicy, err: errors.New("the URL is not an absolute http or https URL")}
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	ts := r.at.Unix()
	req.Header.Set("User-Agent", s.userAgent)
	req.Header.Set("X-CallEvents-Event", r.typ.String())
	req.Header.Set("X-CallEvents-Attempt", strconv.Itoa(r.attempt))
	req.Header.Set("X-CallEvents-Sequence", strconv.Itoa(max(r.sequence, 1)))
	if r.test {
		req.Header.Set("X-CallEvents-Test", "true")
	}
	req.Header.Set("webhook-id", r.id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	if r.secret != "" {
		req.Header.Set("webhook-signature", callevents.WebhookSignature(r.secret, r.id, ts, r.payload))
	}

	resp, err := s.client.Do(req)
	latency := time.Since(start)
	if err != nil {
		// The cause without the URL, whose query may carry a token of the
		// receiver's and the caller's details: it goes to the log.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return result{class: classify(err), latency: latency, err: err}
	}
	// Drain a little so that the connection can be reused, then drop it.
	io.CopyN(io.Discard, resp.Body, MaxResponseBody)
	resp.Body.Close()

	res := result{status: resp.StatusCode, latency: latency, retryAfter: resp.Header.Get("Retry-After")}
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		res.class = callevents.ErrorClassRedirect
	default:
		res.class = callevents.ErrorClassHTTPStatus
	}
	return res
}

// classify maps the error of a request that got no answer to its class.
func classify(err error) callevents.ErrorClass {
	var (
		target   *targetError
		dnsErr   *net.DNSError
		netErr   net.Error
		opErr    *net.OpError
		recErr   tls.RecordHeaderError
		alertErr tls.AlertError
		verErr   *tls.CertificateVerificationError
		unkAuth  x509.UnknownAuthorityError
		hostErr  x509.HostnameError
		certErr  x509.CertificateInvalidError
	)
	switch {
	case errors.As(err, &target):
		return callevents.ErrorClassPolicy
	case headersTooLarge(err):
		return callevents.ErrorClassResponseTooLarge
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &netErr) && netErr.Timeout():
		return callevents.ErrorClassTimeout
	case errors.As(err, &dnsErr):
		return callevents.ErrorClassDNS
	case errors.As(err, &recErr), errors.As(err, &alertErr), errors.As(err, &verErr),
		errors.As(err, &unkAuth), errors.As(err, &hostErr), errors.As(err, &certErr):
		return callevents.ErrorClassTLS
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return callevents.ErrorClassConnect
	}
	return callevents.ErrorClassIO
}

// headersTooLarge reports whether err is net/http's refusal of an answer
// whose headers exceed Transport.MaxResponseHeaderBytes. net/http exports
// neither a type nor a sentinel for it, so this matches the text of its
// two errors (net/http transport.go and the bundled HTTP/2 client, as of
// Go 1.26): "net/http: server response headers exceeded N bytes; aborted"
// and "http2: response header list larger than advertised limit". Should
// a Go release reword them, an oversized answer is classed
// callevents.ErrorClassIO, which is retried and counted by the breaker
// alike: only the class would change (TestResponseHeadersBounded notices).
func headersTooLarge(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "server response headers exceeded") ||
		strings.Contains(msg, "response header list larger than advertised limit")
}
