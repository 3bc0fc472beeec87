package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/callevents/callevents"
	"github.com/callevents/callevents/dispatcher/dispatchertest"
)

// requireMountNamespace skips (fails under CI=true) unless the test may
// mount file systems in a private mount namespace: root, with unshare and
// nsenter, and a kernel or container that allows it.
func requireMountNamespace(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		requireFaultTool(t, "mounting a small or read-only file system needs root")
	}
	for _, tool := range []string{"unshare", "nsenter", "mount"} {
		if _, err := exec.LookPath(tool); err != nil {
			requireFaultTool(t, tool+" is not installed (util-linux)")
		}
	}
	if out, err := exec.Command("unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt").CombinedOutput(); err != nil {
		requireFaultTool(t, "cannot mount in a private mount namespace here: "+strings.TrimSpace(string(out)))
	}
}

// startInNamespace runs the binary with args in a private mount namespace
// (unshare -m, so the mounts are seen by it alone and vanish with it),
// after setup, a shell command that may use $dir. The binary is exec'd,
// so the process is the binary itself: SIGTERM reaches it, and nsenter -t
// its pid enters its namespace.
func startInNamespace(t *testing.T, name, dir, setup string, args ...string) *proc {
	t.Helper()
	script := `dir=$1 bin=$2 && shift 2 && ` + setup + ` && exec "$bin" "$@"`
	return startProgram(t, name, "unshare", append([]string{"-m", "sh", "-c", script, "fault", dir, testBinary(t)}, args...)...)
}

// Ensure a full disk under SQLite loses nothing acknowledged: the intake
// answers 503 "the database is full" (JSON, Retry-After), never 500, while
// the tmpfs under the database is full; once it has room again, without a
// restart, the intake answers 202 again and every call acknowledged with
// 202 reaches the receiver exactly once.
func TestFaultSQLiteDiskFull(t *testing.T) {
	requireMountNamespace(t)
	begin := time.Now()
	dir := t.TempDir()
	rcv := newReceiver(t)
	serve := startInNamespace(t, "serve", dir, `mount -t tmpfs -o size=1m tmpfs "$dir"`,
		"serve", "--listen", "127.0.0.1:0", "--db", "sqlite:"+filepath.Join(dir, "x.db"), "--allow-targets", "127.0.0.0/8",
		"--lease", "15s", "--delivery-timeout", "5s", "--rescue-interval", "1s")
	api, _ := connectServe(t, serve, [2]string{})
	api.addCallEvent("0003*210", int(callevents.DialIn), rcv.URL+"/in", "")

	// Long names fill the megabyte in a few seconds.
	load := startIntakeLoad(t, api, "full", "0003*210", 2, 20, strings.Repeat("n", callevents.MaxActivityFieldLength), 10*time.Millisecond)
	dispatchertest.WaitWithin(t, 60*time.Second, "503 once the disk is full", func() bool { _, _, busy, _ := load.result(); return busy > 0 })
	full := time.Now()
	t.Logf("the disk was full after %v", full.Sub(begin).Round(time.Millisecond))
	// On a full disk every answer is still a 202 or the 503 (checked by
	// the load for each).
	dispatchertest.WaitWithin(t, 5*time.Second, "load on the full disk", func() bool { return time.Since(full) >= 2*time.Second })
	ok, _, busy, message := load.result()
	t.Logf("%d calls acknowledged, %d requests answered 503 %q", len(ok), busy, message)
	if message != "The database is full or read-only and cannot store the request; retry later." {
		t.Errorf("503 message %q, want one saying the database is full", message)
	}

	grow := time.Now()
	out, err := exec.Command("nsenter", "-t", strconv.Itoa(serve.cmd.Process.Pid), "-m", "mount", "-o", "remount,size=64m", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("growing the tmpfs: %v\n%s", err, out)
	}
	dispatchertest.WaitWithin(t, 30*time.Second, "202 once the disk has room", func() bool { _, last, _, _ := load.result(); return last.After(grow) })
	t.Logf("202 again %v after the disk had room", time.Since(grow).Round(time.Millisecond))
	load.stop()
	ok, _, busy, _ = load.result()
	t.Logf("%d calls acknowledged in all, %d requests answered 503", len(ok), busy)

	rcv.waitEvery(t, ok, 40*time.Second)
	if n := serve.count(`msg="service: internal error"`); n != 0 {
		t.Errorf("serve logged %d internal errors, want 503s only", n)
	}
	serve.stop()
	t.Logf("%v in all", time.Since(begin).Round(time.Millisecond))
}

// Ensure serve on a read-only SQLite database, or in a read-only
// directory, exits at once, non-zero, with a message that names the
// problem and the file, instead of answering every request with an error.
func TestFaultSQLiteReadOnly(t *testing.T) {
	requireMountNamespace(t)
	for _, tc := range []struct {
		name, setup, want string
	}{
		{"database", `mount -t tmpfs tmpfs "$dir" && "$bin" migrate --db "sqlite:$dir/x.db" && mount -o remount,ro "$dir"`, "is read-only"},
		{"directory", `mount -t tmpfs -o ro tmpfs "$dir"`, "is in a read-only directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(dir, "x.db")
			serve := startInNamespace(t, "serve", dir, tc.setup, "serve", "--listen", "127.0.0.1:0", "--db", "sqlite:"+file)
			select {
			case <-serve.exited:
			case <-time.After(30 * time.Second):
				t.Fatal("serve still runs 30 s after starting on a read-only database")
			}
			<-serve.read
			var exit *exec.ExitError
			if !errors.As(serve.waitErr, &exit) || exit.ExitCode() != 1 {
				t.Errorf("serve exited with %v, want exit status 1", serve.waitErr)
			}
			want := "callevents: store: the SQLite database " + file + " " + tc.want
			lines, _ := serve.out.snapshot()
			if !strings.Contains(strings.Join(lines, "\n"), want) {
				t.Errorf("the output lacks %q:\n%s", want, strings.Join(lines, "\n"))
			}
			if serve.count(`msg="callevents: listening"`) != 0 {
				t.Error("serve listened on a read-only database")
			}
		})
	}
}
