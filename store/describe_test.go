package store

import (
	"os"
	"path/filepath"
	"testing"
)

// Ensure Describe gives an SQLite file's absolute path and hides a MySQL
// password, even in a DSN that does not parse.
func TestDescribe(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for dsn, want := range map[string]string{
		"sqlite:callevents.db":                            "sqlite:" + filepath.Join(wd, "callevents.db"),
		"data/c.db":                                       "sqlite:" + filepath.Join(wd, "data", "c.db"),
		"sqlite:///var/lib/callevents/c.db?_x=1":          "sqlite:/var/lib/callevents/c.db",
		"sqlite::memory:":                                 "sqlite::memory:",
		"mysql://root@127.0.0.1:3306/callevents":          "mysql://root@127.0.0.1:3306/callevents",
		"mysql://app:s3cr3t@db:3306/calls?tls=true":       "mysql://app:xxxxx@db:3306/calls?tls=true",
		"mysql://app:Zq9:xK7/Yw@rd@db.example:3307/calls": "mysql://xxxxx@db.example:3307/calls",
	} {
		if got := Describe(dsn); got != want {
			t.Errorf("Describe(%q) = %q, want %q", dsn, got, want)
		}
	}
}
