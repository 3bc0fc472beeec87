package storetest

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
)

// mysqlUnset is the message for a missing TEST_MYSQL_DSN.
const mysqlUnset = "TEST_MYSQL_DSN is unset: set it to mysql://root@127.0.0.1:3306/ to run the MariaDB tests"

// MySQLTestDSN returns the DSN of a fresh, empty MySQL/MariaDB database
// for one test, dropped again by t.Cleanup. The server comes from the
// environment variable TEST_MYSQL_DSN, a DSN without a database such as
// mysql://root@127.0.0.1:3306/ (query parameters are kept). When it is
// unset the test is skipped, except under CI=true, where it fails: CI must
// not pass by skipping the MySQL half of the suite.
func MySQLTestDSN(t testing.TB) string {
	t.Helper()
	server := os.Getenv("TEST_MYSQL_DSN")
	if server == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal(mysqlUnset)
		}
		t.Skip(mysqlUnset)
	}
	u, err := url.Parse(server)
	if err != nil || u.Scheme != "mysql" || u.Hostname() == "" {
		t.Fatalf("TEST_MYSQL_DSN must look like mysql://root@127.0.0.1:3306/, got %q", server)
	}
	var suffix [6]byte
	rand.Read(suffix[:])
	name := "callevents_test_" + hex.EncodeToString(suffix[:])

	cfg := mysql.NewConfig()
	cfg.User = u.User.Username()
	cfg.Passwd, _ = u.User.Password()
	cfg.Net = "tcp"
	port := u.Port()
	if port == "" {
		port = "3306"
	}
	cfg.Addr = net.JoinHostPort(u.Hostname(), port)
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatalf("TEST_MYSQL_DSN: %v", err)
	}
	admin := sql.OpenDB(connector)
	if _, err := admin.Exec("CREATE DATABASE `" + name + "` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"); err != nil {
		admin.Close()
		t.Fatalf("creating test database on %s: %v", cfg.Addr, err)
	}
	t.Cleanup(func() {
		defer admin.Close()
		if _, err := admin.Exec("DROP DATABASE IF EXISTS `" + name + "`"); err != nil {
			t.Errorf("dropping test database %s: %v", name, err)
		}
	})
	u.Path = "/" + name
	u.RawPath = ""
	return strings.TrimSuffix(u.String(), "?")
}
