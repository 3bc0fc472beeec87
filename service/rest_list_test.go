package service_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/callevents/callevents"
	"github.com/callevents/callevents/store/storetest"
)

// Ensure a REST list pages and filters in the store: past MaxPageCount
// Call Events (a --max-per-extension above it), totalResults counts them
// all, with filterBy too, and the last page is reachable.
func TestRESTListPastMaxPageCount(t *testing.T) {
	const n = callevents.MaxPageCount + 3
	b := setup(t, bundleOptions{maxPerExtension: n})
	ctx := context.Background()
	modified := time.Now().UTC().Truncate(time.Second)
	for i := range n {
		c := callevents.NewCallEvent("0003*210", callevents.EventType(i%2))
		c.ID, c.Modified = callevents.NewCallEventID(), modified
		c.URL, c.Note = fmt.Sprintf("http://127.0.0.1:9/%d", i), []string{"even", "odd"}[i%2]
		if err := b.db.CreateCallEvent(ctx, c, n); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		path           string
		entries, total int
		last           string // url of the last entry
	}{
		{uapiBase + "?count=1", 1, n, "http://127.0.0.1:9/0"},
		{uapiBase + "?startIndex=" + strconv.Itoa(n-2) + "&count=5", 2, n, fmt.Sprintf("http://127.0.0.1:9/%d", n-1)},
		{uapiBase + "?startIndex=" + strconv.Itoa(n) + "&count=5", 0, n, ""},
		{uapiBase + "?filterBy=note&filterValue=odd&count=2&startIndex=2500", 1, n / 2, fmt.Sprintf("http://127.0.0.1:9/%d", n-2)},
		{uapiBase + "/0?count=5000&startIndex=2500", 2, n/2 + 1, fmt.Sprintf("http://127.0.0.1:9/%d", n-1)},
		{uapiBase + "?filterBy=type&filterValue=0&count=1", 1, n/2 + 1, "http://127.0.0.1:9/0"},
	} {
		r := b.mustREST(t, "GET", tc.path, "")
		entries, _ := r.obj["entry"].([]any)
		if len(entries) != tc.entries || r.obj["totalResults"] != strconv.Itoa(tc.total) {
			t.Errorf("%s: %d entries of %v, want %d of %d", tc.path, len(entries), r.obj["totalResults"], tc.entries, tc.total)
			continue
		}
		if tc.last != "" && entries[len(entries)-1].(map[string]any)["url"] != tc.last {
			t.Errorf("%s: last entry %v, want url %s", tc.path, entries[len(entries)-1], tc.last)
		}
	}
}

// Ensure filterBy matches the value exactly as the facade writes the
// field, on every backend: byte for byte (case and trailing spaces count,
// as MySQL's padding collation would not), numbers only in their decimal
// form, times only in the facade's own form; an id excluded by the filter
// is an empty list, not 404.
func TestRESTFilterIsExact(t *testing.T) {
	for _, backend := range []struct{ name, dsn string }{{"SQLite", ""}, {"MySQL", "mysql"}} {
		t.Run(backend.name, func(t *testing.T) {
			opts := bundleOptions{}
			if backend.dsn != "" {
				// Only with a server at hand: the store's own suite is the
				// one that must run on MySQL under CI.
				if os.Getenv("TEST_MYSQL_DSN") == "" {
					t.Skip("TEST_MYSQL_DSN is unset")
				}
				opts.dsn = storetest.MySQLTestDSN(t)
			}
			b := setup(t, opts)
			ids := map[string]string{}
			for _, note := range []string{"n3", "n3 ", "N3", "é", ""} {
				r := b.mustREST(t, "POST", uapiBase, fmt.Sprintf(`{"type":1,"method":1,"url":"http://127.0.0.1:9/%s","note":%q}`, url.PathEscape(note), note))
				ids[note] = r.obj["id"].(string)
			}
			modified := b.mustREST(t, "GET", uapiBase+"?count=1", "").obj["entry"].([]any)[0].(map[string]any)["modified"].(string)
			at, _ := time.Parse(time.RFC3339, modified)
			// The five were made in one second, or across a second's turn:
			// the filter matches the ones of that first one's second.
			sameSecond := 0
			for _, e := range b.mustREST(t, "GET", uapiBase, "").obj["entry"].([]any) {
				if e.(map[string]any)["modified"] == modified {
					sameSecond++
				}
			}
			for _, tc := range []struct {
				by, value string
				want      int
			}{
				{"note", "n3", 1}, {"note", "n3 ", 1}, {"note", "N3", 1}, {"note", "n", 0}, {"note", "é", 1}, {"note", "", 1},
				{"note", "\xff", 0}, {"url", "http://127.0.0.1:9/n3", 1}, {"url", "http://127.0.0.1:9/n3%20", 1},
				{"id", ids["N3"], 1}, {"id", ids["N3"] + " ", 0},
				{"type", "1", 5}, {"type", "01", 0}, {"type", "+1", 0}, {"type", "x", 0}, {"type", "9", 0},
				{"method", "1", 5}, {"method", "0", 0}, {"status", "1", 5}, {"status", "1 ", 0},
				{"modified", modified, sameSecond}, {"modified", at.In(time.FixedZone("", 3600)).Format("2006-01-02T15:04:05-07:00"), 0},
				{"modified", at.Format(time.RFC3339), 0},
			} {
				q := url.Values{"filterBy": {tc.by}, "filterValue": {tc.value}}
				r := b.mustREST(t, "GET", uapiBase+"?"+q.Encode(), "")
				if entries, _ := r.obj["entry"].([]any); len(entries) != tc.want || r.obj["totalResults"] != strconv.Itoa(tc.want) {
					t.Errorf("filterBy=%s filterValue=%q: %s, want %d", tc.by, tc.value, r.raw, tc.want)
				}
			}
			// An id the filter leaves out is an empty list; an unknown one is 404.
			r := b.mustREST(t, "GET", uapiBase+"/1/"+ids["n3"]+"?filterBy=note&filterValue=N3", "")
			if entries, _ := r.obj["entry"].([]any); entries == nil || len(entries) != 0 || r.obj["totalResults"] != "0" {
				t.Errorf("id left out by the filter: %s", r.raw)
			}
			if r := b.restAs(t, "admin", "GET", uapiBase+"/1/doesnotexist?filterBy=note&filterValue=N3", ""); r.status != 404 || r.errCode() != "pce_id_invalid" {
				t.Errorf("unknown id with a filter: HTTP %d %s", r.status, r.raw)
			}
			if r := b.restAs(t, "admin", "GET", uapiBase+"/1/doesnotexist?filterBy=type&filterValue=01", ""); r.status != 404 || r.errCode() != "pce_id_invalid" {
				t.Errorf("unknown id with a filter that matches nothing: HTTP %d %s", r.status, r.raw)
			}
		})
	}
}
