package service_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/callevents/callevents/service"
)

type openAPIDoc struct {
	OpenAPI    string                                `json:"openapi"`
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		SecuritySchemes map[string]struct {
			Type   string `json:"type"`
			Scheme string `json:"scheme"`
		} `json:"securitySchemes"`
		Schemas map[string]json.RawMessage `json:"schemas"`
	} `json:"components"`
}

var openAPIMethods = []string{"get", "put", "post", "delete", "patch", "head", "options"}

func fetchOpenAPI(t *testing.T, b *testBundle) openAPIDoc {
	t.Helper()
	r := b.rest(t, "", "GET", service.PathUAPIOpenAPI, "")
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
		t.Fatalf("GET %s: HTTP %d %s", service.PathUAPIOpenAPI, r.status, r.header.Get("Content-Type"))
	}
	var doc openAPIDoc
	if err := json.Unmarshal([]byte(r.raw), &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.0") {
		t.Errorf("openapi %q, want 3.0.x", doc.OpenAPI)
	}
	if s := doc.Components.SecuritySchemes["bearer"]; s.Type != "http" || s.Scheme != "bearer" {
		t.Errorf("no bearer security scheme: %+v", doc.Components.SecuritySchemes)
	}
	for _, name := range []string{"PhoneCallEvent", "PhoneCallEventList", "Error"} {
		if doc.Components.Schemas[name] == nil {
			t.Errorf("no schema %s", name)
		}
	}
	return doc
}

// Ensure every path and method of the OpenAPI document is routed: the
// answer is never the mux's own 404 (route missing) or 405, only the
// facade's JSON answers, a 404 included (resource not found).
func TestOpenAPIRoutesExist(t *testing.T) {
	b := setup(t, bundleOptions{})
	doc := fetchOpenAPI(t, b)
	fill := strings.NewReplacer("{userId}", "@me", "{extension}", "0003*210", "{type}", "0", "{id}", "doesnotexist")
	for path, item := range doc.Paths {
		for method := range item {
			if !slices.Contains(openAPIMethods, method) {
				continue
			}
			body := ""
			if method == "post" || method == "put" {
				body = `{"url":"http://127.0.0.1:9/h","type":0}`
			}
			r := b.restAs(t, "admin", strings.ToUpper(method), fill.Replace(path), body)
			if r.status == http.StatusMethodNotAllowed {
				t.Errorf("%s %s: 405 from the mux", method, path)
			}
			if r.status == http.StatusNotFound && r.errCode() == "" {
				t.Errorf("%s %s: not routed (%s)", method, path, r.raw)
			}
			if r.status >= 400 && r.status != http.StatusNotFound {
				t.Errorf("%s %s: HTTP %d %s", method, path, r.status, r.raw)
			}
		}
	}
	// And the check can tell: an unknown path is the mux's 404.
	if r := b.restAs(t, "admin", "GET", "/uapi/extensions/@me/0003*210/nothing", ""); r.status != 404 || r.errCode() != "" {
		t.Errorf("unrouted path: HTTP %d %s", r.status, r.raw)
	}
}

// Ensure every route the server registers under /uapi is in the document.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	b := setup(t, bundleOptions{})
	doc := fetchOpenAPI(t, b)
	for _, route := range service.UAPIRoutes() {
		method, pattern, _ := strings.Cut(route, " ")
		path := strings.TrimSuffix(pattern, "{$}")
		item, ok := doc.Paths[path]
		if !ok {
			t.Errorf("route %s: path %s is not in the document", route, path)
			continue
		}
		if item[strings.ToLower(method)] == nil {
			t.Errorf("route %s: %s is not in the document's %s", route, method, path)
		}
	}
}

// Ensure every GET is documented as the Collection it answers: the 200
// response is PhoneCallEventList, and the server's answer, by id too, has
// the entry a UnifiedAPI client reads.
func TestOpenAPIGetsAreCollections(t *testing.T) {
	b := setup(t, bundleOptions{})
	doc := fetchOpenAPI(t, b)
	id := b.mustAdd(t, "0003*210", 0)
	fill := strings.NewReplacer("{userId}", "@me", "{extension}", "0003*210", "{type}", "0", "{id}", id)
	for path, item := range doc.Paths {
		if item["get"] == nil || path == service.PathUAPIOpenAPI { // the document itself
			continue
		}
		var op struct {
			Responses map[string]struct {
				Content map[string]struct {
					Schema struct {
						Ref string `json:"$ref"`
					} `json:"schema"`
				} `json:"content"`
			} `json:"responses"`
		}
		if err := json.Unmarshal(item["get"], &op); err != nil {
			t.Fatal(err)
		}
		if ref := op.Responses["200"].Content["application/json"].Schema.Ref; ref != "#/components/schemas/PhoneCallEventList" {
			t.Errorf("GET %s: 200 is %q, want the PhoneCallEventList collection", path, ref)
		}
		r := b.mustREST(t, "GET", fill.Replace(path), "")
		if e, ok := r.obj["entry"].([]any); !ok || len(e) != 1 {
			t.Errorf("GET %s: %s, want a collection of one", path, r.raw)
		}
	}
}
