package service_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/callevents/callevents/service"
)

// Ensure the token endpoint issues working Bearer tokens for the client
// credentials grant, on both paths, and refuses a wrong client with 401.
func TestTokenEndpoint(t *testing.T) {
	b := setup(t, bundleOptions{})
	idSecret := strings.SplitN(b.secret["org:0003"], ":", 2)
	for _, path := range []string{service.PathToken, service.PathTokenAlias} {
		resp, err := http.PostForm(b.srv.URL+path, url.Values{"grant_type": {"client_credentials"}, "client_id": {idSecret[0]}, "client_secret": {idSecret[1]}, "type": {"unifiedapi"}})
		if err != nil {
			t.Fatal(err)
		}
		var got struct {
			AccessToken string `json:"access_token"`
			TokenType   string `json:"token_type"`
			ExpiresIn   int    `json:"expires_in"`
		}
		json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		if resp.StatusCode != 200 || got.AccessToken == "" || got.TokenType != "Bearer" || got.ExpiresIn != 7200 {
			t.Fatalf("%s: HTTP %d %+v", path, resp.StatusCode, got)
		}
		status, body := b.post(t, service.PathSOAP, "text/xml", envelope11(tokenHeader(got.AccessToken), `<v1:GetPhoneCallEvents><v1:extension>0003*210</v1:extension></v1:GetPhoneCallEvents>`))
		if status != 200 {
			t.Errorf("the issued token does not work: HTTP %d\n%s", status, body)
		}
	}
	for name, form := range map[string]url.Values{
		"wrong-secret":   {"grant_type": {"client_credentials"}, "client_id": {idSecret[0]}, "client_secret": {"wrong"}},
		"unknown-client": {"grant_type": {"client_credentials"}, "client_id": {"nobody"}, "client_secret": {idSecret[1]}},
		"no-client":      {"grant_type": {"client_credentials"}},
	} {
		resp, err := http.PostForm(b.srv.URL+service.PathToken, form)
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]string
		json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		if resp.StatusCode != 401 || got["error"] != "invalid_client" {
			t.Errorf("%s: HTTP %d %v, want 401 invalid_client", name, resp.StatusCode, got)
		}
	}
	resp, err := http.PostForm(b.srv.URL+service.PathToken, url.Values{"grant_type": {"password"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("unsupported grant: HTTP %d, want 400", resp.StatusCode)
	}
}
