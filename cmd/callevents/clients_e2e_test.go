package main

// End-to-end tests with real SOAP clients: the callevents binary is built and
// run as a subprocess on a fresh SQLite database, and zeep (Python), PHP's
// SoapClient and node-soap load the WSDL from it and drive every operation
// (testdata/clients/*). Every raw response they received is then validated
// against the WSDL's schema with xmllint.
//
// The clients are Debian packages plus node-soap in <repo>/.ci/node (see
// .ci/run). When one is missing the test is skipped, except with CI=true,
// where it fails.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	e2eNamespace = "urn:callevents:phonecallevents:1"
	// e2ePython is the interpreter that sees Debian's python3-zeep; the
	// python3 on PATH may be a pyenv shim that does not.
	e2ePython = "/usr/bin/python3"
	// e2eForeignExtension is outside the org:0003 scope of the scoped client.
	e2eForeignExtension = "0004*100"
	e2eClientTimeout    = 2 * time.Minute
)

var e2eOperations = []string{"AddPhoneCallEvent", "GetPhoneCallEvents", "EditPhoneCallEvent", "SetPhoneCallEventStatus", "DelPhoneCallEvent"}

// e2eNeed skips the test when a client tool is missing (err != nil), or
// fails it when CI=true: CI installs every tool, so a missing one there is a
// broken set-up, not a reason to test less.
func e2eNeed(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	msg := fmt.Sprintf("%s is not available (.ci/run installs it): %v", what, err)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// e2eProbe runs a short command that checks a tool is usable.
func e2eProbe(name string, args ...string) error {
	if _, err := exec.LookPath(name); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

func e2eZeep() error { return e2eProbe(e2ePython, "-c", "import zeep") }

func e2ePHPSoap() error {
	return e2eProbe("php", "-r", `exit(class_exists("SoapClient") ? 0 : 1);`)
}

func e2eNodeSoap(root string) error {
	if err := e2eProbe("node", "--version"); err != nil {
		return err
	}
	_, err := os.Stat(filepath.Join(root, ".ci", "node", "node_modules", "soap", "package.json"))
	return err
}

func e2eXMLTools() error {
	if err := e2eProbe("xmllint", "--version"); err != nil {
		return err
	}
	return e2eProbe("xsltproc", "--version")
}

// e2eRepoRoot is the module root (tests run in cmd/callevents).
func e2eRepoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root not found from %s: %v", root, err)
	}
	return root
}

// e2eEnv is the environment of every subprocess: this one's without
// CALLEVENTS_* (flags set what the test needs), with text logs, which the
// tests read line by line (TestServeLogsJSON checks the JSON default),
// plus extra.
func e2eEnv(extra ...string) []string {
	env := []string{"CALLEVENTS_LOG_FORMAT=text"}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CALLEVENTS_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// e2eLines collects a subprocess's output lines and lets a test wait for one.
type e2eLines struct {
	mu      sync.Mutex
	lines   []string
	changed chan struct{} // closed and replaced on every new line
}

func newE2ELines() *e2eLines { return &e2eLines{changed: make(chan struct{})} }

func (l *e2eLines) add(line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, line)
	close(l.changed)
	l.changed = make(chan struct{})
}

func (l *e2eLines) snapshot() ([]string, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.lines), l.changed
}

func (l *e2eLines) String() string {
	lines, _ := l.snapshot()
	return strings.Join(lines, "\n")
}

// wait returns the first line index for which match reports true, or an
// error when exited is closed first or the deadline passes.
func (l *e2eLines) wait(match func(lines []string) (int, bool), exited <-chan struct{}, timeout time.Duration) (int, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		lines, changed := l.snapshot()
		if i, ok := match(lines); ok {
			return i, nil
		}
		select {
		case <-changed:
		case <-exited:
			lines, _ := l.snapshot()
			if i, ok := match(lines); ok {
				return i, nil
			}
			return 0, errors.New("the server exited")
		case <-deadline.C:
			return 0, fmt.Errorf("nothing after %v", timeout)
		}
	}
}

// e2eServer is one running `callevents serve` on a fresh SQLite database.
type e2eServer struct {
	bin, db     string
	addr        string // host:port it listens on
	adminID     string
	adminSecret string
}

func (s *e2eServer) wsdlURL() string  { return "http://" + s.addr + "/soap/PhoneCallEvents?wsdl" }
func (s *e2eServer) tokenURL() string { return "http://" + s.addr + "/oauth/token.php" }

type e2eClientCreds struct {
	ClientID     string `json:"clientId"`
	ClientSecret string `json:"clientSecret"`
	Scope        string `json:"scope"`
	Name         string `json:"name"`
}

var e2eListening = regexp.MustCompile(`msg="callevents: listening" .*\baddr=(\S+)`)

// e2eBuild builds the real binary into a temporary folder.
func e2eBuild(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "callevents")
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/callevents: %v\n%s", err, out)
	}
	return bin
}

// startE2EServer builds and starts the server, waits for its listening line
// and reads the bootstrap admin credentials it prints on a fresh database.
// Cleanup stops it with SIGTERM and fails the test unless it exits cleanly
// within 15 s.
func startE2EServer(t *testing.T) *e2eServer {
	t.Helper()
	s := &e2eServer{bin: e2eBuild(t), db: "sqlite:" + filepath.Join(t.TempDir(), "e2e.db")}
	cmd := exec.Command(s.bin, "serve", "--listen", "127.0.0.1:0", "--db", s.db, "--log-format", "text", "--log-level", "info")
	cmd.Env = e2eEnv()
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	out := newE2ELines()
	read := make(chan struct{})
	go func() {
		defer close(read)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			out.add(sc.Text())
		}
		io.Copy(io.Discard, pr) // never block the server on a too-long line
	}()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", s.bin, err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		pw.Close()
		close(exited)
	}()
	t.Cleanup(func() {
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			t.Errorf("SIGTERM the server: %v", err)
		}
		stop := time.NewTimer(15 * time.Second)
		defer stop.Stop()
		select {
		case <-exited:
			if waitErr != nil {
				t.Errorf("the server did not exit cleanly after SIGTERM: %v", waitErr)
			}
		case <-stop.C:
			cmd.Process.Kill()
			<-exited
			t.Errorf("the server did not exit within 15 s of SIGTERM")
		}
		<-read
		if t.Failed() {
			t.Logf("server output:\n%s", out)
		}
	})

	i, err := out.wait(func(lines []string) (int, bool) {
		for i, line := range lines {
			if e2eListening.MatchString(line) {
				return i, true
			}
		}
		return 0, false
	}, exited, 30*time.Second)
	if err != nil {
		t.Fatalf("waiting for the listening line: %v\nserver output:\n%s", err, out)
	}
	lines, _ := out.snapshot()
	s.addr = e2eListening.FindStringSubmatch(lines[i])[1]

	// On a fresh database the admin credentials come before the listening
	// line: a notice, then one JSON line.
	for j, line := range lines[:i] {
		if !strings.Contains(line, "callevents: created the bootstrap admin client") || j+1 >= len(lines) {
			continue
		}
		var admin e2eClientCreds
		if err := json.Unmarshal([]byte(lines[j+1]), &admin); err != nil {
			t.Fatalf("bootstrap admin line %q: %v", lines[j+1], err)
		}
		if admin.Scope != "admin" || admin.ClientID == "" || admin.ClientSecret == "" {
			t.Fatalf("bootstrap admin client: %+v", admin)
		}
		s.adminID, s.adminSecret = admin.ClientID, admin.ClientSecret
	}
	if s.adminID == "" {
		t.Fatalf("no bootstrap admin credentials before the listening line:\n%s", out)
	}
	return s
}

// addClient runs `callevents clients add` on the server's database.
func (s *e2eServer) addClient(t *testing.T, name, scope string) e2eClientCreds {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.bin, "clients", "add", "--name", name, "--scope", scope, "--db", s.db)
	cmd.Env = e2eEnv()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("clients add --scope %s: %v\n%s", scope, err, stderr.String())
	}
	var c e2eClientCreds
	if err := json.Unmarshal(out, &c); err != nil {
		t.Fatalf("clients add printed %q: %v", out, err)
	}
	if c.ClientID == "" || c.ClientSecret == "" || c.Scope != scope {
		t.Fatalf("clients add --scope %s printed %s", scope, out)
	}
	return c
}

// e2eGet fetches a URL and returns the body; the status must be 200.
func e2eGet(t *testing.T, u string) ([]byte, http.Header) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: HTTP %d: %.300s", u, resp.StatusCode, body)
	}
	return body, resp.Header
}

// e2eRun runs a command with a timeout and returns its stdout and stderr.
func e2eRun(t *testing.T, dir string, env []string, name string, args ...string) (stdout, stderr []byte, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), e2eClientTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Env = dir, env
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.Bytes(), e.Bytes(), err
}

// TestE2EWSDL checks the served WSDL with tools that parse it strictly: its
// addresses point back at the server, xmllint finds it well-formed, its
// schema compiles, and `python3 -m zeep` reads all five operations.
func TestE2EWSDL(t *testing.T) {
	srv := startE2EServer(t)
	wsdl, hdr := e2eGet(t, srv.wsdlURL())
	if ct := hdr.Get("Content-Type"); !strings.Contains(ct, "xml") {
		t.Errorf("WSDL Content-Type %q, want an XML type", ct)
	}
	upper, _ := e2eGet(t, "http://"+srv.addr+"/soap/PhoneCallEvents?WSDL")
	if !bytes.Equal(upper, wsdl) {
		t.Errorf("?WSDL and ?wsdl serve different documents")
	}

	// Both soap:address and soap12:address name the address it was fetched from.
	want := "http://" + srv.addr + "/soap/PhoneCallEvents"
	addrs := map[string]string{}
	dec := xml.NewDecoder(bytes.NewReader(wsdl))
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("WSDL is not well-formed XML: %v", err)
		}
		if el, ok := tok.(xml.StartElement); ok && el.Name.Local == "address" {
			for _, a := range el.Attr {
				if a.Name.Local == "location" {
					addrs[el.Name.Space] = a.Value
				}
			}
		}
	}
	for _, ns := range []string{"http://schemas.xmlsoap.org/wsdl/soap/", "http://schemas.xmlsoap.org/wsdl/soap12/"} {
		if addrs[ns] != want {
			t.Errorf("address in %s = %q, want %q", ns, addrs[ns], want)
		}
	}
	dir := t.TempDir()
	wsdlFile := filepath.Join(dir, "PhoneCallEvents.wsdl")
	if err := os.WriteFile(wsdlFile, wsdl, 0o644); err != nil {
		t.Fatal(err)
	}

	t.Run("xmllint", func(t *testing.T) {
		e2eNeed(t, "xmllint/xsltproc (libxml2-utils, xsltproc)", e2eXMLTools())
		if _, stderr, err := e2eRun(t, dir, e2eEnv(), "xmllint", "--noout", wsdlFile); err != nil {
			t.Fatalf("xmllint --noout: %v\n%s", err, stderr)
		}
		xsd := e2eExtractSchema(t, wsdlFile)
		// Compiling the schema takes an instance: a serviceFault as a fault carries it.
		sample := filepath.Join(dir, "serviceFault.xml")
		if err := os.WriteFile(sample, []byte(`<serviceFault xmlns="`+e2eNamespace+`"><code>254</code><message>Extension invalid.</message></serviceFault>`), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, stderr, err := e2eRun(t, dir, e2eEnv(), "xmllint", "--noout", "--schema", xsd, sample); err != nil {
			t.Fatalf("the WSDL's schema does not compile or validate a serviceFault: %v\n%s%s", err, out, stderr)
		}
	})

	t.Run("zeep", func(t *testing.T) {
		e2eNeed(t, "zeep ("+e2ePython+" with python3-zeep)", e2eZeep())
		out, stderr, err := e2eRun(t, dir, e2eEnv(), e2ePython, "-m", "zeep", srv.wsdlURL())
		if err != nil {
			t.Fatalf("python3 -m zeep: %v\n%s\n%s", err, out, stderr)
		}
		// zeep lists each port with its operations, signature in brackets.
		for _, port := range []string{"PhoneCallEventsPort", "PhoneCallEventsPort12"} {
			if !strings.Contains(string(out), "Port: "+port+" ") {
				t.Errorf("python3 -m zeep does not list port %s:\n%s", port, out)
			}
		}
		for _, op := range e2eOperations {
			if n := strings.Count(string(out), " "+op+"("); n != 2 {
				t.Errorf("python3 -m zeep lists %s %d times, want 2 (one per port):\n%s", op, n, out)
			}
		}
		if len(stderr) > 0 {
			t.Logf("python3 -m zeep stderr:\n%s", stderr)
		}
	})
}

// e2eExtractSchema writes the WSDL's inline schema to a file with xsltproc.
func e2eExtractSchema(t *testing.T, wsdlFile string) string {
	t.Helper()
	xsl, err := filepath.Abs(filepath.Join("testdata", "clients", "extract-schema.xsl"))
	if err != nil {
		t.Fatal(err)
	}
	xsd := filepath.Join(filepath.Dir(wsdlFile), "PhoneCallEvents.xsd")
	if _, stderr, err := e2eRun(t, "", e2eEnv(), "xsltproc", "-o", xsd, xsl, wsdlFile); err != nil {
		t.Fatalf("xsltproc extract-schema.xsl: %v\n%s", err, stderr)
	}
	return xsd
}

// e2eReport is what a client script prints (testdata/clients/*).
type e2eReport struct {
	Client         string              `json:"client"`
	Extension      string              `json:"extension"`
	Error          string              `json:"error"`
	IDs            []string            `json:"ids"`
	HasSecret      []bool              `json:"hasSecret"`
	Added          []e2eEvent          `json:"added"`
	Pages          []e2eList           `json:"pages"`
	ByType         e2eList             `json:"byType"`
	ByID           e2eList             `json:"byId"`
	Edited         e2eEvent            `json:"edited"`
	StatusSet      e2eEvent            `json:"statusSet"`
	SOAP12         *e2eSOAP12          `json:"soap12"`
	Deleted        e2eDeleted          `json:"deleted"`
	FinalTotal     *int                `json:"finalTotal"`
	ScopedOwnTotal *int                `json:"scopedOwnTotal"`
	Faults         map[string]e2eFault `json:"faults"`
	// PHP only: how its userCredentials children went out, and the call
	// made VoipNow style (4psa namespace, stdClass, unqualified children).
	HeaderChildren string            `json:"headerChildren"`
	VoipnowHeader  *e2eVoipnowHeader `json:"voipnowHeader"`
	// php only: the same header built from an array, sent as an Apache map.
	VoipnowArrayHeader *struct {
		Map   bool `json:"map"`
		Total int  `json:"total"`
	} `json:"voipnowArrayHeader"`
}

type e2eVoipnowHeader struct {
	Children string `json:"children"`
	Total    int    `json:"total"`
}

type e2eEvent struct {
	ID        string `json:"id"`
	Extension string `json:"extension"`
	Type      int    `json:"type"`
	Method    int    `json:"method"`
	URL       string `json:"url"`
	Status    int    `json:"status"`
	Note      string `json:"note"`
	HasSecret bool   `json:"hasSecret"`
	Modified  string `json:"modified"`
}

type e2eList struct {
	Count int      `json:"count"`
	Total int      `json:"total"`
	IDs   []string `json:"ids"`
}

type e2eSOAP12 struct {
	Total int      `json:"total"`
	Fault e2eFault `json:"fault"`
}

type e2eDeleted struct {
	ByID   []string `json:"byId"`
	ByType []string `json:"byType"`
	All    []string `json:"all"`
}

type e2eFault struct {
	Code        int    `json:"code"`
	Message     string `json:"message"`
	FaultCode   string `json:"faultcode"`
	FaultString string `json:"faultstring"`
}

// e2eClient is one real SOAP client and how to run it.
type e2eClient struct {
	name      string
	needs     string // what must be installed, for the skip message
	extension string
	soap12    bool // the script also exercises the WSDL's SOAP 1.2 port
	voipnow   bool // the script also authenticates with a VoipNow SystemAPI header
	available func(root string) error
	command   func(root, script string) (name string, args, env []string)
}

var e2eClients = []e2eClient{
	{
		name: "zeep", extension: "0003*210", soap12: true,
		needs:     "zeep (" + e2ePython + " with python3-zeep)",
		available: func(string) error { return e2eZeep() },
		command: func(_, script string) (string, []string, []string) {
			return e2ePython, []string{script}, nil
		},
	},
	{
		name: "php", extension: "0003*211", soap12: true, voipnow: true,
		needs:     "PHP SoapClient (php-cli and php-soap)",
		available: func(string) error { return e2ePHPSoap() },
		command: func(_, script string) (string, []string, []string) {
			// No on-disk WSDL cache: the port changes on every run.
			return "php", []string{"-d", "soap.wsdl_cache_enabled=0", script}, nil
		},
	},
	{
		name: "node", extension: "0003*212",
		needs:     "node-soap (node, and soap in <repo>/.ci/node/node_modules)",
		available: e2eNodeSoap,
		command: func(root, script string) (string, []string, []string) {
			return "node", []string{script}, []string{"NODE_PATH=" + filepath.Join(root, ".ci", "node", "node_modules")}
		},
	},
}

var e2eScripts = map[string]string{"zeep": "zeep_client.py", "php": "php_client.php", "node": "node_client.js"}

// TestE2ESOAPClients runs zeep, PHP SoapClient and node-soap against one
// server, each on its own extension: Add ×3, Get with paging and filters,
// Edit, SetPhoneCallEventStatus, Del by id / by type / all, and faults 254,
// 103 (a client scoped to org:0003 touching 0004*100) and 100, read through
// each client's own fault API. zeep and node authenticate with an access
// token from the token endpoint, PHP with username and password. Then every
// response they received is validated against the WSDL's schema.
func TestE2ESOAPClients(t *testing.T) {
	root := e2eRepoRoot(t)
	srv := startE2EServer(t)
	scoped := srv.addClient(t, "e2e org 0003", "org:0003")
	rawDir := t.TempDir()
	ran := map[string]bool{}

	for _, c := range e2eClients {
		t.Run(c.name, func(t *testing.T) {
			e2eNeed(t, c.needs, c.available(root))
			script, err := filepath.Abs(filepath.Join("testdata", "clients", e2eScripts[c.name]))
			if err != nil {
				t.Fatal(err)
			}
			name, args, env := c.command(root, script)
			env = e2eEnv(append(env,
				"CE_WSDL_URL="+srv.wsdlURL(),
				"CE_TOKEN_URL="+srv.tokenURL(),
				"CE_CLIENT_ID="+srv.adminID,
				"CE_CLIENT_SECRET="+srv.adminSecret,
				"CE_SCOPED_CLIENT_ID="+scoped.ClientID,
				"CE_SCOPED_CLIENT_SECRET="+scoped.ClientSecret,
				"CE_EXTENSION="+c.extension,
				"CE_FOREIGN_EXTENSION="+e2eForeignExtension,
				"CE_RAW_DIR="+rawDir,
			)...)
			ran[c.name] = true
			start := time.Now()
			stdout, stderr, err := e2eRun(t, t.TempDir(), env, name, args...)
			t.Logf("%s %s: ran for %v", name, strings.Join(args, " "), time.Since(start).Round(time.Millisecond))
			if len(stderr) > 0 {
				t.Logf("%s stderr:\n%s", c.name, stderr)
			}
			if err != nil {
				t.Errorf("%s client failed: %v\nstdout: %s", c.name, err, stdout)
			}
			lines := strings.Split(strings.TrimSpace(string(stdout)), "\n")
			var rep e2eReport
			if err := json.Unmarshal([]byte(lines[len(lines)-1]), &rep); err != nil {
				t.Fatalf("%s printed no JSON report (%v):\n%s", c.name, err, stdout)
			}
			if err == nil {
				t.Logf("%s report: %s", c.name, lines[len(lines)-1])
			}
			checkE2EReport(t, c, rep)
		})
	}

	t.Run("schema", func(t *testing.T) {
		e2eNeed(t, "xmllint/xsltproc (libxml2-utils, xsltproc)", e2eXMLTools())
		if len(ran) == 0 {
			t.Skip("no client ran")
		}
		e2eValidateResponses(t, srv, rawDir, ran)
	})
}

var e2eIDPattern = regexp.MustCompile(`^[A-Za-z0-9]{30}$`)

// checkE2EReport asserts on what the client observed, independently of the
// script's own checks, so that a script that did nothing fails.
func checkE2EReport(t *testing.T, c e2eClient, rep e2eReport) {
	if rep.Error != "" {
		t.Errorf("%s reported: %s", c.name, rep.Error)
	}
	if rep.Client != c.name || rep.Extension != c.extension {
		t.Errorf("report is for client %q extension %q, want %q %q", rep.Client, rep.Extension, c.name, c.extension)
	}
	if len(rep.IDs) != 3 || len(rep.Added) != 3 {
		t.Fatalf("ids %v, added %d Call Events: want 3", rep.IDs, len(rep.Added))
	}
	ids := rep.IDs
	for i, id := range ids {
		if !e2eIDPattern.MatchString(id) {
			t.Errorf("id %q is not 30 alphanumerics", id)
		}
		if slices.Index(ids, id) != i {
			t.Errorf("id %q returned twice", id)
		}
	}
	if want := []bool{false, true, false}; !slices.Equal(rep.HasSecret, want) {
		t.Errorf("hasSecret %v, want %v", rep.HasSecret, want)
	}
	hook := "https://hooks.example.com/" + c.name
	wantAdded := []e2eEvent{
		{ID: ids[0], Extension: c.extension, Type: 0, Method: 0, URL: hook + "/dial-in", Status: 1},
		{ID: ids[1], Extension: c.extension, Type: 2, Method: 1, URL: hook + "/hangup", Status: 1, Note: "hangup note <&> é✓", HasSecret: true},
		{ID: ids[2], Extension: c.extension, Type: 3, Method: 0, URL: hook + "/answer-in?x=1&y=2", Status: 1},
	}
	for i, got := range rep.Added {
		e2eCheckModified(t, "added", got.Modified)
		got.Modified = ""
		if got != wantAdded[i] {
			t.Errorf("added[%d] = %+v,\nwant %+v", i, got, wantAdded[i])
		}
	}

	if len(rep.Pages) != 2 {
		t.Fatalf("pages %+v, want 2", rep.Pages)
	}
	if p := rep.Pages[0]; p.Count != 2 || p.Total != 3 || len(p.IDs) != 2 {
		t.Errorf("count=2 startIndex=0: %+v, want 2 items of 3", p)
	}
	if p := rep.Pages[1]; p.Count != 1 || p.Total != 3 || len(p.IDs) != 1 {
		t.Errorf("count=2 startIndex=2: %+v, want 1 item of 3", p)
	}
	paged := slices.Sorted(slices.Values(append(slices.Clone(rep.Pages[0].IDs), rep.Pages[1].IDs...)))
	if all := slices.Sorted(slices.Values(ids)); !slices.Equal(paged, all) {
		t.Errorf("the two pages hold %v, want each of %v once", paged, all)
	}
	if rep.ByType.Total != 1 || !slices.Equal(rep.ByType.IDs, []string{ids[1]}) {
		t.Errorf("filter type=2: %+v, want only %s", rep.ByType, ids[1])
	}
	if rep.ByID.Total != 1 || !slices.Equal(rep.ByID.IDs, []string{ids[0]}) {
		t.Errorf("filter id: %+v, want only %s", rep.ByID, ids[0])
	}

	e2eCheckModified(t, "edited", rep.Edited.Modified)
	if e := rep.Edited; e.ID != ids[1] || e.URL != hook+"/hangup-v2" || e.Note != "edited by "+c.name || e.Method != 1 || !e.HasSecret || e.Status != 1 {
		t.Errorf("after Edit: %+v, want url %s/hangup-v2, note %q, method and secret kept", e, hook, "edited by "+c.name)
	}
	if e := rep.StatusSet; e.ID != ids[2] || e.Status != 0 || e.URL != hook+"/answer-in?x=1&y=2" {
		t.Errorf("after SetPhoneCallEventStatus 0: %+v", e)
	}
	if c.soap12 {
		if rep.SOAP12 == nil || rep.SOAP12.Total != 3 || rep.SOAP12.Fault.Code != 254 {
			t.Errorf("SOAP 1.2: %+v, want totalResults 3 and a 254 fault", rep.SOAP12)
		}
	}

	if c.voipnow {
		if v := rep.VoipnowHeader; v == nil || v.Children != "unqualified" || v.Total != 0 {
			t.Errorf("VoipNow-style header (4psa namespace, unqualified children): %+v, want accepted", v)
		}
		if v := rep.VoipnowArrayHeader; v == nil || !v.Map || v.Total != 0 {
			t.Errorf("VoipNow-style header from a PHP array (Apache map): %+v, want accepted", v)
		}
		if rep.HeaderChildren == "" {
			t.Errorf("the client did not report how it sent userCredentials")
		}
	}

	d := rep.Deleted
	if !slices.Equal(d.ByID, ids[:1]) || !slices.Equal(d.ByType, ids[1:2]) || !slices.Equal(d.All, ids[2:]) {
		t.Errorf("deleted %+v, want by id %v, by type %v, all %v", d, ids[:1], ids[1:2], ids[2:])
	}
	if rep.FinalTotal == nil || *rep.FinalTotal != 0 {
		t.Errorf("totalResults after deleting all: %v, want 0", e2eIntText(rep.FinalTotal))
	}
	if rep.ScopedOwnTotal == nil || *rep.ScopedOwnTotal != 0 {
		t.Errorf("org:0003 client reading %s: totalResults %v, want 0", c.extension, e2eIntText(rep.ScopedOwnTotal))
	}

	for name, code := range map[string]int{"extensionInvalid": 254, "outOfScope": 103, "badCredentials": 100} {
		f, ok := rep.Faults[name]
		switch {
		case !ok:
			t.Errorf("fault %s not reported", name)
		case f.Code != code:
			t.Errorf("fault %s: serviceFault code %d, want %d (%+v)", name, f.Code, code, f)
		case !strings.HasSuffix(f.FaultCode, "Client"):
			t.Errorf("fault %s: faultcode %q, want soap:Client", name, f.FaultCode)
		case f.FaultString == "" || f.Message == "":
			t.Errorf("fault %s: empty faultstring or message (%+v)", name, f)
		}
	}
}

func e2eIntText(p *int) string {
	if p == nil {
		return "absent"
	}
	return fmt.Sprint(*p)
}

// e2eCheckModified checks that a client read `modified` as a recent time.
func e2eCheckModified(t *testing.T, what, s string) {
	t.Helper()
	m, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Errorf("%s: modified %q is not an RFC 3339 time: %v", what, s, err)
		return
	}
	if d := time.Since(m); d < -time.Minute || d > 10*time.Minute {
		t.Errorf("%s: modified %s is not about now", what, m)
	}
}

// e2eValidateResponses validates every response envelope the clients saved
// (the body element, or a fault's serviceFault detail) against the schema
// inside the served WSDL. None of the clients checks values (an int, a
// boolean, a dateTime); xmllint does.
func e2eValidateResponses(t *testing.T, srv *e2eServer, rawDir string, ran map[string]bool) {
	wsdl, _ := e2eGet(t, srv.wsdlURL())
	dir := t.TempDir()
	wsdlFile := filepath.Join(dir, "PhoneCallEvents.wsdl")
	if err := os.WriteFile(wsdlFile, wsdl, 0o644); err != nil {
		t.Fatal(err)
	}
	xsd := e2eExtractSchema(t, wsdlFile)
	payloadXSL, err := filepath.Abs(filepath.Join("testdata", "clients", "payload.xsl"))
	if err != nil {
		t.Fatal(err)
	}
	raws, err := filepath.Glob(filepath.Join(rawDir, "*.xml"))
	if err != nil {
		t.Fatal(err)
	}
	perClient := map[string]int{}
	ops := map[string]bool{}
	var payloads []string
	for _, raw := range raws {
		base := filepath.Base(raw)
		perClient[strings.SplitN(base, "-", 2)[0]]++
		payload := filepath.Join(dir, base)
		if _, stderr, err := e2eRun(t, "", e2eEnv(), "xsltproc", "-o", payload, payloadXSL, raw); err != nil {
			b, _ := os.ReadFile(raw)
			t.Errorf("xsltproc payload.xsl %s: %v\n%s\nresponse: %s", base, err, stderr, b)
			continue
		}
		payloads = append(payloads, payload)
		for _, op := range e2eOperations {
			if strings.HasSuffix(base, "-"+op+".xml") {
				ops[op] = true
			}
		}
	}
	for name := range ran {
		// Every script makes over 15 calls; most of them must have been saved.
		if perClient[name] < 15 {
			t.Errorf("%s saved %d responses in %s, want at least 15", name, perClient[name], rawDir)
		}
	}
	for _, op := range e2eOperations {
		if !ops[op] {
			t.Errorf("no saved response of %s", op)
		}
	}
	if len(payloads) == 0 {
		t.Fatal("no response to validate")
	}
	out, stderr, err := e2eRun(t, dir, e2eEnv(), "xmllint", append([]string{"--noout", "--schema", xsd}, payloads...)...)
	if err != nil {
		t.Errorf("responses that do not match the WSDL schema: %v\n%s%s", err, out, stderr)
		for _, line := range strings.Split(string(stderr), "\n") {
			if name, ok := strings.CutSuffix(line, " fails to validate"); ok {
				b, _ := os.ReadFile(filepath.Join(rawDir, filepath.Base(name)))
				t.Logf("%s:\n%s", filepath.Base(name), b)
			}
		}
		return
	}
	t.Logf("%d responses (%v) validate against the WSDL schema", len(payloads), perClient)
}
