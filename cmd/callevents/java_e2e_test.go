package main

// End-to-end test with JAX-WS (Java): wsimport reads the running server's
// WSDL exactly as a Java developer would, javac compiles a small client
// against what it generated (testdata/clients/JavaClient.java), and the
// client drives both ports. The tools are the Debian packages jaxws and
// default-jdk-headless (see .ci/run); missing, the test skips, or fails
// under CI=true.

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

const e2eJavaNeeds = "JAX-WS wsimport and a JDK (apt-get install jaxws default-jdk-headless)"

// e2eJAXWSRuntime finds jaxws-rt.jar, which the client runs with: next to
// wsimport in a JAX-WS RI layout (<home>/bin/wsimport.sh, <home>/lib), or
// where Debian keeps its jars. Its manifest names the rest of the runtime.
func e2eJAXWSRuntime() (string, error) {
	var tried []string
	if ws, err := exec.LookPath("wsimport"); err == nil {
		if real, err := filepath.EvalSymlinks(ws); err == nil {
			tried = append(tried, filepath.Join(filepath.Dir(real), "..", "lib", "jaxws-rt.jar"))
		}
	}
	tried = append(tried, "/usr/share/java/jaxws-rt.jar")
	for _, jar := range tried {
		if _, err := os.Stat(jar); err == nil {
			return filepath.Clean(jar), nil
		}
	}
	return "", fmt.Errorf("jaxws-rt.jar not found (looked at %s)", strings.Join(tried, ", "))
}

func e2eJava() error {
	if _, err := exec.LookPath("wsimport"); err != nil {
		return err
	}
	if err := e2eProbe("javac", "-version"); err != nil {
		return err
	}
	if err := e2eProbe("java", "-version"); err != nil {
		return err
	}
	_, err := e2eJAXWSRuntime()
	return err
}

// e2eNetworkTrap is where the JVM's HTTP, HTTPS and SOCKS proxies point
// while wsimport and the client run: a connection to anything but
// loopback lands here instead of leaving the machine, and is recorded.
type e2eNetworkTrap struct {
	ln   net.Listener
	mu   sync.Mutex
	seen []string // the first bytes of each connection
}

func startE2ENetworkTrap(t *testing.T) *e2eNetworkTrap {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tr := &e2eNetworkTrap{ln: ln}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			// Recorded before the connection is closed, so before the
			// JVM that made it can give up and exit.
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			buf := make([]byte, 200)
			n, _ := c.Read(buf)
			tr.mu.Lock()
			tr.seen = append(tr.seen, fmt.Sprintf("%q", buf[:n]))
			tr.mu.Unlock()
			c.Close()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	return tr
}

// javaOptions sends every non-loopback connection of a JVM to the trap.
func (tr *e2eNetworkTrap) javaOptions() string {
	host, port, _ := net.SplitHostPort(tr.ln.Addr().String())
	local := "localhost|127.*|[::1]"
	var opts []string
	for _, p := range []string{"http.proxy", "https.proxy", "socksProxy"} {
		opts = append(opts, "-D"+p+"Host="+host, "-D"+p+"Port="+port)
	}
	return strings.Join(append(opts, "-Dhttp.nonProxyHosts="+local, "-DsocksNonProxyHosts="+local), " ")
}

func (tr *e2eNetworkTrap) connections() []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return slices.Clone(tr.seen)
}

type e2eJavaReport struct {
	Client string                 `json:"client"`
	Error  string                 `json:"error"`
	Ports  map[string]e2eJavaPort `json:"ports"`
}

type e2eJavaPort struct {
	Extension string     `json:"extension"`
	Added     []e2eEvent `json:"added"`
	Listed    e2eList    `json:"listed"`
	Page      e2eList    `json:"page"`
	Edited    e2eEvent   `json:"edited"`
	StatusSet e2eEvent   `json:"statusSet"`
	Deleted   struct {
		ByID []string `json:"byId"`
		All  []string `json:"all"`
	} `json:"deleted"`
	Final  e2eList             `json:"final"`
	Faults map[string]e2eFault `json:"faults"`
}

// TestE2EJavaClient runs plain `wsimport -keep -d gen <url>?wsdl` and
// checks that it succeeds and gives every method a userCredentials
// parameter; then `wsimport -extension` (the only option, for the SOAP
// 1.2 port), compiles JavaClient.java against its output and runs it: on
// each port add, list, edit, set status, delete and three faults read
// from the serviceFault detail (254, and 100 without and with wrong
// credentials). Nothing may reach for the network beyond loopback. Every
// response the client received is then validated against the WSDL's schema.
func TestE2EJavaClient(t *testing.T) {
	e2eNeed(t, e2eJavaNeeds, e2eJava())
	jaxwsRT, err := e2eJAXWSRuntime()
	if err != nil {
		t.Fatal(err)
	}
	srv := startE2EServer(t)
	trap := startE2ENetworkTrap(t)
	env := e2eEnv("JAVA_TOOL_OPTIONS=" + trap.javaOptions())
	work := t.TempDir()
	for _, dir := range []string{"plain", "gen", "classes"} { // wsimport writes only into folders that exist
		if err := os.Mkdir(filepath.Join(work, dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	run := func(t *testing.T, what, name string, args ...string) string {
		t.Helper()
		start := time.Now()
		stdout, stderr, err := e2eRun(t, work, env, name, args...)
		t.Logf("%s: %s %s: ran for %v", what, name, strings.Join(args, " "), time.Since(start).Round(time.Millisecond))
		out := string(stdout) + string(stderr)
		if err != nil {
			t.Fatalf("%s: %v\n%s", what, err, out)
		}
		return out
	}

	t.Run("plain-wsimport", func(t *testing.T) {
		out := run(t, "plain wsimport", "wsimport", "-keep", "-d", "plain", srv.wsdlURL())
		if strings.Contains(out, "[ERROR]") {
			t.Errorf("wsimport reported errors:\n%s", out)
		}
		port, err := os.ReadFile(filepath.Join(work, "plain", "callevents", "phonecallevents", "_1", "PhoneCallEventsPort.java"))
		if err != nil {
			t.Fatalf("wsimport generated no PhoneCallEventsPort: %v\n%s", err, out)
		}
		// Every operation's method takes the header as a parameter.
		methods := strings.Count(string(port), "@WebMethod(")
		headers := strings.Count(string(port), `@WebParam(name = "userCredentials", targetNamespace = "urn:callevents:phonecallevents:1", header = true, partName = "userCredentials")`)
		if methods != 8 || headers != methods {
			t.Errorf("PhoneCallEventsPort has %d methods and %d userCredentials header parameters, want 8 of each:\n%s", methods, headers, port)
		}
	})

	out := run(t, "wsimport -extension", "wsimport", "-extension", "-keep", "-d", "gen", srv.wsdlURL())
	if strings.Contains(out, "[ERROR]") || strings.Contains(out, "Ignoring SOAP port") {
		t.Errorf("wsimport -extension:\n%s", out)
	}
	script, err := filepath.Abs(filepath.Join("testdata", "clients", "JavaClient.java"))
	if err != nil {
		t.Fatal(err)
	}
	classpath := "gen" + string(os.PathListSeparator) + jaxwsRT
	run(t, "javac", "javac", "-cp", classpath, "-d", "classes", script)

	rawDir := t.TempDir()
	start := time.Now()
	stdout, stderr, err := e2eRun(t, work, e2eEnv("JAVA_TOOL_OPTIONS="+trap.javaOptions(),
		"CE_WSDL_URL="+srv.wsdlURL(),
		"CE_TOKEN_URL="+srv.tokenURL(),
		"CE_CLIENT_ID="+srv.adminID,
		"CE_CLIENT_SECRET="+srv.adminSecret,
		"CE_EXTENSION_SOAP11=0003*220",
		"CE_EXTENSION_SOAP12=0003*221",
		"CE_RAW_DIR="+rawDir,
	), "java", "-cp", "classes"+string(os.PathListSeparator)+classpath, "JavaClient")
	t.Logf("java JavaClient: ran for %v", time.Since(start).Round(time.Millisecond))
	if err != nil {
		t.Errorf("java client failed: %v\nstdout: %s\nstderr: %s", err, stdout, stderr)
	}
	lines := strings.Split(strings.TrimSpace(string(stdout)), "\n")
	var rep e2eJavaReport
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &rep); err != nil {
		t.Fatalf("java printed no JSON report (%v):\n%s\n%s", err, stdout, stderr)
	}
	if rep.Error != "" {
		t.Errorf("java reported: %s\n%s", rep.Error, stderr)
	}
	for _, tc := range []struct{ port, ext, ns string }{{"soap11", "0003*220", nsSOAP11}, {"soap12", "0003*221", nsSOAP12}} {
		t.Run(tc.port, func(t *testing.T) {
			p, ok := rep.Ports[tc.port]
			if !ok {
				t.Fatalf("no report for port %s: %s", tc.port, lines[len(lines)-1])
			}
			checkE2EJavaPort(t, tc.ext, p)
			e2eCheckEnvelopes(t, rawDir, "java-"+tc.port+"-", tc.ns)
		})
	}

	if seen := trap.connections(); len(seen) > 0 {
		t.Errorf("wsimport or the client reached for the network beyond loopback %d times: %s", len(seen), strings.Join(seen, ", "))
	}

	t.Run("schema", func(t *testing.T) {
		e2eNeed(t, "xmllint/xsltproc (libxml2-utils, xsltproc)", e2eXMLTools())
		e2eValidateResponses(t, srv, rawDir, map[string]bool{"java": true})
	})
}

// SOAP envelope namespaces, to tell which port answered.
const (
	nsSOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
	nsSOAP12 = "http://www.w3.org/2003/05/soap-envelope"
)

func checkE2EJavaPort(t *testing.T, ext string, p e2eJavaPort) {
	t.Helper()
	if p.Extension != ext || len(p.Added) != 2 {
		t.Fatalf("extension %q, %d added: want %s and 2", p.Extension, len(p.Added), ext)
	}
	id1, id2 := p.Added[0].ID, p.Added[1].ID
	for _, id := range []string{id1, id2} {
		if !e2eIDPattern.MatchString(id) {
			t.Errorf("id %q is not 30 alphanumerics", id)
		}
	}
	if id1 == id2 {
		t.Errorf("both Call Events have id %s", id1)
	}
	hook := "https://hooks.example.com/java"
	want := []e2eEvent{
		{ID: id1, Extension: ext, Type: 0, Method: 0, URL: hook + "/dial-in", Status: 1},
		{ID: id2, Extension: ext, Type: 2, Method: 1, URL: hook + "/hangup", Status: 1, Note: "hangup note <&> é✓", HasSecret: true},
	}
	for i, got := range p.Added {
		e2eCheckModified(t, "added", got.Modified)
		got.Modified = ""
		if got != want[i] {
			t.Errorf("added[%d] = %+v,\nwant %+v", i, got, want[i])
		}
	}
	if p.Listed.Total != 2 || !slices.Equal(p.Listed.IDs, []string{id1, id2}) {
		t.Errorf("list: %+v, want %s and %s of 2", p.Listed, id1, id2)
	}
	if p.Page.Total != 2 || !slices.Equal(p.Page.IDs, []string{id2}) {
		t.Errorf("startIndex 1, count 1: %+v, want %s of 2", p.Page, id2)
	}
	if e := p.Edited; e.ID != id2 || e.URL != hook+"/hangup-v2" || e.Note != "edited by java" || e.Method != 1 || !e.HasSecret || e.Status != 1 {
		t.Errorf("after Edit: %+v, want url %s/hangup-v2, note %q, method and secret kept", e, hook, "edited by java")
	}
	if e := p.StatusSet; e.ID != id1 || e.Status != 0 || e.URL != hook+"/dial-in" {
		t.Errorf("after SetPhoneCallEventStatus 0: %+v", e)
	}
	if !slices.Equal(p.Deleted.ByID, []string{id2}) || !slices.Equal(p.Deleted.All, []string{id1}) {
		t.Errorf("deletedId: by id %v, all %v; want [%s] and [%s]", p.Deleted.ByID, p.Deleted.All, id2, id1)
	}
	if p.Final.Total != 0 || len(p.Final.IDs) != 0 {
		t.Errorf("after deleting all: %+v, want none", p.Final)
	}
	for name, code := range map[string]int{"extensionInvalid": 254, "noCredentials": 100, "badCredentials": 100} {
		f, ok := p.Faults[name]
		switch {
		case !ok:
			t.Errorf("fault %s not reported", name)
		case f.Code != code:
			t.Errorf("fault %s: serviceFault code %d, want %d (%+v)", name, f.Code, code, f)
		case f.FaultString == "" || f.Message == "":
			t.Errorf("fault %s: empty faultstring or message (%+v)", name, f)
		}
	}
	// Without the header, the fault says which one to send.
	if f, want := p.Faults["noCredentials"], "Missing credentials: send a userCredentials header (namespace "+e2eNamespace+")"; !strings.HasPrefix(f.Message, want) {
		t.Errorf("fault without credentials: message %q, want it to start %q", f.Message, want)
	}
}

// e2eCheckEnvelopes checks that the responses saved under prefix are
// envelopes of namespace ns: the port really spoke that SOAP version.
func e2eCheckEnvelopes(t *testing.T, rawDir, prefix, ns string) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(rawDir, prefix+"*.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no saved response %s*.xml", prefix)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var root struct{ XMLName xml.Name }
		if err := xml.Unmarshal(b, &root); err != nil || root.XMLName != (xml.Name{Space: ns, Local: "Envelope"}) {
			t.Errorf("%s is not a {%s}Envelope (%v):\n%s", filepath.Base(f), ns, err, b)
		}
	}
}
