package main

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/callevents/callevents/store"
	"github.com/callevents/callevents/store/testdb"
)

// BenchmarkSOAP measures AddPhoneCallEvent and GetPhoneCallEvents through the
// whole stack (loopback HTTP, SOAP decoding, authentication, store, encoding)
// on the embedded SQLite and on MariaDB, next to a bare net/http handler on
// loopback measured in the same run. Each result reports vs_bare: its rate
// as a fraction of the bare handler's rate (1.0 = as fast as bare).
//
//	go test ./cmd/callevents -run '^$' -bench SOAP -benchtime 3s
//	(MariaDB: TEST_MYSQL_DSN=mysql://root@127.0.0.1:3306/)
func BenchmarkSOAP(b *testing.B) {
	var bareNsPerOp float64
	b.Run("bare", func(b *testing.B) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "text/xml; charset=utf-8")
			io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><ok/></soap:Body></soap:Envelope>`)
		}))
		defer srv.Close()
		runParallelPosts(b, srv.URL, func(int64) string { return getEnvelope("x", "") })
		bareNsPerOp = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})
	for _, backend := range []string{"sqlite", "mariadb"} {
		// An extension with 10 Call Events, listed with the default paging
		// (what most clients send), and as a full page of 10, which also
		// needs the total counted.
		for _, get := range []struct{ name, paging string }{{"GetPhoneCallEvents", ""}, {"GetPhoneCallEventsFullPage", "<v1:count>10</v1:count>"}} {
			b.Run(get.name+"/"+backend, func(b *testing.B) {
				url, token := benchServer(b, backend)
				for i := 0; i < 10; i++ {
					mustPost(b, url, addEnvelope(token, "0003*210", i))
				}
				runParallelPosts(b, url, func(int64) string { return getEnvelope(token, get.paging) })
				reportVersusBare(b, bareNsPerOp)
			})
		}
		b.Run("AddPhoneCallEvent/"+backend, func(b *testing.B) {
			url, token := benchServer(b, backend)
			runParallelPosts(b, url, func(n int64) string {
				// Spread over 1000 extensions, as a provisioning run would.
				return addEnvelope(token, fmt.Sprintf("0003*%05d", n%1000), int(n))
			})
			reportVersusBare(b, bareNsPerOp)
		})
	}
}

func reportVersusBare(b *testing.B, bareNsPerOp float64) {
	if bareNsPerOp > 0 && b.N > 0 {
		nsPerOp := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		b.ReportMetric(bareNsPerOp/nsPerOp, "vs_bare")
	}
}

// benchServer starts the real handler on loopback over a fresh database of
// the backend and returns the SOAP URL and an admin access token.
func benchServer(b *testing.B, backend string) (string, string) {
	b.Helper()
	dialect := store.DialectSQLite
	if backend == "mariadb" {
		dialect = store.DialectMySQL
	}
	db, token := openTestStore(b, testdb.DSN(b, dialect))
	// The benchmark's URLs are on an allowlisted host, so Add does not wait
	// for a DNS answer.
	log := slog.New(slog.DiscardHandler)
	m := newMetrics(db, log)
	policy, err := outboundFlags{AllowTargets: "crm.example.com"}.policy()
	if err != nil {
		b.Fatal(err)
	}
	disp, err := newDispatcher(db, deliveryFlags{}, policy, m, log)
	if err != nil {
		b.Fatal(err)
	}
	a, err := newAPI(db, apiFlags{MaxPerExtension: 1 << 30}, policy, disp, m, log)
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(a.handler)
	b.Cleanup(srv.Close)
	return srv.URL + "/soap/PhoneCallEvents", token
}

func runParallelPosts(b *testing.B, url string, body func(n int64) string) {
	b.Helper()
	var n atomic.Int64
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Post(url, "text/xml; charset=utf-8", strings.NewReader(body(n.Add(1))))
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("HTTP %d", resp.StatusCode)
				return
			}
		}
	})
}

func mustPost(b *testing.B, url, body string) {
	b.Helper()
	resp, err := http.Post(url, "text/xml; charset=utf-8", strings.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("HTTP %d\n%s", resp.StatusCode, out)
	}
}

func benchEnvelope(token, body string) string {
	return `<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:v1="urn:callevents:phonecallevents:1"><soapenv:Header><v1:userCredentials><v1:accessToken>` +
		token + `</v1:accessToken></v1:userCredentials></soapenv:Header><soapenv:Body>` + body + `</soapenv:Body></soapenv:Envelope>`
}

func getEnvelope(token, paging string) string {
	return benchEnvelope(token, `<v1:GetPhoneCallEvents><v1:extension>0003*210</v1:extension>`+paging+`</v1:GetPhoneCallEvents>`)
}

func addEnvelope(token, ext string, i int) string {
	return benchEnvelope(token, fmt.Sprintf(`<v1:AddPhoneCallEvent><v1:extension>%s</v1:extension><v1:type>%d</v1:type><v1:url>https://crm.example.com/hook/%d</v1:url><v1:note>bench</v1:note></v1:AddPhoneCallEvent>`, ext, i%5, i))
}
