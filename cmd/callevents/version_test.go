package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/callevents/callevents"
)

// Ensure the version and User-Agent read the module version and the commit
// from the build information, with +dirty for a modified tree, and say
// "devel" and "unknown commit" for what was not recorded.
func TestBuildVersionOf(t *testing.T) {
	vcs := func(modified string) []debug.BuildSetting {
		return []debug.BuildSetting{
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "c5ff64ffa2ab21a4e2d3f6482e0c8d46ff09f49b"},
			{Key: "vcs.time", Value: "2026-12-02T13:54:00Z"},
			{Key: "vcs.modified", Value: modified},
		}
	}
	for _, tc := range []struct {
		name        string
		info        *debug.BuildInfo
		version, ua string
	}{
		{"tagged", &debug.BuildInfo{Main: debug.Module{Version: "v0.3.0"}, Settings: vcs("false")},
			"v0.3.0 (c5ff64f, 2026-12-02T13:54:00Z)", "callevents/v0.3.0 (c5ff64f)"},
		{"pseudo-version, modified", &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261202135400-c5ff64ffa2ab+dirty"}, Settings: vcs("true")},
			"v0.0.0-20261202135400-c5ff64ffa2ab+dirty (c5ff64f+dirty, 2026-12-02T13:54:00Z)", "callevents/v0.0.0-20261202135400-c5ff64ffa2ab+dirty (c5ff64f+dirty)"},
		{"devel with a commit", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs("false")},
			"devel (c5ff64f, 2026-12-02T13:54:00Z)", "callevents/devel (c5ff64f)"},
		{"go run", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}},
			"devel (unknown commit)", "callevents/devel (unknown commit)"},
		{"go test", &debug.BuildInfo{}, "devel (unknown commit)", "callevents/devel (unknown commit)"},
		{"no build information", nil, "devel (unknown commit)", "callevents/devel (unknown commit)"},
	} {
		v := buildVersionOf(tc.info)
		if got := v.String(); got != tc.version {
			t.Errorf("%s: version %q, want %q", tc.name, got, tc.version)
		}
		if got := v.UserAgent(); got != tc.ua {
			t.Errorf("%s: User-Agent %q, want %q", tc.name, got, tc.ua)
		}
	}
}

// gitCheckout copies this module's files (tracked and untracked, as git
// sees them) into a new git repository, commits them at a fixed time and
// tags the commit; it returns the folder and the short commit hash.
func gitCheckout(t *testing.T, tag string) (string, string) {
	t.Helper()
	e2eNeed(t, "git", e2eProbe("git", "--version"))
	root := e2eRepoRoot(t)
	dir := t.TempDir()
	git := func(dir string, args ...string) string {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "user.name=test", "-c", "user.email=test@example.com", "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false"}, args...)...)
		cmd.Dir = dir
		cmd.Env = append(gitFreeEnv(), "GIT_AUTHOR_DATE=2026-01-02T03:04:05Z", "GIT_COMMITTER_DATE=2026-01-02T03:04:05Z")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("git %v: %v", args, err)
		}
		return strings.TrimSpace(string(out))
	}
	for _, f := range strings.Split(git(root, "ls-files", "-z", "--cached", "--others", "--exclude-standard"), "\x00") {
		data, err := os.ReadFile(filepath.Join(root, f))
		if f == "" || os.IsNotExist(err) {
			continue // deleted in the working tree
		} else if err != nil {
			t.Fatal(err)
		}
		info, err := os.Stat(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), data, info.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
	git(dir, "init", "-q")
	git(dir, "add", "-A")
	git(dir, "commit", "-q", "-m", "test")
	git(dir, "tag", tag)
	return dir, git(dir, "rev-parse", "--short=7", "HEAD")
}

// gitFreeEnv is this process's environment without GIT_* variables, which
// would point git at another repository.
func gitFreeEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GIT_") {
			env = append(env, kv)
		}
	}
	return env
}

// buildIn builds ./cmd/callevents in dir as a user would in a checkout, with
// VCS stamping on (this machine's GOFLAGS may turn it off).
func buildIn(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "callevents")
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-buildvcs=true", "-trimpath", "-o", bin, "./cmd/callevents")
	cmd.Dir, cmd.Env = dir, gitFreeEnv()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build in a git checkout: %v\n%s", err, out)
	}
	return bin
}

// Ensure a binary built with `go build` in a git checkout prints the tag
// and the commit, then +dirty once the tree has a change, and that its
// deliveries' User-Agent carries the same.
func TestVersionOfABuildInAGitCheckout(t *testing.T) {
	dir, rev := gitCheckout(t, "v0.9.1")
	version := func(bin string) string {
		out, err := exec.Command(bin, "version").Output()
		if err != nil {
			t.Fatalf("%s version: %v", bin, err)
		}
		return string(out)
	}
	if got, want := version(buildIn(t, dir)), "callevents v0.9.1 ("+rev+", 2026-01-02T03:04:05Z)\n"; got != want {
		t.Errorf("a clean, tagged checkout: %q, want %q", got, want)
	}

	if err := os.WriteFile(filepath.Join(dir, "local-change.txt"), []byte("not committed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := buildIn(t, dir)
	if got, want := version(bin), "callevents v0.9.1+dirty ("+rev+"+dirty, 2026-01-02T03:04:05Z)\n"; got != want {
		t.Errorf("a checkout with a change: %q, want %q", got, want)
	}

	// The dirty binary's deliveries.
	rcv := newReceiver(t)
	p := startProgram(t, "serve", bin, "serve", "--listen", "127.0.0.1:0", "--db", "sqlite:"+filepath.Join(t.TempDir(), "ua.db"), "--allow-targets", "127.0.0.0/8")
	api, _ := connectServe(t, p, [2]string{})
	if v := p.waitLine(regexpMust(`msg="callevents: listening" .*\bversion="([^"]+)"`), time.Second)[1]; v != "v0.9.1+dirty ("+rev+"+dirty, 2026-01-02T03:04:05Z)" {
		t.Errorf("the listening line says version=%q", v)
	}
	api.addCallEvent("0003*211", int(callevents.DialIn), rcv.URL+"/in", "")
	api.postActivities(dialActivities("ua", 0, 1, "0003*211"))
	rcv.waitDistinct(t, 1, 30*time.Second)
	ua := rcv.last(t).Header.Get("User-Agent")
	if want := "callevents/v0.9.1+dirty (" + rev + "+dirty)"; ua != want {
		t.Errorf("User-Agent %q, want %q", ua, want)
	}
}

// Ensure `callevents version` prints one line: "callevents" and the build's
// version.
func TestVersionCommand(t *testing.T) {
	var out bytes.Buffer
	if code := run(context.Background(), []string{"version"}, &out, io.Discard); code != 0 {
		t.Fatalf("version exited %d", code)
	}
	if got, want := out.String(), "callevents "+build.String()+"\n"; got != want {
		t.Errorf("version printed %q, want %q", got, want)
	}
}
