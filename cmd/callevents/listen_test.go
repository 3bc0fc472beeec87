package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/callevents/callevents/dispatcher/dispatchertest"
)

// selfSignedCert writes a certificate for 127.0.0.1 and its key to dir and
// returns their paths and a pool that trusts it.
func selfSignedCert(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "callevents test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// runInProcess runs a command until the test ends; it returns its stderr
// and waits for the JSON log line msg to name its address.
func runInProcess(t *testing.T, msg string, args ...string) (addr string, stderr *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stderr = &syncBuffer{}
	done := make(chan int, 1)
	go func() { done <- run(ctx, args, io.Discard, stderr) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Errorf("%s did not stop within 20 s", args[0])
		}
	})
	line := regexp.MustCompile(`"msg":"` + regexp.QuoteMeta(msg) + `","addr":"([^"]+)"`)
	dispatchertest.WaitWithin(t, 20*time.Second, msg, func() bool {
		select {
		case code := <-done:
			t.Fatalf("%s exited %d:\n%s", args[0], code, stderr)
		default:
		}
		if m := line.FindStringSubmatch(stderr.String()); m != nil {
			addr = m[1]
			return true
		}
		return false
	})
	return addr, stderr
}

func get(t *testing.T, client *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// Ensure serve --tls-cert --tls-key answers HTTPS with that certificate,
// and that a plain HTTP request to it is refused.
func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSignedCert(t, dir)
	addr, stderr := runInProcess(t, "callevents: listening", "serve", "--listen", "127.0.0.1:0", "--db", "sqlite:"+filepath.Join(dir, "tls.db"),
		"--tls-cert", certFile, "--tls-key", keyFile)
	if !strings.Contains(stderr.String(), `"tls":true`) {
		t.Errorf("the listening line does not say TLS:\n%s", stderr)
	}
	https := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if status, body := get(t, https, "https://"+addr+"/healthz"); status != 200 || body != "ok\n" {
		t.Errorf("GET /healthz over HTTPS: %d %q", status, body)
	}
	if status, body := get(t, https, "https://"+addr+"/soap/PhoneCallEvents?wsdl"); status != 200 || !strings.Contains(body, `location="https://`+addr+`/soap/PhoneCallEvents"`) {
		t.Errorf("the WSDL served over HTTPS should name its HTTPS address: %d\n%.600s", status, body)
	}
	if status, _ := get(t, http.DefaultClient, "http://"+addr+"/healthz"); status != http.StatusBadRequest {
		t.Errorf("plain HTTP to the TLS listener: %d, want 400", status)
	}
}

// Ensure a half or wrong TLS configuration fails the start with a message
// that names the flags, instead of serving plain HTTP.
func TestServeTLSConfigErrors(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, _ := selfSignedCert(t, dir)
	db := "sqlite:" + filepath.Join(dir, "tls.db")
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"cert only": {[]string{"--tls-cert", certFile}, "--tls-cert and --tls-key go together"},
		"key only":  {[]string{"--tls-key", keyFile}, "--tls-cert and --tls-key go together"},
		"missing":   {[]string{"--tls-cert", filepath.Join(dir, "nope.pem"), "--tls-key", keyFile}, "--tls-cert/--tls-key:"},
		"swapped":   {[]string{"--tls-cert", keyFile, "--tls-key", certFile}, "--tls-cert/--tls-key:"},
	} {
		var stderr syncBuffer
		args := append([]string{"serve", "--listen", "127.0.0.1:0", "--db", db}, tc.args...)
		if code := run(context.Background(), args, io.Discard, &stderr); code == 0 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%s: exit %d, want non-zero and %q:\n%s", name, code, tc.want, stderr.String())
		}
	}
}

// Ensure dispatch and ami, which serve no API, serve /metrics, /healthz
// and /readyz on --metrics-listen (over TLS when asked): the queue gauges
// from dispatch, the AMI connection state (down: nothing listens) from ami.
func TestMetricsListenerOfDispatchAndAMI(t *testing.T) {
	dir := t.TempDir()
	db := "sqlite:" + filepath.Join(dir, "ops.db")
	if code := run(context.Background(), []string{"migrate", "--db", db}, io.Discard, io.Discard); code != 0 {
		t.Fatalf("migrate exited %d", code)
	}
	addr, _ := runInProcess(t, "callevents: metrics listening", "dispatch", "--db", db, "--metrics-listen", "127.0.0.1:0")
	for path, want := range map[string]string{"/healthz": "ok\n", "/readyz": "ok\n", "/metrics": "callevents_queue_pending 0"} {
		if status, body := get(t, http.DefaultClient, "http://"+addr+path); status != 200 || !strings.Contains(body, want) {
			t.Errorf("dispatch %s: %d, want %q in\n%.400s", path, status, want, body)
		}
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	nothing := ln.Addr().String()
	ln.Close()
	certFile, keyFile, pool := selfSignedCert(t, dir)
	addr, _ = runInProcess(t, "callevents: metrics listening", "ami", "--db", db, "--addr", nothing, "--user", "u", "--secret", "s", "--org", "0003",
		"--metrics-listen", "127.0.0.1:0", "--tls-cert", certFile, "--tls-key", keyFile)
	https := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if status, body := get(t, https, "https://"+addr+"/metrics"); status != 200 || !strings.Contains(body, "callevents_ami_connected 0") {
		t.Errorf("ami /metrics: %d, want callevents_ami_connected 0 in\n%.400s", status, body)
	}
}

// Ensure serve refuses request headers past 64 KiB (431) instead of
// reading up to net/http's default of 1 MiB per request.
func TestServeHeaderLimit(t *testing.T) {
	addr, _ := runInProcess(t, "callevents: listening", "serve", "--listen", "127.0.0.1:0", "--db", "sqlite:"+filepath.Join(t.TempDir(), "h.db"))
	req, err := http.NewRequest("GET", "http://"+addr+"/healthz", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Padding", strings.Repeat("p", 100<<10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("a 100 KiB header: HTTP %d, want 431", resp.StatusCode)
	}
	if status, _ := get(t, http.DefaultClient, "http://"+addr+"/healthz"); status != 200 {
		t.Errorf("an ordinary request after it: HTTP %d", status)
	}
}

// Ensure --trusted-proxies takes CIDRs and single addresses and names a
// bad entry.
func TestParseTrustedProxies(t *testing.T) {
	got, err := parseTrustedProxies(" 10.0.0.5, 192.168.1.7/24,::1 ,")
	if err != nil || fmt.Sprint(got) != "[10.0.0.5/32 192.168.1.0/24 ::1/128]" {
		t.Errorf("parseTrustedProxies: %v %v", got, err)
	}
	if _, err := parseTrustedProxies("10.0.0.0/8,proxy.internal"); err == nil || !strings.Contains(err.Error(), `"proxy.internal"`) {
		t.Errorf("a host name: %v, want an error naming it", err)
	}
	var stderr syncBuffer
	if code := run(context.Background(), []string{"serve", "--db", "sqlite:" + filepath.Join(t.TempDir(), "p.db"), "--trusted-proxies", "nope"}, io.Discard, &stderr); code == 0 || !strings.Contains(stderr.String(), "--trusted-proxies") {
		t.Errorf("serve with a bad --trusted-proxies: exit %d\n%s", code, stderr.String())
	}
}
