package main

import "runtime/debug"

// buildVersion is what the Go toolchain recorded about this binary: the
// main module's version and the VCS commit it was built from. `go build`
// in a git checkout records both (Go 1.24+ derives the module version from
// the tag on the commit: v0.3.0, or a pseudo-version such as
// v0.0.0-20261202135400-c5ff64ffa2ab, with +dirty for uncommitted changes);
// `go run`, `go test`, -buildvcs=false and builds outside a checkout record
// no commit, and the version is then "devel".
type buildVersion struct {
	Module   string // "devel" when unknown
	Revision string // abbreviated commit hash; "" when unknown
	Time     string // commit time, RFC 3339 in UTC
	Modified bool   // the working tree had uncommitted changes
}

// build is this binary's version, read once: the build information does not
// change while it runs.
var build = readBuildVersion()

// readBuildVersion reads this binary's build information.
func readBuildVersion() buildVersion {
	info, _ := debug.ReadBuildInfo()
	return buildVersionOf(info)
}

// buildVersionOf extracts a buildVersion from info (nil: none recorded).
func buildVersionOf(info *debug.BuildInfo) buildVersion {
	v := buildVersion{Module: "devel"}
	if info == nil {
		return v
	}
	if m := info.Main.Version; m != "" && m != "(devel)" {
		v.Module = m
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			// As `git log --oneline` shows it; enough to find the commit.
			v.Revision = s.Value[:min(len(s.Value), 7)]
		case "vcs.time":
			v.Time = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

// revision is the commit with +dirty when the tree had changes, or
// "unknown commit".
func (v buildVersion) revision() string {
	switch {
	case v.Revision == "":
		return "unknown commit"
	case v.Modified:
		return v.Revision + "+dirty"
	}
	return v.Revision
}

// String is what `callevents version` prints after "callevents ":
// "v0.3.0 (abc1234, 2026-12-02T13:54:00Z)", "devel (unknown commit)".
func (v buildVersion) String() string {
	s := v.Module + " (" + v.revision()
	if v.Time != "" {
		s += ", " + v.Time
	}
	return s + ")"
}

// UserAgent is the User-Agent of deliveries, product/version (comment) as
// RFC 9110 has it: "callevents/v0.3.0 (abc1234)".
func (v buildVersion) UserAgent() string {
	return "callevents/" + v.Module + " (" + v.revision() + ")"
}
