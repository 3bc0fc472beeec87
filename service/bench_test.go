package service_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/callevents/callevents/service"
)

// BenchmarkGetPhoneCallEvents measures GetPhoneCallEvents over loopback
// with an access token and with username/password, in one run; the password
// result reports vs_token, its rate as a fraction of the token's (issue 14
// asks for at least 0.3).
//
//	go test ./service -run '^$' -bench GetPhoneCallEvents -benchtime 2s
func BenchmarkGetPhoneCallEvents(b *testing.B) {
	bundle := setup(b, bundleOptions{})
	url := bundle.srv.URL + service.PathSOAP
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.Cleanup(client.CloseIdleConnections)
	get := `<v1:GetPhoneCallEvents><v1:extension>0003*210</v1:extension></v1:GetPhoneCallEvents>`
	for i := range 10 {
		if err := benchPost(client, url, envelope11(tokenHeader(bundle.tokens["admin"]),
			fmt.Sprintf(`<v1:AddPhoneCallEvent><v1:extension>0003*210</v1:extension><v1:type>%d</v1:type><v1:url>https://crm.example.com/hook/%d</v1:url></v1:AddPhoneCallEvent>`, i%5, i))); err != nil {
			b.Fatal(err)
		}
	}
	id, secret, _ := strings.Cut(bundle.secret["admin"], ":")
	var tokenNsPerOp float64
	for _, tc := range []struct{ name, header string }{
		{"Token", tokenHeader(bundle.tokens["admin"])},
		{"Password", `<v1:userCredentials><v1:username>` + id + `</v1:username><v1:password>` + secret + `</v1:password></v1:userCredentials>`},
	} {
		body := envelope11(tc.header, get)
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := benchPost(client, url, body); err != nil {
						b.Error(err) // not Fatal: this is not the benchmark's goroutine
						return
					}
				}
			})
			nsPerOp := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			b.ReportMetric(1e9/nsPerOp, "ops/s")
			if tc.name == "Token" {
				tokenNsPerOp = nsPerOp
			} else if tokenNsPerOp > 0 {
				b.ReportMetric(tokenNsPerOp/nsPerOp, "vs_token")
			}
		})
	}
}

func benchPost(client *http.Client, url, body string) error {
	resp, err := client.Post(url, "text/xml; charset=utf-8", strings.NewReader(body))
	if err != nil {
		return err
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || strings.Contains(string(out), "Fault>") {
		return fmt.Errorf("HTTP %d\n%s", resp.StatusCode, out)
	}
	return nil
}
