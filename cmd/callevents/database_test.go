package main

// Where the data is: every command names the database it uses, with an
// SQLite file's absolute path (the default DSN is relative to the working
// directory) and a MySQL password hidden; and serve creates nothing when it
// cannot bind. These run the real binary in a folder of their own.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/callevents/callevents/store/storetest"
)

// runTool runs the binary to completion in dir and returns its exit code,
// stdout and stderr.
func runTool(t *testing.T, dir string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, testBinary(t), args...)
	cmd.Dir, cmd.Env = dir, e2eEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, stdout.String(), stderr.String()
	case errors.As(err, &exit):
		return exit.ExitCode(), stdout.String(), stderr.String()
	}
	t.Fatalf("%v: %v", args, err)
	return -1, "", ""
}

// realDir is t.TempDir() with symlinks resolved, as the process sees it.
func realDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// Ensure serve on the default DSN logs the absolute path of the file it
// created in its working directory, and names it with the bootstrap admin;
// and that `clients add --scope admin`, run in the same folder, gives a
// second admin that the running server accepts (README "Set up").
func TestServeNamesItsDatabase(t *testing.T) {
	dir := realDir(t)
	want := "sqlite:" + filepath.Join(dir, "callevents.db")
	p := startProgramIn(t, dir, "serve", testBinary(t), "serve", "--listen", "127.0.0.1:0")
	m := p.waitLine(regexp.MustCompile(`msg="callevents: listening" .*\baddr=(\S+) .*\bdb=(\S+)`), time.Minute)
	if m[2] != want {
		t.Errorf("the listening line names db=%s, want %s", m[2], want)
	}
	if p.count("created the bootstrap admin client in "+want+";") != 1 {
		t.Errorf("the bootstrap admin notice does not name %s", want)
	}

	code, stdout, stderr := runTool(t, dir, "clients", "add", "--name", "second admin", "--scope", "admin")
	if code != 0 || !strings.HasPrefix(stderr, "callevents: database "+want+"\n") {
		t.Fatalf("clients add: exit %d, stderr:\n%s", code, stderr)
	}
	var admin clientJSON
	if err := json.Unmarshal([]byte(stdout), &admin); err != nil || admin.Scope != "admin" {
		t.Fatalf("clients add printed %q (%v)", stdout, err)
	}
	if _, err := fetchToken(t.Context(), http.DefaultClient, "http://"+m[1], admin.ClientID, admin.ClientSecret); err != nil {
		t.Errorf("the second admin gets no token from the running server: %v", err)
	}
}

// Ensure a serve that cannot bind its address fails with a message naming
// it, and leaves nothing behind: no database in its folder, no admin secret.
func TestServeBindFailureCreatesNothing(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	dir := realDir(t)
	code, stdout, stderr := runTool(t, dir, "serve", "--listen", taken.Addr().String())
	if code != 1 || !strings.Contains(stderr, "listen on "+taken.Addr().String()) || !strings.Contains(stderr, "address already in use") {
		t.Errorf("serve on a taken address: exit %d, stderr:\n%s", code, stderr)
	}
	if strings.Contains(stdout+stderr, "clientSecret") {
		t.Errorf("serve printed an admin secret although it could not bind:\n%s", stderr)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("serve left %d files behind in its folder, e.g. %s", len(entries), entries[0].Name())
	}
}

// Ensure migrate and clients say on stderr which SQLite file they use, by
// its absolute path, and keep stdout for their JSON.
func TestToolsNameTheirSQLiteDatabase(t *testing.T) {
	dir := realDir(t)
	for _, tc := range []struct {
		args []string
		file string
	}{
		{[]string{"migrate"}, "callevents.db"},
		{[]string{"clients", "list"}, "callevents.db"},
		{[]string{"migrate", "--db", "sqlite:data.db"}, "data.db"},
		{[]string{"clients", "list", "--db", "other.db"}, "other.db"},
	} {
		code, stdout, stderr := runTool(t, dir, tc.args...)
		want := "callevents: database sqlite:" + filepath.Join(dir, tc.file) + "\n"
		if code != 0 || !strings.HasPrefix(stderr, want) || !json.Valid([]byte(stdout)) {
			t.Errorf("%v: exit %d, want stderr to start with %q:\n%s\nstdout %q", tc.args, code, want, stderr, stdout)
		}
	}
}

// Ensure migrate and clients name a MySQL database with its password
// hidden, also when the password is wrong and the connection fails.
func TestToolsNameTheirMySQLDatabase(t *testing.T) {
	dsn := storetest.MySQLTestDSN(t)
	dir := t.TempDir()
	code, _, stderr := runTool(t, dir, "migrate", "--db", dsn)
	if code != 0 || !strings.HasPrefix(stderr, "callevents: database "+dsn+"\n") {
		t.Errorf("migrate on MySQL: exit %d:\n%s", code, stderr)
	}
	withPassword := strings.Replace(dsn, "://root@", "://root:s3cr3t-pw@", 1)
	if withPassword == dsn {
		t.Skip("TEST_MYSQL_DSN does not connect as root without a password")
	}
	code, stdout, stderr := runTool(t, dir, "clients", "list", "--db", withPassword)
	hidden := strings.Replace(dsn, "://root@", "://root:xxxxx@", 1)
	if code != 1 || !strings.HasPrefix(stderr, "callevents: database "+hidden+"\n") || strings.Contains(stdout+stderr, "s3cr3t-pw") {
		t.Errorf("clients list with a wrong password: exit %d, want 1, the DSN with the password hidden, and no password:\n%s", code, stderr)
	}
}
