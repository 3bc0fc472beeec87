package main

import (
	"database/sql"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/callevents/callevents"
	"github.com/callevents/callevents/dispatcher/dispatchertest"
)

// privateMariaDB is a MariaDB server of one test's own: its own data
// directory, socket and port, so that stopping it touches nothing shared
// (never the server of TEST_MYSQL_DSN).
type privateMariaDB struct {
	t       *testing.T
	server  string
	args    []string
	port    int
	logFile string
	cmd     *exec.Cmd
	exited  chan struct{}
}

// startPrivateMariaDB initialises a data directory with a root user
// without password, starts mariadbd on a free loopback port and creates
// the database "callevents". Without MariaDB installed the test skips
// (fails under CI=true).
func startPrivateMariaDB(t *testing.T) *privateMariaDB {
	t.Helper()
	server := ""
	for _, name := range []string{"mariadbd", "/usr/sbin/mariadbd"} {
		if p, err := exec.LookPath(name); err == nil {
			server = p
			break
		}
	}
	install, err := exec.LookPath("mariadb-install-db")
	if server == "" || err != nil {
		requireFaultTool(t, "mariadbd and mariadb-install-db are not installed (apt-get install mariadb-server)")
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	var user []string
	if os.Geteuid() == 0 {
		user = []string{"--user=root"} // mariadbd refuses to run as root unless told
	}
	args := append([]string{"--no-defaults", "--datadir=" + data, "--auth-root-authentication-method=normal", "--skip-test-db"}, user...)
	if out, err := exec.Command(install, args...).CombinedOutput(); err != nil {
		t.Fatalf("mariadb-install-db: %v\n%s", err, out)
	}
	m := &privateMariaDB{t: t, server: server, port: freePort(t), logFile: filepath.Join(dir, "error.log")}
	m.args = append([]string{
		"--no-defaults", "--datadir=" + data, "--socket=" + filepath.Join(dir, "mysqld.sock"),
		"--pid-file=" + filepath.Join(dir, "mysqld.pid"), "--port=" + strconv.Itoa(m.port), "--bind-address=127.0.0.1",
		"--log-error=" + m.logFile, "--innodb-buffer-pool-size=32M",
	}, user...)
	t.Cleanup(func() {
		m.stop()
		if t.Failed() {
			log, _ := os.ReadFile(m.logFile)
			t.Logf("mariadbd error log:\n%s", log)
		}
	})
	m.start()
	db := m.admin()
	defer db.Close()
	if _, err := db.Exec("CREATE DATABASE callevents CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"); err != nil {
		t.Fatal(err)
	}
	return m
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// dsn is the server's database for callevents.
func (m *privateMariaDB) dsn() string {
	return fmt.Sprintf("mysql://root@127.0.0.1:%d/callevents", m.port)
}

func (m *privateMariaDB) admin() *sql.DB {
	cfg := gomysql.NewConfig()
	cfg.User, cfg.Net, cfg.Addr = "root", "tcp", "127.0.0.1:"+strconv.Itoa(m.port)
	connector, err := gomysql.NewConnector(cfg)
	if err != nil {
		m.t.Fatal(err)
	}
	return sql.OpenDB(connector)
}

// start starts mariadbd on the data directory and waits until it answers.
func (m *privateMariaDB) start() {
	m.t.Helper()
	m.cmd = exec.Command(m.server, m.args...)
	if err := m.cmd.Start(); err != nil {
		m.t.Fatalf("start mariadbd: %v", err)
	}
	m.exited = make(chan struct{})
	go func(cmd *exec.Cmd, exited chan struct{}) {
		cmd.Wait()
		close(exited)
	}(m.cmd, m.exited)
	db := m.admin()
	defer db.Close()
	deadline := time.Now().Add(60 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		err := db.Ping()
		if err == nil {
			return
		}
		select {
		case <-m.exited:
			m.t.Fatalf("mariadbd exited at start: %v", m.cmd.ProcessState)
		default:
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("mariadbd does not answer 60 s after start: %v", err)
		}
		<-tick.C
	}
}

// stop shuts the server down as an operator would (SIGTERM) and waits
// until it has exited.
func (m *privateMariaDB) stop() {
	if m.cmd == nil {
		return
	}
	select {
	case <-m.exited:
		return
	default:
	}
	m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.exited:
	case <-time.After(60 * time.Second):
		m.cmd.Process.Kill()
		<-m.exited
		m.t.Errorf("mariadbd did not stop within 60 s of SIGTERM")
	}
}

// Ensure a MariaDB outage of 10 s under steady intake load costs no
// acknowledged call and no restart of callevents: while the database is
// away the intake answers every request 503 service_unavailable (JSON,
// Retry-After), never 500, /readyz says 503, the dispatcher logs the
// outage once rather than per poll; once MariaDB is back on the same data
// directory the intake answers 202 again, and every call acknowledged with
// 202, before, during or after, reaches the receiver exactly once.
func TestFaultMariaDBStopped(t *testing.T) {
	if testing.Short() {
		t.Skip("a 10 s database outage: not in -short")
	}
	begin := time.Now()
	db := startPrivateMariaDB(t)
	rcv := newReceiver(t)
	// A lease longer than the outage: outcomes wait for the database
	// instead of being given up and sent again.
	serve, api, _ := startServe(t, db.dsn(), [2]string{}, "--lease", "20s", "--delivery-timeout", "5s", "--rescue-interval", "1s")
	api.addCallEvent("0003*210", int(callevents.DialIn), rcv.URL+"/in", "")
	t.Logf("MariaDB and serve up after %v", time.Since(begin).Round(time.Millisecond))

	load := startIntakeLoad(t, api, "outage", "0003*210", 4, 5, "", 20*time.Millisecond)
	dispatchertest.WaitWithin(t, 10*time.Second, "calls acknowledged before the outage", func() bool { ok, _, _, _ := load.result(); return len(ok) >= 200 })

	stopAt := time.Now()
	db.stop()
	t.Logf("MariaDB stopped in %v", time.Since(stopAt).Round(time.Millisecond))
	down := time.Now()
	dispatchertest.WaitWithin(t, 10*time.Second, "503 answers during the outage", func() bool { _, _, busy, _ := load.result(); return busy > 0 })
	resp, err := http.Get(api.base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz during the outage: HTTP %d, want 503", resp.StatusCode)
	}
	dispatchertest.WaitWithin(t, 15*time.Second, "the end of a 10 s outage", func() bool { return time.Since(down) >= 10*time.Second })
	okDuring, _, busy, message := load.result()
	if busy == 0 {
		t.Fatalf("no 503 during the outage")
	}
	t.Logf("%d calls acknowledged, %d requests answered 503 %q so far", len(okDuring), busy, message)

	restart := time.Now()
	db.start()
	t.Logf("MariaDB restarted in %v", time.Since(restart).Round(time.Millisecond))
	dispatchertest.WaitWithin(t, 20*time.Second, "202 answers after the restart", func() bool { _, last, _, _ := load.result(); return last.After(restart) })
	back := time.Now()
	dispatchertest.WaitWithin(t, 5*time.Second, "load after the restart", func() bool { return time.Since(back) >= 2*time.Second })
	load.stop()
	ok, _, busy, _ := load.result()
	t.Logf("%d calls acknowledged in all, %d requests answered 503", len(ok), busy)

	delivering := time.Now()
	rcv.waitEvery(t, ok, 40*time.Second)
	t.Logf("every acknowledged call delivered %v after the load stopped; %v in all", time.Since(delivering).Round(time.Millisecond), time.Since(begin).Round(time.Millisecond))

	select {
	case <-serve.exited:
		t.Fatalf("serve exited during the outage: %v", serve.waitErr)
	default:
	}
	if n := serve.count(`msg="service: internal error"`); n != 0 {
		t.Errorf("serve logged %d internal errors, want 503s only", n)
	}
	// The claim loop backs off: one line when the outage starts, one when
	// it ends, not one per poll.
	if n := serve.count(`msg="dispatcher: cannot claim deliveries; retrying"`); n < 1 || n > 2 {
		t.Errorf("the claim loop logged the outage %d times, want once", n)
	}
	if n := serve.count(`level=ERROR msg="dispatcher:`); n > 6 {
		t.Errorf("the dispatcher logged %d errors during one outage:\n%s", n, strings.Join(serveLines(serve, "level=ERROR"), "\n"))
	}
	serve.stop()
}

// serveLines returns p's output lines that contain s.
func serveLines(p *proc, s string) []string {
	lines, _ := p.out.snapshot()
	var out []string
	for _, l := range lines {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return out
}
