package dispatchertest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// VerifySignature checks webhook-signature as a Standard Webhooks receiver
// would (spec v1.0.0), failing the test when it does not verify. It is
// written from the spec rather than from the dispatcher: the signed
// content is id.timestamp.payload, the key the raw secret, the signature
// base64 (standard alphabet) of HMAC-SHA256, sent as one of
// space-separated "v1,<sig>" entries; the timestamp must be within 5
// minutes; comparison is constant-time. payload is what was sent: the
// body of a POST, the appended query of a GET.
func VerifySignature(tb TB, secret string, h http.Header, payload string) {
	tb.Helper()
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		tb.Fatalf("missing Standard Webhooks headers: id %q, timestamp %q, signature %q", id, ts, sigs)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		tb.Fatalf("webhook-timestamp %q is not integer seconds", ts)
	}
	if d := time.Since(time.Unix(sec, 0)); d > 5*time.Minute || d < -5*time.Minute {
		tb.Fatalf("webhook-timestamp %s is %s away from now", ts, d)
	}
	mac := hmac.New(sha256.New, []byte(secret))
	io.WriteString(mac, id+"."+ts+"."+payload)
	want := mac.Sum(nil)
	for _, entry := range strings.Fields(sigs) {
		version, sig, ok := strings.Cut(entry, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(sig)
		if err == nil && hmac.Equal(got, want) {
			return
		}
	}
	tb.Fatalf("webhook-signature %q does not verify over %q", sigs, id+"."+ts+"."+payload)
}
