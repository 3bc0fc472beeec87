package service_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/callevents/callevents"
)

const uapiBase = "/uapi/extensions/@me/0003*210/phoneCallEvents"

// restReply is a facade response, its body decoded as a JSON object.
type restReply struct {
	status int
	raw    string
	obj    map[string]any
	header http.Header
}

// errCode returns error.code of a JSON error body, or "".
func (r restReply) errCode() string {
	e, _ := r.obj["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}

// rest sends a request to the facade with the given Authorization header
// ("" for none) and an optional JSON body; path may be absolute.
func (b *testBundle) rest(t *testing.T, auth, method, path, body string) restReply {
	t.Helper()
	if !strings.HasPrefix(path, "http") {
		path = b.srv.URL + path
	}
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := restReply{status: resp.StatusCode, raw: string(raw), header: resp.Header}
	json.Unmarshal(raw, &out.obj)
	return out
}

// restAs sends a request with the token of scope.
func (b *testBundle) restAs(t *testing.T, scope, method, path, body string) restReply {
	t.Helper()
	return b.rest(t, b.bearer(scope), method, path, body)
}

func (b *testBundle) mustREST(t *testing.T, method, path, body string) restReply {
	t.Helper()
	r := b.restAs(t, "admin", method, path, body)
	if r.status != http.StatusOK {
		t.Fatalf("%s %s: HTTP %d %s", method, path, r.status, r.raw)
	}
	return r
}

var modifiedPattern = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$`)

// checkEvent checks the JSON shape of one PhoneCallEvent.
func checkEvent(t *testing.T, b *testBundle, ev map[string]any, typ, method, url, status, note string) string {
	t.Helper()
	keys := make([]string, 0, len(ev))
	for k := range ev {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if want := []string{"id", "links", "method", "modified", "note", "status", "type", "url"}; !slices.Equal(keys, want) {
		t.Errorf("fields %v, want %v", keys, want)
	}
	id, _ := ev["id"].(string)
	if len(id) != callevents.CallEventIDLength {
		t.Errorf("id %v", ev["id"])
	}
	for k, want := range map[string]string{"type": typ, "method": method, "url": url, "status": status, "note": note} {
		if ev[k] != want {
			t.Errorf("%s = %#v, want %q", k, ev[k], want)
		}
	}
	if m, _ := ev["modified"].(string); !modifiedPattern.MatchString(m) {
		t.Errorf("modified = %#v, want ISO 8601 with +00:00", ev["modified"])
	}
	links, _ := ev["links"].(map[string]any)
	if want := b.srv.URL + "/uapi/extensions/@me/0003*210/phoneCallEvents/" + typ + "/" + id; links["self"] != want {
		t.Errorf("links.self = %v, want %s", links["self"], want)
	}
	return id
}

// onlyEntry returns the one entry of a Collection reply, checking the
// envelope a UnifiedAPI client reads: entry, startIndex, itemsPerPage,
// totalResults and links.self, numbers as strings.
func onlyEntry(t *testing.T, r restReply) map[string]any {
	t.Helper()
	keys := make([]string, 0, len(r.obj))
	for k := range r.obj {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if want := []string{"entry", "itemsPerPage", "links", "startIndex", "totalResults"}; !slices.Equal(keys, want) {
		t.Fatalf("fields %v, want the Collection envelope %v: %s", keys, want, r.raw)
	}
	entry, _ := r.obj["entry"].([]any)
	if len(entry) != 1 || r.obj["totalResults"] != "1" || r.obj["startIndex"] != "0" {
		t.Fatalf("not a collection of one: %s", r.raw)
	}
	if links, _ := r.obj["links"].(map[string]any); links["self"] == nil || links["next"] != nil || links["prev"] != nil {
		t.Errorf("links %v, want only self", r.obj["links"])
	}
	e, ok := entry[0].(map[string]any)
	if !ok {
		t.Fatalf("entry[0] is not an object: %s", r.raw)
	}
	return e
}

// Ensure one Call Event by id answers the List's Collection envelope (so a
// UnifiedAPI client reading entry finds it), its key order included, and
// that fields, filterBy and paging apply to it as to the List.
func TestRESTGetByIDIsACollection(t *testing.T) {
	b := setup(t, bundleOptions{})
	r := b.mustREST(t, "POST", uapiBase, `{"type":0,"url":"http://127.0.0.1:9/a","note":"one"}`)
	id := r.obj["id"].(string)
	b.mustREST(t, "POST", uapiBase, `{"type":0,"url":"http://127.0.0.1:9/b"}`) // not this id

	path := uapiBase + "/0/" + id
	r = b.mustREST(t, "GET", path, "")
	checkEvent(t, b, onlyEntry(t, r), "0", "0", "http://127.0.0.1:9/a", "1", "one")
	if r.obj["itemsPerPage"] != "20" {
		t.Errorf("itemsPerPage %v, want the List's default page, \"20\"", r.obj["itemsPerPage"])
	}
	if self := r.obj["links"].(map[string]any)["self"]; self != b.srv.URL+path+"?startIndex=0" {
		t.Errorf("links.self %v, want this request's URL", self)
	}
	last := -1
	for _, key := range []string{`{"entry":`, `,"startIndex":`, `,"itemsPerPage":`, `,"totalResults":`, `,"links":{"self":`} {
		i := strings.LastIndex(r.raw, key) // "links" of the entry come first
		if i <= last {
			t.Fatalf("%s out of the List's order: %s", key, r.raw)
		}
		last = i
	}
	// Its list, narrowed by filterBy=id, is the same document.
	if l := b.mustREST(t, "GET", uapiBase+"/0?filterBy=id&filterValue="+id, ""); strings.Replace(l.raw, "/0?filterBy=id&filterValue="+id+"&", "/0/"+id+"?", 1) != r.raw {
		t.Errorf("by id:\n%s\nthe list filtered by id:\n%s", r.raw, l.raw)
	}

	// fields picks the entry's fields; links stay.
	r = b.mustREST(t, "GET", path+"?fields=id,note", "")
	if e := onlyEntry(t, r); len(e) != 3 || e["id"] != id || e["note"] != "one" || e["links"] == nil {
		t.Errorf("fields=id,note gave %v", e)
	}
	// count sets itemsPerPage; a filter that excludes it leaves an empty entry.
	r = b.mustREST(t, "GET", path+"?count=1", "")
	if onlyEntry(t, r); r.obj["itemsPerPage"] != "1" {
		t.Errorf("count=1: %s", r.raw)
	}
	r = b.mustREST(t, "GET", path+"?filterBy=note&filterValue=other", "")
	if e, _ := r.obj["entry"].([]any); e == nil || len(e) != 0 || r.obj["totalResults"] != "0" {
		t.Errorf("filtered out: %s, want entry [] and totalResults \"0\"", r.raw)
	}
	// Refusals are the List's: bad fields, bad paging; and an unknown id is 404.
	for _, tc := range []struct {
		query, code string
		status      int
	}{{"?fields=secret", "invalid_request", 400}, {"?count=0", "paging_invalid", 400}} {
		if r := b.restAs(t, "admin", "GET", path+tc.query, ""); r.status != tc.status || r.errCode() != tc.code {
			t.Errorf("%s: HTTP %d %s, want %d %s", tc.query, r.status, r.raw, tc.status, tc.code)
		}
	}
	if r := b.restAs(t, "admin", "GET", uapiBase+"/1/"+id, ""); r.status != 404 || r.errCode() != "pce_id_invalid" {
		t.Errorf("another type: HTTP %d %s, want 404 pce_id_invalid", r.status, r.raw)
	}
}

// Ensure every operation works over REST with the UnifiedAPI JSON shape.
func TestRESTOperations(t *testing.T) {
	b := setup(t, bundleOptions{})
	// Create: type in the body as a number, on the collection.
	r := b.mustREST(t, "POST", uapiBase, `{"type":0,"url":"http://127.0.0.1:9/a","method":1,"note":"first","secret":"0123456789abcdef"}`)
	a := checkEvent(t, b, r.obj, "0", "1", "http://127.0.0.1:9/a", "1", "first")
	if strings.Contains(r.raw, "0123456789abcdef") || strings.Contains(r.raw, "secret") {
		t.Errorf("the secret leaks: %s", r.raw)
	}
	// Type in the path, numbers as strings, encoded extension, trailing slash.
	r = b.mustREST(t, "POST", "/uapi/extensions/@me/0003%2A210/phoneCallEvents/2", `{"url":"http://127.0.0.1:9/b","status":"0","method":"0"}`)
	h := checkEvent(t, b, r.obj, "2", "0", "http://127.0.0.1:9/b", "0", "")
	r = b.mustREST(t, "POST", "/uapi/extensions/@viewer/0003%2a210/phoneCallEvents/", `{"type":"2","url":"http://127.0.0.1:9/c"}`)
	c := checkEvent(t, b, r.obj, "2", "0", "http://127.0.0.1:9/c", "1", "")
	// Type in both: equal is fine, different is pcet_type_invalid.
	b.mustREST(t, "POST", uapiBase+"/1", `{"type":"1","url":"http://127.0.0.1:9/d"}`)
	if r := b.restAs(t, "admin", "POST", uapiBase+"/1", `{"type":2,"url":"http://127.0.0.1:9/d"}`); r.status != 400 || r.errCode() != "pcet_type_invalid" {
		t.Errorf("type differs: HTTP %d %s", r.status, r.raw)
	}
	if n := b.count(t, "0003*210"); n != 4 {
		t.Fatalf("%d Call Events, want 4", n)
	}

	// Get one, raw and encoded: a collection of one.
	for _, ext := range []string{"0003*210", "0003%2A210"} {
		r = b.mustREST(t, "GET", "/uapi/extensions/@owner/"+ext+"/phoneCallEvents/0/"+a, "")
		checkEvent(t, b, onlyEntry(t, r), "0", "1", "http://127.0.0.1:9/a", "1", "first")
	}
	// List of one type.
	r = b.mustREST(t, "GET", uapiBase+"/2", "")
	if r.obj["totalResults"] != "2" || len(r.obj["entry"].([]any)) != 2 {
		t.Errorf("list of type 2: %s", r.raw)
	}

	// Partial update: only note changes.
	r = b.mustREST(t, "PUT", uapiBase+"/0/"+a, `{"note":"changed"}`)
	checkEvent(t, b, r.obj, "0", "1", "http://127.0.0.1:9/a", "1", "changed")
	r = b.mustREST(t, "PUT", uapiBase+"/0/"+a, `{"status":0,"method":"0","url":"http://127.0.0.1:9/a2"}`)
	checkEvent(t, b, r.obj, "0", "0", "http://127.0.0.1:9/a2", "0", "changed")
	// note "" clears; secret "" removes.
	r = b.mustREST(t, "PUT", uapiBase+"/0/"+a, `{"note":"","secret":""}`)
	checkEvent(t, b, r.obj, "0", "0", "http://127.0.0.1:9/a2", "0", "")
	items, _, err := b.db.FindCallEvents(context.Background(), callevents.CallEventFilter{Extension: "0003*210"})
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		if it.ID == a && it.HasSecret() {
			t.Error("secret \"\" did not remove the secret")
		}
	}

	// Delete by id, by type, then all.
	r = b.mustREST(t, "DELETE", uapiBase+"/2/"+h, "")
	if fmt.Sprint(r.obj["deleted"]) != "["+h+"]" {
		t.Errorf("delete one: %s", r.raw)
	}
	if r := b.restAs(t, "admin", "DELETE", uapiBase+"/2/"+h, ""); r.status != 404 || r.errCode() != "pce_id_invalid" {
		t.Errorf("delete again: HTTP %d %s", r.status, r.raw)
	}
	r = b.mustREST(t, "DELETE", uapiBase+"/2", "")
	if fmt.Sprint(r.obj["deleted"]) != "["+c+"]" {
		t.Errorf("delete type: %s", r.raw)
	}
	r = b.mustREST(t, "DELETE", "/uapi/extensions/@me/0003%2A210/phoneCallEvents", "")
	if len(r.obj["deleted"].([]any)) != 2 {
		t.Errorf("delete all: %s", r.raw)
	}
	r = b.mustREST(t, "DELETE", uapiBase+"/", "")
	if r.raw != "{\"deleted\":[]}\n" {
		t.Errorf("delete nothing: %q", r.raw)
	}
	if n := b.count(t, "0003*210"); n != 0 {
		t.Errorf("%d Call Events left", n)
	}
}

// Ensure lists page with next/prev links, filter and select fields.
func TestRESTListPaging(t *testing.T) {
	b := setup(t, bundleOptions{})
	for i := range 5 {
		b.mustREST(t, "POST", uapiBase, fmt.Sprintf(`{"type":%d,"url":"http://127.0.0.1:9/%d","note":"n%d"}`, i%2, i, i))
	}
	page := func(path string) (entries []any, links map[string]any, obj map[string]any) {
		t.Helper()
		r := b.mustREST(t, "GET", path, "")
		entries, _ = r.obj["entry"].([]any)
		links, _ = r.obj["links"].(map[string]any)
		return entries, links, r.obj
	}
	e, links, obj := page(uapiBase)
	if len(e) != 5 || obj["startIndex"] != "0" || obj["itemsPerPage"] != "20" || obj["totalResults"] != "5" || links["next"] != nil || links["prev"] != nil {
		t.Errorf("default page: %v", obj)
	}
	if links["self"] == nil {
		t.Error("no links.self")
	}
	e, links, obj = page(uapiBase + "?count=2")
	if len(e) != 2 || links["next"] == nil || links["prev"] != nil || obj["itemsPerPage"] != "2" {
		t.Fatalf("first page: %v", obj)
	}
	// Follow next twice, then prev.
	e, links, obj = page(links["next"].(string))
	if len(e) != 2 || obj["startIndex"] != "2" || links["next"] == nil || links["prev"] == nil {
		t.Fatalf("second page: %v", obj)
	}
	if e[0].(map[string]any)["url"] != "http://127.0.0.1:9/2" {
		t.Errorf("second page starts with %v", e[0])
	}
	e, links, obj = page(links["next"].(string))
	if len(e) != 1 || obj["startIndex"] != "4" || links["next"] != nil || links["prev"] == nil {
		t.Fatalf("last page: %v", obj)
	}
	_, _, obj = page(links["prev"].(string))
	if obj["startIndex"] != "2" {
		t.Errorf("prev: %v", obj)
	}
	// filterBy/filterValue: exact match on the written value.
	e, _, obj = page(uapiBase + "?filterBy=type&filterValue=1")
	if len(e) != 2 || obj["totalResults"] != "2" {
		t.Errorf("filter type=1: %v", obj)
	}
	e, _, _ = page(uapiBase + "?filterBy=note&filterValue=n3")
	if len(e) != 1 || e[0].(map[string]any)["url"] != "http://127.0.0.1:9/3" {
		t.Errorf("filter note=n3: %v", e)
	}
	// fields: only those, plus links.
	e, _, _ = page(uapiBase + "/0?fields=id,url")
	if len(e) != 3 {
		t.Fatalf("type 0: %v", e)
	}
	for _, it := range e {
		m := it.(map[string]any)
		if len(m) != 3 || m["id"] == nil || m["url"] == nil || m["links"] == nil {
			t.Errorf("fields=id,url gave %v", m)
		}
	}
	for _, bad := range []string{"?filterBy=secret", "?fields=id,secret"} {
		if r := b.restAs(t, "admin", "GET", uapiBase+bad, ""); r.status != 400 || r.errCode() != "invalid_request" {
			t.Errorf("%s: HTTP %d %s", bad, r.status, r.raw)
		}
	}
}

// Ensure both edges see one store: REST → SOAP, SOAP → REST, edits too.
func TestRESTCrossEdge(t *testing.T) {
	b := setup(t, bundleOptions{})
	r := b.mustREST(t, "POST", uapiBase, `{"type":3,"url":"  http://127.0.0.1:9/rest\n","note":"from rest"}`)
	restID := r.obj["id"].(string)
	if r.obj["url"] != "http://127.0.0.1:9/rest" {
		t.Errorf("the URL is not trimmed as over SOAP: %s", r.raw)
	}
	_, body := b.call(t, "admin", `<v1:GetPhoneCallEvents><v1:extension>0003*210</v1:extension><v1:type>3</v1:type><v1:id>`+restID+`</v1:id></v1:GetPhoneCallEvents>`)
	if el := bodyElement(t, body).FindElement("phoneCallEvent/note"); el == nil || el.Text() != "from rest" {
		t.Errorf("SOAP does not see the REST Call Event:\n%s", body)
	}
	soapID := b.mustAdd(t, "0003*210", 4)
	r = b.mustREST(t, "GET", uapiBase+"/4/"+soapID, "")
	if e := onlyEntry(t, r); e["url"] != "http://127.0.0.1:9/h" || e["type"] != "4" {
		t.Errorf("REST does not see the SOAP Call Event: %s", r.raw)
	}
	_, body = b.call(t, "admin", `<v1:EditPhoneCallEvent><v1:extension>0003*210</v1:extension><v1:type>4</v1:type><v1:id>`+soapID+`</v1:id><v1:note>edited over soap</v1:note><v1:method>1</v1:method></v1:EditPhoneCallEvent>`)
	if _, isFault := parseFault(t, body); isFault {
		t.Fatalf("edit: %s", body)
	}
	r = b.mustREST(t, "GET", uapiBase+"/4/"+soapID, "")
	if e := onlyEntry(t, r); e["note"] != "edited over soap" || e["method"] != "1" {
		t.Errorf("REST does not see the SOAP edit: %s", r.raw)
	}
	b.mustREST(t, "PUT", uapiBase+"/3/"+restID, `{"status":0}`)
	_, body = b.call(t, "admin", `<v1:GetPhoneCallEvents><v1:extension>0003*210</v1:extension><v1:type>3</v1:type></v1:GetPhoneCallEvents>`)
	if el := bodyElement(t, body).FindElement("phoneCallEvent/status"); el == nil || el.Text() != "0" {
		t.Errorf("SOAP does not see the REST edit:\n%s", body)
	}
	_, body = b.call(t, "admin", `<v1:DelPhoneCallEvent><v1:extension>0003*210</v1:extension><v1:type>3</v1:type></v1:DelPhoneCallEvent>`)
	if r := b.restAs(t, "admin", "GET", uapiBase+"/3/"+restID, ""); r.status != 404 || r.errCode() != "pce_id_invalid" {
		t.Errorf("REST still sees a Call Event deleted over SOAP: HTTP %d %s", r.status, r.raw)
	}
}

// Ensure each validation rule answers on both edges with its code, and a
// refused request changes nothing.
func TestRESTValidationBothEdges(t *testing.T) {
	b := setup(t, bundleOptions{})
	keep := b.mustAdd(t, "0003*210", 0)
	b.mustAdd(t, "0004*100", 2)
	const ext, url = `<v1:extension>0003*210</v1:extension>`, `<v1:url>http://127.0.0.1:9/h</v1:url>`
	add := func(fields string) string { return `<v1:AddPhoneCallEvent>` + fields + `</v1:AddPhoneCallEvent>` }
	edit := func(typ, id, fields string) string {
		return `<v1:EditPhoneCallEvent>` + ext + `<v1:type>` + typ + `</v1:type><v1:id>` + id + `</v1:id>` + fields + `</v1:EditPhoneCallEvent>`
	}
	long := strings.Repeat("x", callevents.MaxNoteLength+1)
	for _, tc := range []struct {
		name       string
		scope      string // "" = admin
		soap       string
		soapCode   string
		method     string
		path       string // after /uapi/extensions/
		body       string
		httpStatus int
		restCode   string
	}{
		{"extension", "", add(`<v1:extension>210</v1:extension><v1:type>0</v1:type>` + url), "254",
			"POST", "@me/210/phoneCallEvents", `{"type":0,"url":"http://127.0.0.1:9/h"}`, 400, "extension_invalid"},
		{"extension-self", "", add(`<v1:extension>@self</v1:extension><v1:type>0</v1:type>` + url), "254",
			"GET", "@me/@self/phoneCallEvents", ``, 400, "extension_invalid"},
		{"type-body", "", add(ext + `<v1:type>9</v1:type>` + url), "301",
			"POST", "@me/0003*210/phoneCallEvents", `{"type":9,"url":"http://127.0.0.1:9/h"}`, 400, "pce_type_invalid"},
		{"type-body-text", "", add(ext + `<v1:type>x</v1:type>` + url), "301",
			"POST", "@me/0003*210/phoneCallEvents", `{"type":"x","url":"http://127.0.0.1:9/h"}`, 400, "pce_type_invalid"},
		{"type-path", "", `<v1:GetPhoneCallEvents>` + ext + `<v1:type>9</v1:type></v1:GetPhoneCallEvents>`, "301",
			"GET", "@me/0003*210/phoneCallEvents/9", ``, 400, "pcet_type_invalid"},
		{"type-path-create", "", add(ext + `<v1:type>7</v1:type>` + url), "301",
			"POST", "@me/0003*210/phoneCallEvents/7", `{"url":"http://127.0.0.1:9/h"}`, 400, "pcet_type_invalid"},
		{"type-path-text", "", `<v1:DelPhoneCallEvent>` + ext + `<v1:type>x</v1:type></v1:DelPhoneCallEvent>`, "301",
			"DELETE", "@me/0003*210/phoneCallEvents/x", ``, 400, "pcet_type_invalid"},
		{"method", "", add(ext + `<v1:type>0</v1:type>` + url + `<v1:method>5</v1:method>`), "302",
			"POST", "@me/0003*210/phoneCallEvents", `{"type":0,"url":"http://127.0.0.1:9/h","method":5}`, 400, "pce_method_invalid"},
		{"method-text", "", add(ext + `<v1:type>0</v1:type>` + url + `<v1:method>GET</v1:method>`), "302",
			"POST", "@me/0003*210/phoneCallEvents", `{"type":0,"url":"http://127.0.0.1:9/h","method":"GET"}`, 400, "pce_method_invalid"},
		{"method-bool", "", add(ext + `<v1:type>0</v1:type>` + url + `<v1:method>true</v1:method>`), "302",
			"POST", "@me/0003*210/phoneCallEvents", `{"type":0,"url":"http://127.0.0.1:9/h","method":true}`, 400, "pce_method_invalid"},
		{"url-scheme", "", add(ext + `<v1:type>0</v1:type><v1:url>ftp://127.0.0.1/x</v1:url>`), "303",
			"POST", "@me/0003*210/phoneCallEvents", `{"type":0,"url":"ftp://127.0.0.1/x"}`, 400, "pce_url_invalid"},
		{"url-fragment-edit", "", edit("0", keep, `<v1:url>http://127.0.0.1:9/x#f</v1:url>`), "303",
			"PUT", "@me/0003*210/phoneCallEvents/0/" + keep, `{"url":"http://127.0.0.1:9/x#f"}`, 400, "pce_url_invalid"},
		{"url-not-string", "", add(ext + `<v1:type>0</v1:type><v1:url>12</v1:url>`), "303",
			"POST", "@me/0003*210/phoneCallEvents", `{"type":0,"url":12}`, 400, "pce_url_invalid"},
		{"status", "", add(ext + `<v1:type>0</v1:type>` + url + `<v1:status>2</v1:status>`), "304",
			"POST", "@me/0003*210/phoneCallEvents", `{"type":0,"url":"http://127.0.0.1:9/h","status":"2"}`, 400, "pce_status_invalid"},
		{"status-edit", "", `<v1:SetPhoneCallEventStatus>` + ext + `<v1:type>0</v1:type><v1:id>` + keep + `</v1:id><v1:status>3</v1:status></v1:SetPhoneCallEventStatus>`, "304",
			"PUT", "@me/0003*210/phoneCallEvents/0/" + keep, `{"status":3}`, 400, "pce_status_invalid"},
		{"note", "", add(ext + `<v1:type>0</v1:type>` + url + `<v1:note>` + long + `</v1:note>`), "305",
			"POST", "@me/0003*210/phoneCallEvents", `{"type":0,"url":"http://127.0.0.1:9/h","note":"` + long + `"}`, 400, "pce_note_invalid"},
		{"secret", "", edit("0", keep, `<v1:secret>short</v1:secret>`), "306",
			"PUT", "@me/0003*210/phoneCallEvents/0/" + keep, `{"secret":"short"}`, 400, "pce_secret_invalid"},
		{"paging-count", "", `<v1:GetPhoneCallEvents>` + ext + `<v1:count>0</v1:count></v1:GetPhoneCallEvents>`, "307",
			"GET", "@me/0003*210/phoneCallEvents?count=0", ``, 400, "paging_invalid"},
		{"paging-max", "", `<v1:GetPhoneCallEvents>` + ext + `<v1:count>5001</v1:count></v1:GetPhoneCallEvents>`, "307",
			"GET", "@me/0003*210/phoneCallEvents?count=5001", ``, 400, "paging_invalid"},
		{"paging-start", "", `<v1:GetPhoneCallEvents>` + ext + `<v1:startIndex>-1</v1:startIndex></v1:GetPhoneCallEvents>`, "307",
			"GET", "@me/0003*210/phoneCallEvents/0?startIndex=-1", ``, 400, "paging_invalid"},
		{"paging-text", "", `<v1:GetPhoneCallEvents>` + ext + `<v1:count>ten</v1:count></v1:GetPhoneCallEvents>`, "307",
			"GET", "@me/0003*210/phoneCallEvents?count=ten", ``, 400, "paging_invalid"},
		{"unknown-id-get", "", `<v1:GetPhoneCallEvents>` + ext + `<v1:type>0</v1:type><v1:id>doesnotexist</v1:id></v1:GetPhoneCallEvents>`, "255",
			"GET", "@me/0003*210/phoneCallEvents/0/doesnotexist", ``, 404, "pce_id_invalid"},
		{"unknown-id-edit", "", edit("0", "doesnotexist", `<v1:note>x</v1:note>`), "255",
			"PUT", "@me/0003*210/phoneCallEvents/0/doesnotexist", `{"note":"x"}`, 404, "pce_id_invalid"},
		{"wrong-type-edit", "", edit("1", keep, `<v1:note>x</v1:note>`), "255",
			"PUT", "@me/0003*210/phoneCallEvents/1/" + keep, `{"note":"x"}`, 404, "pce_id_invalid"},
		{"unknown-id-delete", "", `<v1:DelPhoneCallEvent>` + ext + `<v1:type>0</v1:type><v1:id>doesnotexist</v1:id></v1:DelPhoneCallEvent>`, "255",
			"DELETE", "@me/0003*210/phoneCallEvents/0/doesnotexist", ``, 404, "pce_id_invalid"},
		{"out-of-scope-add", "org:0003", add(`<v1:extension>0004*100</v1:extension><v1:type>0</v1:type>` + url), "103",
			"POST", "@me/0004*100/phoneCallEvents", `{"type":0,"url":"http://127.0.0.1:9/h"}`, 403, "forbidden"},
		{"out-of-scope-list", "ext:0003*210", `<v1:GetPhoneCallEvents><v1:extension>0004*100</v1:extension></v1:GetPhoneCallEvents>`, "103",
			"GET", "@me/0004*100/phoneCallEvents", ``, 403, "forbidden"},
		{"out-of-scope-delete", "org:0003", `<v1:DelPhoneCallEvent><v1:extension>0004*100</v1:extension></v1:DelPhoneCallEvent>`, "103",
			"DELETE", "@me/0004*100/phoneCallEvents", ``, 403, "forbidden"},
		{"pbx-scope", "pbx", add(ext + `<v1:type>0</v1:type>` + url), "103",
			"POST", "@me/0003*210/phoneCallEvents", `{"type":0,"url":"http://127.0.0.1:9/h"}`, 403, "forbidden"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			scope := tc.scope
			if scope == "" {
				scope = "admin"
			}
			before := b.snapshot(t)
			_, body := b.call(t, scope, tc.soap)
			f, ok := parseFault(t, body)
			if !ok || f.code != tc.soapCode {
				t.Errorf("SOAP: fault %+v, want code %s\n%s", f, tc.soapCode, body)
			}
			r := b.restAs(t, scope, tc.method, "/uapi/extensions/"+tc.path, tc.body)
			if r.status != tc.httpStatus || r.errCode() != tc.restCode {
				t.Errorf("REST: HTTP %d %s, want %d %s", r.status, r.raw, tc.httpStatus, tc.restCode)
			}
			if after := b.snapshot(t); after != before {
				t.Error("a refused request changed the store")
			}
		})
	}
}

// Ensure the limit of Call Events per extension (308) answers on both edges.
func TestRESTLimitBothEdges(t *testing.T) {
	b := setup(t, bundleOptions{maxPerExtension: 1})
	b.mustAdd(t, "0003*210", 0)
	_, body := b.call(t, "admin", `<v1:AddPhoneCallEvent><v1:extension>0003*210</v1:extension><v1:type>1</v1:type><v1:url>http://127.0.0.1:9/h</v1:url></v1:AddPhoneCallEvent>`)
	if f, _ := parseFault(t, body); f.code != "308" {
		t.Errorf("SOAP: %+v", f)
	}
	if r := b.restAs(t, "admin", "POST", uapiBase, `{"type":1,"url":"http://127.0.0.1:9/h"}`); r.status != 400 || r.errCode() != "pce_limit_reached" {
		t.Errorf("REST: HTTP %d %s", r.status, r.raw)
	}
	if n := b.count(t, "0003*210"); n != 1 {
		t.Errorf("%d Call Events, want 1", n)
	}
}

// Ensure the facade wants a valid Bearer token (401 otherwise, an expired one
// included), and answers 403 out of scope or for another client's userId.
func TestRESTAuth(t *testing.T) {
	b := setup(t, bundleOptions{})
	b.mustAdd(t, "0003*210", 0)
	orgID := strings.SplitN(b.secret["org:0003"], ":", 2)[0]
	extID := strings.SplitN(b.secret["ext:0003*210"], ":", 2)[0]
	expired := b.expiredToken(t)
	for _, tc := range []struct {
		name, auth, path string
		status           int
		code             string
	}{
		{"none", "", uapiBase, 401, "unauthorized"},
		{"unknown-token", "Bearer not-a-token", uapiBase, 401, "unauthorized"},
		{"basic", "Basic eDp5", uapiBase, 401, "unauthorized"},
		{"expired", "Bearer " + expired, uapiBase, 401, "unauthorized"},
		{"out-of-scope", b.bearer("ext:0003*210"), "/uapi/extensions/@me/0003*211/phoneCallEvents", 403, "forbidden"},
		{"pbx", b.bearer("pbx"), uapiBase, 403, "forbidden"},
		{"other-client-id", b.bearer("org:0003"), "/uapi/extensions/" + extID + "/0003*210/phoneCallEvents", 403, "forbidden"},
		{"own-client-id", b.bearer("org:0003"), "/uapi/extensions/" + orgID + "/0003*210/phoneCallEvents", 200, ""},
		{"admin-other-id", b.bearer("admin"), "/uapi/extensions/" + extID + "/0003*210/phoneCallEvents", 200, ""},
		{"ext-in-scope", b.bearer("ext:0003*210"), uapiBase, 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := b.rest(t, tc.auth, "GET", tc.path, "")
			if r.status != tc.status || r.errCode() != tc.code {
				t.Errorf("HTTP %d %s, want %d %s", r.status, r.raw, tc.status, tc.code)
			}
			if tc.status == 401 && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("401 without a Bearer challenge")
			}
			if tc.name == "expired" && !strings.Contains(r.raw, "expired") {
				t.Errorf("the message does not say the token expired: %s", r.raw)
			}
		})
	}
}

// Ensure a body is a JSON object of known fields: an unknown field, a body
// that is not an object and a type that changes on PUT are refused, naming
// what is wrong, and change nothing.
func TestRESTBodyDecoding(t *testing.T) {
	b := setup(t, bundleOptions{})
	id := b.mustAdd(t, "0003*210", 0)
	for _, tc := range []struct {
		name, method, path, body string
		code, field              string
	}{
		{"unknown-field", "POST", uapiBase, `{"type":0,"url":"http://127.0.0.1:9/h","extension":"0003*210"}`, "invalid_request", "extension"},
		{"unknown-field-put", "PUT", uapiBase + "/0/" + id, `{"hasSecret":"1"}`, "invalid_request", "hasSecret"},
		{"not-json", "POST", uapiBase, `type=0`, "invalid_request", ""},
		{"array", "POST", uapiBase, `[{"type":0}]`, "invalid_request", ""},
		{"empty", "PUT", uapiBase + "/0/" + id, ``, "invalid_request", ""},
		{"trailing-data", "POST", uapiBase, `{"type":0,"url":"http://127.0.0.1:9/h"} {}`, "invalid_request", ""},
		{"type-change-put", "PUT", uapiBase + "/0/" + id, `{"type":1}`, "pcet_type_invalid", "{type}"},
		{"type-missing", "POST", uapiBase, `{"url":"http://127.0.0.1:9/h"}`, "pcet_type_invalid", "{type}"},
		{"url-missing", "POST", uapiBase + "/0", `{"note":"x"}`, "missing_parameter", "url"},
		{"fraction", "POST", uapiBase, `{"type":0,"url":"http://127.0.0.1:9/h","status":0.5}`, "pce_status_invalid", "status"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := b.snapshot(t)
			r := b.restAs(t, "admin", tc.method, tc.path, tc.body)
			e, _ := r.obj["error"].(map[string]any)
			if r.status != 400 || r.errCode() != tc.code || (tc.field != "" && e["field"] != tc.field) {
				t.Errorf("HTTP %d %s, want 400 %s field %q", r.status, r.raw, tc.code, tc.field)
			}
			if b.snapshot(t) != before {
				t.Error("a refused request changed the store")
			}
		})
	}
	// The same type on PUT is fine, and null counts as absent.
	r := b.mustREST(t, "PUT", uapiBase+"/0/"+id, `{"type":"0","note":null,"method":1}`)
	if r.obj["method"] != "1" {
		t.Errorf("PUT: %s", r.raw)
	}
}
