package store

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestMySQLConfig(t *testing.T) {
	cfg, err := mysqlConfig("mysql://app:p%40ss%3Aw%2Frd@db.example:3307/calls?readTimeout=5s&loc=Local&tls=skip-verify")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.User != "app" || cfg.Passwd != "p@ss:w/rd" || cfg.Net != "tcp" || cfg.Addr != "db.example:3307" || cfg.DBName != "calls" {
		t.Fatalf("got user %q password %q net %q addr %q db %q", cfg.User, cfg.Passwd, cfg.Net, cfg.Addr, cfg.DBName)
	}
	// Defaults apply; the DSN's own parameters win.
	if !cfg.ParseTime || !cfg.InterpolateParams || cfg.Timeout != 5*time.Second || cfg.WriteTimeout != 30*time.Second {
		t.Fatalf("defaults missing: %+v", cfg)
	}
	if cfg.ReadTimeout != 5*time.Second || cfg.Loc != time.Local || cfg.TLSConfig != "skip-verify" {
		t.Fatalf("the DSN's parameters lost: readTimeout %v loc %v tls %q", cfg.ReadTimeout, cfg.Loc, cfg.TLSConfig)
	}
	if !strings.Contains(cfg.FormatDSN(), "charset=utf8mb4") {
		t.Fatalf("charset missing: %s", cfg.FormatDSN())
	}

	cfg, err = mysqlConfig("mysql://root@127.0.0.1/x")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.User != "root" || cfg.Passwd != "" || cfg.Addr != "127.0.0.1:3306" || cfg.Loc != time.UTC {
		t.Fatalf("got user %q password %q addr %q loc %v", cfg.User, cfg.Passwd, cfg.Addr, cfg.Loc)
	}

	_, err = mysqlConfig("mysql://root:secret-pw@127.0.0.1:bad port/x")
	if err == nil || strings.Contains(err.Error(), "secret-pw") {
		t.Fatalf("a malformed DSN gave %v: want an error without the password", err)
	}
}

func TestSQLiteDSN(t *testing.T) {
	for dsn, wantPath := range map[string]string{
		"sqlite:callevents.db":         "callevents.db",
		"callevents.db":                "callevents.db",
		"/var/lib/callevents/c.db":     "/var/lib/callevents/c.db",
		"sqlite:///var/lib/c.db":       "/var/lib/c.db",
		"sqlite:c.db?_txlock=deferred": "c.db",
	} {
		got, err := sqliteDSN(dsn)
		if err != nil {
			t.Fatalf("sqliteDSN(%q): %v", dsn, err)
		}
		path, rawQuery, _ := strings.Cut(got, "?")
		query, err := url.ParseQuery(rawQuery)
		if err != nil {
			t.Fatal(err)
		}
		if path != wantPath || query.Get("_txlock") != "immediate" || len(query["_txlock"]) != 1 || len(query["_pragma"]) != 5 {
			t.Fatalf("sqliteDSN(%q) = %q", dsn, got)
		}
	}
	// A pragma the DSN sets itself is not set twice.
	got, err := sqliteDSN("sqlite:c.db?_pragma=busy_timeout(100)&_pragma=cache_size(-8000)")
	if err != nil {
		t.Fatal(err)
	}
	query, _ := url.ParseQuery(strings.SplitN(got, "?", 2)[1])
	if strings.Count(strings.Join(query["_pragma"], " "), "busy_timeout") != 1 || len(query["_pragma"]) != 6 {
		t.Fatalf("got %q", got)
	}
}

func TestMySQLConfigHidesPasswordOfMalformedDSN(t *testing.T) {
	_, err := mysqlConfig("mysql://app:Zq9:xK7/Yw@rd@db.example:3307/calls")
	if err == nil || strings.Contains(err.Error(), "Zq9") || strings.Contains(err.Error(), "xK7") || strings.Contains(err.Error(), "Yw") {
		t.Fatalf("got %v: want an error without any part of the password", err)
	}
}
