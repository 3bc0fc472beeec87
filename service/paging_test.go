package service_test

import (
	"context"
	"encoding/xml"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/callevents/callevents"
)

// pagingItems is how many Call Events (and deliveries) the paging tests'
// extension has.
const pagingItems = 3

// pagingExtremes are startIndex/count texts at and past every bound: signs,
// zero, the largest xs:int and int64, overflowing and non-decimal numbers.
var pagingExtremes = []string{
	"0", "1", "-1", "20", "5000", "5001", "2147483647", "2147483648",
	strconv.Itoa(callevents.MaxStartIndex), strconv.Itoa(callevents.MaxStartIndex + 1),
	strconv.FormatInt(math.MaxInt64, 10), strconv.FormatInt(math.MinInt64, 10),
	"9223372036854775808", "-9223372036854775809", "184467440737095516160",
	"1e3", "0x10", " 7 ", "+3", "",
}

// referencePage is the documented paging rule, written out again: absent
// means startIndex 0 and count 20; otherwise a decimal integer (spaces
// around it allowed), 0 ≤ startIndex ≤ MaxStartIndex, 1 ≤ count ≤ 5000.
func referencePage(start, count string) (s, c int, valid bool) {
	read := func(text string, def int64) (int64, bool) {
		if text == "" {
			return def, true
		}
		n, err := strconv.ParseInt(strings.TrimSpace(text), 10, 64)
		return n, err == nil // past int64 is past every bound too
	}
	s64, okS := read(start, 0)
	c64, okC := read(count, callevents.PageCountDefault)
	if !okS || !okC || s64 < 0 || s64 > callevents.MaxStartIndex || c64 < 1 || c64 > callevents.MaxPageCount {
		return 0, 0, false
	}
	return int(s64), int(c64), true
}

// pagingBundle is a server whose extension 0003*210 has pagingItems Call
// Events, each with one delivery.
func pagingBundle(t testing.TB) *testBundle {
	t.Helper()
	b := setup(t, bundleOptions{})
	events := &callevents.CallEventService{Store: b.db}
	admin := callevents.Principal{ClientID: "admin", Scope: callevents.ScopeAdmin}
	for i := range pagingItems {
		url := fmt.Sprintf("http://127.0.0.1:9/%d", i)
		if _, err := events.AddCallEvent(context.Background(), admin, "0003*210", callevents.DialIn, callevents.CallEventUpdate{URL: &url}); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// checkPaging sends start and count (texts; "" for absent) to every edge
// that pages — the REST list, SOAP GetPhoneCallEvents and
// GetPhoneCallEventDeliveries — and checks the one rule: either the page
// referencePage describes or the paging error (400 paging_invalid, fault
// 307 Client), never a panic or a 500, whatever the size of the numbers.
func checkPaging(t *testing.T, b *testBundle, start, count string) {
	t.Helper()
	s, c, valid := referencePage(start, count)
	q := url.Values{}
	if start != "" {
		q.Set("startIndex", start)
	}
	if count != "" {
		q.Set("count", count)
	}
	r := b.restAs(t, "admin", "GET", uapiBase+"?"+q.Encode(), "")
	switch {
	case valid && r.status == 200:
		entries, _ := r.obj["entry"].([]any)
		if want := max(0, min(c, pagingItems-s)); len(entries) != want || r.obj["startIndex"] != strconv.Itoa(s) {
			t.Errorf("REST startIndex %q count %q: %d entries at %v, want %d at %d", start, count, len(entries), r.obj["startIndex"], want, s)
		}
	case !valid && r.status == 400 && r.errCode() == "paging_invalid":
	default:
		t.Errorf("REST startIndex %q count %q: HTTP %d %.300s; want a valid page: %v", start, count, r.status, r.raw, valid)
	}
	if !xmlText(start) || !xmlText(count) {
		return // not something a SOAP client can send
	}
	fields := ""
	for _, el := range [][2]string{{"startIndex", start}, {"count", count}} {
		if el[1] != "" {
			fields += "<v1:" + el[0] + ">" + xmlEscape(el[1]) + "</v1:" + el[0] + ">"
		}
	}
	for _, op := range []string{"GetPhoneCallEvents", "GetPhoneCallEventDeliveries"} {
		status, body := b.call(t, "admin", "<v1:"+op+"><v1:extension>0003*210</v1:extension>"+fields+"</v1:"+op+">")
		f, isFault := parseFault(t, body)
		switch {
		case valid && status == 200 && !isFault:
		case !valid && isFault && f.code == "307" && f.faultCode == "Client":
		default:
			t.Errorf("SOAP %s startIndex %q count %q: HTTP %d %.400s; want a valid page: %v", op, start, count, status, body, valid)
		}
	}
}

// Ensure every paging input at and past its bounds, on every edge, is a
// valid page or the paging error.
func TestPagingExtremes(t *testing.T) {
	b := pagingBundle(t)
	for _, start := range pagingExtremes {
		for _, count := range pagingExtremes {
			checkPaging(t, b, start, count)
		}
	}
}

// FuzzPaging is TestPagingExtremes for any startIndex and count text
// (go test -fuzz FuzzPaging ./service).
func FuzzPaging(f *testing.F) {
	for _, seed := range [][2]string{
		{"", ""}, {"2", "1"}, {"3", "5000"}, {"-0", "20"}, {"0", "0"},
		{strconv.FormatInt(math.MaxInt64, 10), "20"}, {"0", strconv.FormatInt(math.MaxInt64, 10)},
		{"9223372036854775808", "99999999999999999999"}, {"1e3", "0x10"}, {"\xff", "\x00"},
	} {
		f.Add(seed[0], seed[1])
	}
	b := pagingBundle(f)
	f.Fuzz(func(t *testing.T, start, count string) {
		checkPaging(t, b, start, count)
	})
}

// xmlText reports whether s can be sent as XML character data: UTF-8
// without control characters but tab, newline and carriage return.
func xmlText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) && r != '\t' && r != '\n' && r != '\r' || r == 0xFFFE || r == 0xFFFF {
			return false
		}
	}
	return true
}

// xmlEscape is s as XML character data.
func xmlEscape(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}
