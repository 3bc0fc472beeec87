package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// proc is one running callevents process with its output lines.
type proc struct {
	t       *testing.T
	name    string
	cmd     *exec.Cmd
	out     *e2eLines
	exited  chan struct{}
	waitErr error
	read    chan struct{}
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// testBinary builds the real binary once per test run.
func testBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "callevents-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = dir + "/callevents"
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// startProc starts the binary with args. Cleanup stops it with SIGTERM if it
// still runs and prints its output if the test failed.
func startProc(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	return startProgram(t, name, testBinary(t), args...)
}

// startProgram is startProc for another program, such as a wrapper that
// runs the binary in a namespace of its own.
func startProgram(t *testing.T, name, program string, args ...string) *proc {
	t.Helper()
	return startProgramIn(t, "", name, program, args...)
}

// startProgramIn is startProgram in the working directory dir ("": this
// one's).
func startProgramIn(t *testing.T, dir, name, program string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, out: newE2ELines(), exited: make(chan struct{}), read: make(chan struct{})}
	p.cmd = exec.Command(program, args...)
	p.cmd.Dir = dir
	p.cmd.Env = e2eEnv()
	pr, pw := io.Pipe()
	p.cmd.Stdout, p.cmd.Stderr = pw, pw
	go func() {
		defer close(p.read)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.out.add(sc.Text())
		}
		io.Copy(io.Discard, pr)
	}()
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		pw.Close()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			p.stop()
		}
		<-p.read
		if t.Failed() {
			lines, _ := p.out.snapshot()
			if len(lines) > 60 {
				lines = lines[len(lines)-60:]
			}
			t.Logf("%s output (last lines):\n%s", name, strings.Join(lines, "\n"))
		}
	})
	return p
}

// waitLine waits for a line matching re and returns its submatches.
func (p *proc) waitLine(re *regexp.Regexp, timeout time.Duration) []string {
	p.t.Helper()
	i, err := p.out.wait(func(lines []string) (int, bool) {
		for i, l := range lines {
			if re.MatchString(l) {
				return i, true
			}
		}
		return 0, false
	}, p.exited, timeout)
	if err != nil {
		p.t.Fatalf("%s: waiting for %q: %v", p.name, re, err)
	}
	lines, _ := p.out.snapshot()
	return re.FindStringSubmatch(lines[i])
}

// count returns how many output lines contain s.
func (p *proc) count(s string) int {
	lines, _ := p.out.snapshot()
	n := 0
	for _, l := range lines {
		if strings.Contains(l, s) {
			n++
		}
	}
	return n
}

// stop sends SIGTERM and fails the test unless the process exits cleanly
// within 20 s.
func (p *proc) stop() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		p.t.Errorf("%s: SIGTERM: %v", p.name, err)
	}
	select {
	case <-p.exited:
		if p.waitErr != nil {
			p.t.Errorf("%s did not exit cleanly after SIGTERM: %v", p.name, p.waitErr)
		}
	case <-time.After(20 * time.Second):
		p.cmd.Process.Kill()
		<-p.exited
		p.t.Errorf("%s did not exit within 20 s of SIGTERM", p.name)
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill() {
	p.cmd.Process.Kill()
	<-p.exited
}

var (
	listeningLine = regexp.MustCompile(`msg="callevents: listening" .*\baddr=(\S+)`)
	adminLine     = regexp.MustCompile(`^\{"clientId":"([A-Za-z0-9]+)","clientSecret":"([A-Za-z0-9]+)","scope":"admin"`)
)

// apiClient talks to a running server as the bootstrap admin.
type apiClient struct {
	t     *testing.T
	base  string
	token string
}

// startServe starts `serve` on db with extra flags and returns a client
// holding an admin token. On an existing database pass the admin
// credentials of the first start.
func startServe(t *testing.T, db string, admin [2]string, extra ...string) (*proc, *apiClient, [2]string) {
	t.Helper()
	args := append([]string{"serve", "--listen", "127.0.0.1:0", "--db", db, "--allow-targets", "127.0.0.0/8"}, extra...)
	p := startProc(t, "serve", args...)
	c, admin := connectServe(t, p, admin)
	return p, c, admin
}

// connectServe waits until p, a starting serve, listens, and returns a
// client holding an admin token (see startServe).
func connectServe(t *testing.T, p *proc, admin [2]string) (*apiClient, [2]string) {
	t.Helper()
	addr := p.waitLine(listeningLine, 60*time.Second)[1]
	if admin[0] == "" {
		m := p.waitLine(adminLine, time.Second)
		admin = [2]string{m[1], m[2]}
	}
	c := &apiClient{t: t, base: "http://" + addr}
	token, err := fetchToken(context.Background(), http.DefaultClient, c.base, admin[0], admin[1])
	if err != nil {
		t.Fatal(err)
	}
	c.token = token
	return c, admin
}

// addCallEvent adds a Call Event over SOAP and returns its id.
func (c *apiClient) addCallEvent(ext string, typ int, target, secret string) string {
	c.t.Helper()
	body := fmt.Sprintf(`<v1:AddPhoneCallEvent><v1:extension>%s</v1:extension><v1:type>%d</v1:type><v1:url>%s</v1:url><v1:method>1</v1:method>%s</v1:AddPhoneCallEvent>`,
		ext, typ, xmlEscape(target), map[bool]string{true: "<v1:secret>" + secret + "</v1:secret>"}[secret != ""])
	resp, err := http.Post(c.base+"/soap/PhoneCallEvents", "text/xml; charset=utf-8", strings.NewReader(benchEnvelope(c.token, body)))
	if err != nil {
		c.t.Fatal(err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`<id>([A-Za-z0-9]{30})</id>`).FindSubmatch(out)
	if resp.StatusCode != 200 || m == nil {
		c.t.Fatalf("AddPhoneCallEvent: HTTP %d\n%s", resp.StatusCode, out)
	}
	return string(m[1])
}

func xmlEscape(s string) string {
	var b bytes.Buffer
	if err := xmlEscapeText(&b, s); err != nil {
		panic(err)
	}
	return b.String()
}

// postActivities posts activities to the intake and returns the count queued.
func (c *apiClient) postActivities(acts []fireActivity) int {
	c.t.Helper()
	body, _ := json.Marshal(acts)
	req, _ := http.NewRequest(http.MethodPost, c.base+"/pbx/v1/events", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var got struct {
		Queued int `json:"queued"`
	}
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted || json.Unmarshal(out, &got) != nil {
		c.t.Fatalf("intake: HTTP %d %s", resp.StatusCode, out)
	}
	return got.Queued
}

// dialActivities returns n dial activities to ext, one call each.
func dialActivities(prefix string, from, n int, ext string) []fireActivity {
	acts := make([]fireActivity, n)
	for i := range acts {
		acts[i] = fireActivity{CallID: fmt.Sprintf("%s-%06d", prefix, from+i), Phase: "dial", CallerExtension: "0003*100", CalledExtension: ext, CallerIDNum: "100", CalledNumber: "210"}
	}
	return acts
}

// xmlEscapeText escapes s for XML text.
func xmlEscapeText(w io.Writer, s string) error {
	_, err := io.WriteString(w, strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s))
	return err
}

func regexpMust(s string) *regexp.Regexp { return regexp.MustCompile(s) }
