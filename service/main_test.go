package service_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"
	"go.uber.org/goleak"

	"github.com/callevents/callevents"
	"github.com/callevents/callevents/service"
	"github.com/callevents/callevents/store"
	"github.com/callevents/callevents/store/testdb"
	"github.com/callevents/callevents/wsdl"
)

// TestMain fails the package when a goroutine outlives its tests: every
// server, store and receiver a test starts must be closed by the time it
// ends (but for gorm's statement cache, testdb.IgnoreStoreGoroutines).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m, testdb.IgnoreStoreGoroutines()) }

// testBundle is a running SOAP server on a real embedded store, with a
// client and token for each scope the tests need.
type testBundle struct {
	srv  *httptest.Server
	db   *store.DB
	auth *callevents.Authenticator
	// activities and deliveries are the services behind the intake and
	// the delivery operations (nil with bundleOptions.noDeliveries).
	activities *callevents.ActivityService
	deliveries *callevents.DeliveryService
	logs       *syncBuffer
	tokens     map[string]string // scope → access token
	secret     map[string]string // scope → client id + ":" + secret
	dsn        string            // the store's
	// breakers is what the console's Overview shows as open breakers.
	breakers *callevents.BreakerBoard
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type bundleOptions struct {
	maxPerExtension int
	checkTarget     func(context.Context, string) error
	// tester sends TestPhoneCallEvent's requests; nil means newTester(t, db).
	tester callevents.CallEventTester
	// queued is ActivityService.Queued and DeliveryService.Queued.
	queued func(int)
	// noDeliveries leaves Config.Activities and Config.Deliveries nil.
	noDeliveries bool
	// observer is Config.Observer and ActivityService.Observer.
	observer callevents.Observer
	// limits is Config.Limits.
	limits service.Limits
	// debugLogs logs at debug level (the access log) instead of info.
	debugLogs bool
	// dsn is the store's; "" means a fresh SQLite file.
	dsn string
}

func setup(t testing.TB, opts bundleOptions) *testBundle {
	t.Helper()
	ctx := context.Background()
	dsn := opts.dsn
	if dsn == "" {
		dsn = testdb.DSN(t, store.DialectSQLite)
	}
	db := testdb.MustOpenDSN(t, dsn, store.Options{})
	b := &testBundle{db: db, logs: &syncBuffer{}, tokens: map[string]string{}, secret: map[string]string{}, breakers: &callevents.BreakerBoard{}, dsn: dsn}
	b.auth = &callevents.Authenticator{Store: db}
	for _, scope := range []string{"admin", "org:0003", "ext:0003*210", "pbx"} {
		c, secret, err := callevents.NewClient("test "+scope, callevents.Scope(scope), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := db.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
		token, _, err := b.auth.IssueToken(ctx, c.ID, secret)
		if err != nil {
			t.Fatal(err)
		}
		b.tokens[scope], b.secret[scope] = token, c.ID+":"+secret
	}
	if !opts.noDeliveries {
		tester := opts.tester
		if tester == nil {
			tester = newTester(t, db)
		}
		b.activities = &callevents.ActivityService{Store: db, Queued: opts.queued, Observer: opts.observer}
		b.deliveries = &callevents.DeliveryService{Store: db, CallEvents: db, Tester: tester, Queued: opts.queued}
	}
	srv := service.New(service.Config{
		CallEvents: &callevents.CallEventService{Store: db, MaxPerExtension: opts.maxPerExtension, CheckTarget: opts.checkTarget},
		Auth:       b.auth,
		Activities: b.activities,
		Deliveries: b.deliveries,
		Logger:     slog.New(slog.NewTextHandler(b.logs, &slog.HandlerOptions{Level: logLevel(opts.debugLogs)})),
		Observer:   opts.observer,
		Limits:     opts.limits,
		Console:    service.ConsoleConfig{Sessions: &callevents.ConsoleSessions{Store: db, Auth: b.auth}, Queue: db, Outcomes: db, Breakers: b.breakers},
	})
	mux := http.NewServeMux()
	srv.Register(mux)
	b.srv = httptest.NewServer(mux)
	t.Cleanup(b.srv.Close)
	return b
}

// post sends body to the SOAP endpoint and returns the status and body.
func (b *testBundle) post(t *testing.T, path, contentType, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(b.srv.URL+path, contentType, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(out)
}

// call posts a SOAP 1.1 envelope with a token header and the given body
// element, written with the v1 prefix as SoapUI does.
func (b *testBundle) call(t *testing.T, scope, op string) (int, string) {
	t.Helper()
	return b.post(t, service.PathSOAP, "text/xml; charset=utf-8", envelope11(tokenHeader(b.tokens[scope]), op))
}

func tokenHeader(token string) string {
	return `<v1:userCredentials><v1:accessToken>` + token + `</v1:accessToken></v1:userCredentials>`
}

func envelope11(header, body string) string {
	return `<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:v1="urn:callevents:phonecallevents:1">
   <soapenv:Header>` + header + `</soapenv:Header>
   <soapenv:Body>` + body + `</soapenv:Body>
</soapenv:Envelope>`
}

// fault is a parsed SOAP fault.
type fault struct {
	faultCode string // without prefix: Client, Server, Sender, Receiver, VersionMismatch…
	reason    string
	code      string // serviceFault/code
	message   string // serviceFault/message
}

func parseFault(t *testing.T, body string) (fault, bool) {
	t.Helper()
	doc := etree.NewDocument()
	if err := doc.ReadFromString(body); err != nil {
		t.Fatalf("response is not XML: %v\n%s", err, body)
	}
	f := doc.FindElement("//Body/Fault")
	if f == nil {
		return fault{}, false
	}
	var out fault
	if c := f.FindElement("faultcode"); c != nil { // SOAP 1.1
		out.faultCode = c.Text()
		out.reason = f.FindElement("faultstring").Text()
	} else {
		out.faultCode = f.FindElement("Code/Value").Text()
		out.reason = f.FindElement("Reason/Text").Text()
	}
	if i := strings.IndexByte(out.faultCode, ':'); i >= 0 {
		out.faultCode = out.faultCode[i+1:]
	}
	if sf := f.FindElement("//serviceFault"); sf != nil {
		if sf.NamespaceURI() != wsdl.Namespace {
			t.Errorf("serviceFault in namespace %q", sf.NamespaceURI())
		}
		out.code = sf.FindElement("code").Text()
		out.message = sf.FindElement("message").Text()
	}
	return out, true
}

// bodyElement returns the first element of the response body.
func bodyElement(t *testing.T, body string) *etree.Element {
	t.Helper()
	doc := etree.NewDocument()
	if err := doc.ReadFromString(body); err != nil {
		t.Fatalf("response is not XML: %v\n%s", err, body)
	}
	b := doc.FindElement("//Body")
	if b == nil || len(b.ChildElements()) == 0 {
		t.Fatalf("response has no body element:\n%s", body)
	}
	return b.ChildElements()[0]
}

// schemaValidator validates response elements with xmllint against the
// schema inside our own WSDL. Without xmllint it skips locally and fails
// under CI=true.
type schemaValidator struct{ xsd string }

func newSchemaValidator(t *testing.T) *schemaValidator {
	t.Helper()
	if _, err := exec.LookPath("xmllint"); err != nil {
		requireTool(t, "xmllint (apt-get install libxml2-utils)")
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(wsdl.PhoneCallEvents); err != nil {
		t.Fatal(err)
	}
	schema := doc.FindElement("//types/schema").Copy()
	// Carry the namespace declarations of the WSDL root into the schema.
	for _, a := range doc.Root().Attr {
		if a.Space == "xmlns" && schema.SelectAttr("xmlns:"+a.Key) == nil {
			schema.CreateAttr("xmlns:"+a.Key, a.Value)
		}
	}
	out := etree.NewDocument()
	out.SetRoot(schema)
	path := filepath.Join(t.TempDir(), "PhoneCallEvents.xsd")
	if err := out.WriteToFile(path); err != nil {
		t.Fatal(err)
	}
	return &schemaValidator{xsd: path}
}

func (v *schemaValidator) validate(t *testing.T, el *etree.Element) {
	t.Helper()
	doc := etree.NewDocument()
	doc.SetRoot(el.Copy())
	s, err := doc.WriteToString()
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), el.Tag+".xml")
	if err := os.WriteFile(f, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("xmllint", "--noout", "--schema", v.xsd, f).CombinedOutput()
	if err != nil {
		t.Errorf("xmllint: %s does not validate against the WSDL schema: %v\n%s\n%s", el.Tag, err, out, s)
	}
}

// requireTool skips when a test tool is missing, except under CI=true where
// a missing tool is a failure.
func requireTool(t *testing.T, what string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is required under CI=true but is missing", what)
	}
	t.Skipf("%s is missing; skipping (it is required under CI=true)", what)
}

func logLevel(debug bool) slog.Level {
	if debug {
		return slog.LevelDebug
	}
	return slog.LevelInfo
}
