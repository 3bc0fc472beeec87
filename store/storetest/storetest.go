// Package storetest is a conformance suite for implementations of
// callevents.CallEventStore and callevents.ClientStore (Exercise) and of
// callevents.DeliveryStore (ExerciseDeliveries). It depends on the root
// package and not on package store, so any implementation can run it
// against a real database: call both from that implementation's tests.
// MySQLTestDSN gives such tests (and benchmarks) a throw-away MySQL
// database.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callevents/callevents"
)

// Store is what Exercise tests: both store interfaces on one value.
type Store interface {
	callevents.CallEventStore
	callevents.ClientStore
}

// Exercise runs the suite. open must return a new, empty, ready store for
// each call and close it in t.Cleanup; subtests call it in parallel.
func Exercise(t *testing.T, open func(t *testing.T) Store) {
	tests := []struct {
		name string
		run  func(t *testing.T, s Store)
	}{
		{"CallEventRoundTrip", testCallEventRoundTrip},
		{"CallEventIDsAreCaseSensitive", testCallEventIDsAreCaseSensitive},
		{"FindPagingAndFilters", testFindPagingAndFilters},
		{"CreateLimit", testCreateLimit},
		{"CreateLimitConcurrent", testCreateLimitConcurrent},
		{"CreateDuplicateID", testCreateDuplicateID},
		{"UpdateCallEvent", testUpdateCallEvent},
		{"UpdateCallEventNotFound", testUpdateCallEventNotFound},
		{"DeleteCallEvents", testDeleteCallEvents},
		{"Clients", testClients},
		{"CreateFirstClient", testCreateFirstClient},
		{"CreateFirstClientConcurrent", testCreateFirstClientConcurrent},
		{"DeleteClientDeletesTokens", testDeleteClientDeletesTokens},
		{"AccessTokens", testAccessTokens},
		{"ClientIDsAreExact", testClientIDsAreExact},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.run(t, open(t))
		})
	}
}

// base is a whole-second UTC time: stores keep whole seconds.
var base = time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)

// elsewhere is a zone that is not UTC, to check that stores return UTC.
var elsewhere = time.FixedZone("UTC+05:30", 5*3600+1800)

func extension(n int) callevents.Extension {
	return callevents.Extension(fmt.Sprintf("0003*%03d", n))
}

func newCallEvent(ext callevents.Extension, typ callevents.EventType, n int) callevents.CallEvent {
	return callevents.CallEvent{
		ID:        callevents.NewCallEventID(),
		Extension: ext,
		Type:      typ,
		Method:    callevents.MethodGET,
		URL:       fmt.Sprintf("https://receiver.example/hook/%d?ext=%s", n, ext),
		Status:    callevents.StatusEnabled,
		Note:      fmt.Sprintf("event %d", n),
		Modified:  base.Add(time.Duration(n) * time.Second),
	}
}

func ptr[T any](v T) *T { return &v }

func wantCode(t *testing.T, err error, code callevents.Code) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want code %d", code)
	}
	if got := callevents.ErrorCode(err, 0); got != code {
		t.Fatalf("got error %v (code %d), want code %d", err, got, code)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// sameCallEvent fails unless got equals want field by field, with got's
// time in UTC.
func sameCallEvent(t *testing.T, got, want callevents.CallEvent) {
	t.Helper()
	g, w := got, want
	g.Modified, w.Modified = time.Time{}, time.Time{}
	if g != w {
		t.Fatalf("got Call Event\n%+v\nwant\n%+v", got, want)
	}
	if !got.Modified.Equal(want.Modified) || got.Modified.Location() != time.UTC {
		t.Fatalf("got Modified %v, want %v in UTC", got.Modified, want.Modified.UTC())
	}
}

func sameCallEvents(t *testing.T, got, want []callevents.CallEvent) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d Call Events %v, want %d %v", len(got), ids(got), len(want), ids(want))
	}
	for i := range got {
		sameCallEvent(t, got[i], want[i])
	}
}

func ids(cs []callevents.CallEvent) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.ID
	}
	return out
}

func find(t *testing.T, s callevents.CallEventStore, f callevents.CallEventFilter) ([]callevents.CallEvent, int) {
	t.Helper()
	items, total, err := s.FindCallEvents(context.Background(), f)
	if err != nil {
		t.Fatalf("FindCallEvents(%+v): %v", f, err)
	}
	return items, total
}

func findOne(t *testing.T, s callevents.CallEventStore, c callevents.CallEvent) callevents.CallEvent {
	t.Helper()
	items, total := find(t, s, callevents.CallEventFilter{Extension: c.Extension, ID: &c.ID})
	if total != 1 || len(items) != 1 {
		t.Fatalf("finding %s: got %d items, total %d; want 1", c.ID, len(items), total)
	}
	return items[0]
}

func create(t *testing.T, s Store, cs ...callevents.CallEvent) {
	t.Helper()
	for _, c := range cs {
		if err := s.CreateCallEvent(context.Background(), c, callevents.MaxCallEventsPerExtensionDefault); err != nil {
			t.Fatalf("CreateCallEvent(%s): %v", c.ID, err)
		}
	}
}

func testCallEventRoundTrip(t *testing.T, s Store) {
	ext := extension(1)
	full := newCallEvent(ext, callevents.AnswerOut, 1)
	full.Method = callevents.MethodPOST
	full.Status = callevents.StatusDisabled
	// The longest URL, with characters that SQL or a LIKE would treat
	// specially.
	prefix := "https://receiver.example/p?q=%25_'\"\\&x="
	full.URL = prefix + strings.Repeat("u", callevents.MaxURLLength-len(prefix))
	// The longest note, in characters beyond the BMP (4 bytes in UTF-8).
	full.Note = strings.Repeat("☎📞", callevents.MaxNoteLength/2)
	full.Secret = strings.Repeat(`!~ 'x"\%_`, callevents.MaxSecretLength/8)[:callevents.MaxSecretLength]
	full.Modified = base.In(elsewhere)

	plain := newCallEvent(extension(9999), callevents.DialIn, 2)
	plain.Note, plain.Secret = "", ""
	create(t, s, full, plain)

	sameCallEvent(t, findOne(t, s, full), full)
	sameCallEvent(t, findOne(t, s, plain), plain)
	if got := findOne(t, s, full); len(got.URL) != callevents.MaxURLLength || got.Note != full.Note {
		t.Fatalf("URL or note changed on the way: %d bytes URL", len(got.URL))
	}
}

func testCallEventIDsAreCaseSensitive(t *testing.T, s Store) {
	ext := extension(2)
	lower := newCallEvent(ext, callevents.DialIn, 1)
	lower.ID = "abcdefghijklmnopqrstuvwxyz0123"
	upper := newCallEvent(ext, callevents.DialIn, 2)
	upper.ID = strings.ToUpper(lower.ID)
	create(t, s, lower, upper)
	sameCallEvent(t, findOne(t, s, lower), lower)
	sameCallEvent(t, findOne(t, s, upper), upper)
	mixed := "aBcdefghijklmnopqrstuvwxyz0123"
	if _, total := find(t, s, callevents.CallEventFilter{Extension: ext, ID: &mixed}); total != 0 {
		t.Fatalf("id %s matched %d Call Events, want 0", mixed, total)
	}
}

func testFindPagingAndFilters(t *testing.T, s Store) {
	a, b, none := extension(10), extension(11), extension(12)
	var all []callevents.CallEvent
	for i := range 12 {
		c := newCallEvent(a, callevents.EventType(i%5), i)
		all = append(all, c)
		create(t, s, c)
		create(t, s, newCallEvent(b, callevents.DialIn, 100+i)) // interleaved
	}

	items, total := find(t, s, callevents.CallEventFilter{Extension: a})
	if total != 12 {
		t.Fatalf("total %d, want 12", total)
	}
	sameCallEvents(t, items, all)

	for _, p := range []struct{ offset, limit, from, to int }{
		{0, 5, 0, 5}, {5, 5, 5, 10}, {10, 5, 10, 12}, {3, 0, 3, 12},
		{12, 5, 12, 12}, {100, 5, 12, 12}, {11, 1, 11, 12}, {0, 5000, 0, 12},
	} {
		items, total := find(t, s, callevents.CallEventFilter{Extension: a, Offset: p.offset, Limit: p.limit})
		if total != 12 {
			t.Fatalf("offset %d limit %d: total %d, want 12", p.offset, p.limit, total)
		}
		sameCallEvents(t, items, all[p.from:p.to])
	}

	dialIn := callevents.DialIn
	items, total = find(t, s, callevents.CallEventFilter{Extension: a, Type: &dialIn})
	if total != 3 {
		t.Fatalf("type filter: total %d, want 3", total)
	}
	sameCallEvents(t, items, []callevents.CallEvent{all[0], all[5], all[10]})
	items, total = find(t, s, callevents.CallEventFilter{Extension: a, Type: &dialIn, Offset: 1, Limit: 1})
	if total != 3 {
		t.Fatalf("paged type filter: total %d, want 3", total)
	}
	sameCallEvents(t, items, []callevents.CallEvent{all[5]})

	target := all[7] // type 2
	items, total = find(t, s, callevents.CallEventFilter{Extension: a, Type: &target.Type, ID: &target.ID})
	if total != 1 {
		t.Fatalf("id and type filter: total %d, want 1", total)
	}
	sameCallEvents(t, items, []callevents.CallEvent{target})
	for name, f := range map[string]callevents.CallEventFilter{
		"wrong type":      {Extension: a, Type: &dialIn, ID: &target.ID},
		"wrong extension": {Extension: b, ID: &target.ID},
		"unknown id":      {Extension: a, ID: ptr("nosuchidnosuchidnosuchidnosuch")},
		"no events":       {Extension: none},
	} {
		items, total := find(t, s, f)
		if total != 0 || len(items) != 0 {
			t.Fatalf("%s: got %d items, total %d; want none", name, len(items), total)
		}
	}
	if _, total := find(t, s, callevents.CallEventFilter{Extension: b, Limit: 1}); total != 12 {
		t.Fatalf("other extension: total %d, want 12", total)
	}
}

func testCreateLimit(t *testing.T, s Store) {
	ctx := context.Background()
	ext, other := extension(20), extension(21)
	var made []callevents.CallEvent
	for i := range 3 {
		c := newCallEvent(ext, callevents.EventType(i), i)
		must(t, s.CreateCallEvent(ctx, c, 3))
		made = append(made, c)
	}
	over := newCallEvent(ext, callevents.Hangup, 3)
	wantCode(t, s.CreateCallEvent(ctx, over, 3), callevents.CodeLimitReached)
	wantCode(t, s.CreateCallEvent(ctx, over, 2), callevents.CodeLimitReached)
	if _, total := find(t, s, callevents.CallEventFilter{Extension: ext}); total != 3 {
		t.Fatalf("total %d after refused creates, want 3", total)
	}
	// The limit counts per extension.
	must(t, s.CreateCallEvent(ctx, newCallEvent(other, callevents.DialIn, 4), 3))
	// Deleting makes room again.
	if _, err := s.DeleteCallEvents(ctx, callevents.CallEventFilter{Extension: ext, ID: &made[0].ID}); err != nil {
		t.Fatal(err)
	}
	must(t, s.CreateCallEvent(ctx, over, 3))
	wantCode(t, s.CreateCallEvent(ctx, newCallEvent(ext, callevents.Hangup, 5), 3), callevents.CodeLimitReached)
}

// createConcurrently starts n creators at once on ext with the given limit
// and returns how many succeeded; it fails on any error but 308.
func createConcurrently(t *testing.T, s Store, ext callevents.Extension, n, limit int) int {
	t.Helper()
	start := make(chan struct{})
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = s.CreateCallEvent(context.Background(), newCallEvent(ext, callevents.EventType(i%5), i), limit)
		})
	}
	close(start)
	wg.Wait()
	created := 0
	for _, err := range errs {
		switch {
		case err == nil:
			created++
		case callevents.ErrorCode(err, 0) != callevents.CodeLimitReached:
			t.Fatalf("concurrent create: %v", err)
		}
	}
	return created
}

func testCreateLimitConcurrent(t *testing.T, s Store) {
	ext := extension(30)
	// An empty extension: nothing to lock but the gap where rows will go.
	if got := createConcurrently(t, s, ext, 20, 10); got != 10 {
		t.Fatalf("%d of 20 concurrent creates succeeded with limit 10, want 10", got)
	}
	items, total := find(t, s, callevents.CallEventFilter{Extension: ext})
	if total != 10 {
		t.Fatalf("total %d after concurrent creates, want 10", total)
	}
	// Half full: existing rows to lock.
	for _, c := range items[:5] {
		if _, err := s.DeleteCallEvents(context.Background(), callevents.CallEventFilter{Extension: ext, ID: &c.ID}); err != nil {
			t.Fatal(err)
		}
	}
	if got := createConcurrently(t, s, ext, 20, 10); got != 5 {
		t.Fatalf("%d of 20 concurrent creates succeeded with 5 free places, want 5", got)
	}
	if _, total := find(t, s, callevents.CallEventFilter{Extension: ext}); total != 10 {
		t.Fatalf("total %d after the second round, want 10", total)
	}
}

func testCreateDuplicateID(t *testing.T, s Store) {
	c := newCallEvent(extension(40), callevents.DialIn, 1)
	create(t, s, c)
	dup := newCallEvent(extension(41), callevents.DialOut, 2)
	dup.ID = c.ID
	err := s.CreateCallEvent(context.Background(), dup, 100)
	wantCode(t, err, callevents.CodeUpdateFailed)
	sameCallEvent(t, findOne(t, s, c), c)
}

func testUpdateCallEvent(t *testing.T, s Store) {
	ctx := context.Background()
	ext := extension(50)
	c := newCallEvent(ext, callevents.DialOut, 1)
	c.Secret = "0123456789abcdef-secret"
	bystander := newCallEvent(ext, callevents.DialOut, 2)
	create(t, s, c, bystander)

	update := func(upd callevents.CallEventUpdate, now time.Time, want callevents.CallEvent) callevents.CallEvent {
		t.Helper()
		got, err := s.UpdateCallEvent(ctx, ext, c.Type, c.ID, upd, now)
		if err != nil {
			t.Fatalf("UpdateCallEvent: %v", err)
		}
		want.Modified = now
		sameCallEvent(t, got, want)
		sameCallEvent(t, findOne(t, s, c), want)
		return want
	}

	// Nil fields are left alone; Modified always moves.
	want := update(callevents.CallEventUpdate{}, base.Add(time.Hour), c)
	want.URL = "http://other.example/changed"
	want = update(callevents.CallEventUpdate{URL: &want.URL}, base.Add(2*time.Hour), want)
	want.Method = callevents.MethodPOST
	want = update(callevents.CallEventUpdate{Method: &want.Method}, base.Add(3*time.Hour), want)
	want.Status = callevents.StatusDisabled
	want = update(callevents.CallEventUpdate{Status: &want.Status}, base.Add(4*time.Hour), want)
	want.Note = "changed 📞"
	want = update(callevents.CallEventUpdate{Note: &want.Note}, base.Add(5*time.Hour), want)
	want.Secret = "another-secret-of-enough-length"
	want = update(callevents.CallEventUpdate{Secret: &want.Secret}, base.Add(6*time.Hour), want)
	// An empty note or secret clears it.
	want.Note, want.Secret = "", ""
	want = update(callevents.CallEventUpdate{Note: ptr(""), Secret: ptr("")}, base.Add(7*time.Hour), want)
	if findOne(t, s, c).HasSecret() {
		t.Fatal("the secret survived an update to empty")
	}
	// Everything at once, with a time outside UTC.
	want.URL, want.Method, want.Status, want.Note, want.Secret =
		"https://third.example/", callevents.MethodGET, callevents.StatusEnabled, "all", "yet-another-secret-value"
	update(callevents.CallEventUpdate{URL: &want.URL, Method: &want.Method, Status: &want.Status, Note: &want.Note, Secret: &want.Secret},
		base.Add(8*time.Hour).In(elsewhere), want)

	sameCallEvent(t, findOne(t, s, bystander), bystander)
}

func testUpdateCallEventNotFound(t *testing.T, s Store) {
	ctx := context.Background()
	ext := extension(60)
	c := newCallEvent(ext, callevents.Hangup, 1)
	create(t, s, c)
	note := "must not land"
	upd := callevents.CallEventUpdate{Note: &note}
	for name, key := range map[string]struct {
		ext callevents.Extension
		typ callevents.EventType
		id  string
	}{
		"unknown id":      {ext, c.Type, "nosuchidnosuchidnosuchidnosuch"},
		"wrong type":      {ext, callevents.DialIn, c.ID},
		"wrong extension": {extension(61), c.Type, c.ID},
	} {
		_, err := s.UpdateCallEvent(ctx, key.ext, key.typ, key.id, upd, base.Add(time.Hour))
		if callevents.ErrorCode(err, 0) != callevents.CodeCallEventNotFound {
			t.Fatalf("%s: got %v, want code 255", name, err)
		}
	}
	sameCallEvent(t, findOne(t, s, c), c)
}

func deleteCallEvents(t *testing.T, s callevents.CallEventStore, f callevents.CallEventFilter, want ...string) {
	t.Helper()
	got, err := s.DeleteCallEvents(context.Background(), f)
	if err != nil {
		t.Fatalf("DeleteCallEvents(%+v): %v", f, err)
	}
	if want == nil {
		want = []string{}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("DeleteCallEvents(%+v) = %v, want %v", f, got, want)
	}
}

func testDeleteCallEvents(t *testing.T, s Store) {
	ctx := context.Background()
	a, b := extension(70), extension(71)
	var cs []callevents.CallEvent
	for i, typ := range []callevents.EventType{0, 1, 0, 1, 2, 0} {
		cs = append(cs, newCallEvent(a, typ, i))
	}
	create(t, s, cs...)
	others := []callevents.CallEvent{newCallEvent(b, 0, 10), newCallEvent(b, 1, 11)}
	create(t, s, others...)
	dialIn, dialOut := callevents.DialIn, callevents.DialOut

	// One by id and type.
	deleteCallEvents(t, s, callevents.CallEventFilter{Extension: a, Type: &dialOut, ID: &cs[1].ID}, cs[1].ID)
	// Gone, wrong type, wrong extension: 255, and nothing deleted.
	for name, f := range map[string]callevents.CallEventFilter{
		"deleted already": {Extension: a, Type: &dialOut, ID: &cs[1].ID},
		"wrong type":      {Extension: a, Type: &dialOut, ID: &cs[0].ID},
		"wrong extension": {Extension: a, ID: &others[0].ID},
	} {
		_, err := s.DeleteCallEvents(ctx, f)
		if callevents.ErrorCode(err, 0) != callevents.CodeCallEventNotFound {
			t.Fatalf("%s: got %v, want code 255", name, err)
		}
	}
	// By id alone.
	deleteCallEvents(t, s, callevents.CallEventFilter{Extension: a, ID: &cs[4].ID}, cs[4].ID)
	// By type, paging ignored, in creation order.
	deleteCallEvents(t, s, callevents.CallEventFilter{Extension: a, Type: &dialIn, Offset: 1, Limit: 1}, cs[0].ID, cs[2].ID, cs[5].ID)
	deleteCallEvents(t, s, callevents.CallEventFilter{Extension: a, Type: &dialIn})
	// All of the extension.
	deleteCallEvents(t, s, callevents.CallEventFilter{Extension: a}, cs[3].ID)
	deleteCallEvents(t, s, callevents.CallEventFilter{Extension: a})

	items, _ := find(t, s, callevents.CallEventFilter{Extension: b})
	sameCallEvents(t, items, others)
	deleteCallEvents(t, s, callevents.CallEventFilter{Extension: b}, others[0].ID, others[1].ID)
}

func newClient(n int, created time.Time) callevents.Client {
	return callevents.Client{
		ID:         fmt.Sprintf("client%02dAbCdEfGhIjKlMnOpQr", n),
		Name:       fmt.Sprintf("client №%d", n),
		Scope:      callevents.Scope(fmt.Sprintf("ext:0003*%03d", n)),
		SecretHash: fmt.Sprintf("$2a$10$%053d", n),
		Created:    created,
	}
}

func sameClient(t *testing.T, got, want callevents.Client) {
	t.Helper()
	g, w := got, want
	g.Created, w.Created = time.Time{}, time.Time{}
	if g != w || !got.Created.Equal(want.Created) || got.Created.Location() != time.UTC {
		t.Fatalf("got client %+v, want %+v (in UTC)", got, want)
	}
}

func sameClients(t *testing.T, got, want []callevents.Client) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d clients %+v, want %d", len(got), got, len(want))
	}
	for i := range got {
		sameClient(t, got[i], want[i])
	}
}

func testClients(t *testing.T, s Store) {
	ctx := context.Background()
	got, err := s.FindClients(ctx)
	must(t, err)
	sameClients(t, got, nil)

	c1 := newClient(1, base.In(elsewhere))
	c1.Scope = callevents.ScopeAdmin
	c2 := newClient(2, base.Add(time.Second))
	c2.Scope = "org:0003"
	c3 := newClient(3, base.Add(-5*time.Second)) // created last, yet oldest
	c3.Scope = callevents.ScopePBX
	for _, c := range []callevents.Client{c1, c2, c3} {
		must(t, s.CreateClient(ctx, c))
	}
	for _, c := range []callevents.Client{c1, c2, c3} {
		got, err := s.FindClientByID(ctx, c.ID)
		must(t, err)
		sameClient(t, got, c)
	}
	all, err := s.FindClients(ctx)
	must(t, err)
	sameClients(t, all, []callevents.Client{c3, c1, c2})

	_, err = s.FindClientByID(ctx, "nosuchclient")
	if !errors.Is(err, callevents.ErrClientNotFound) {
		t.Fatalf("unknown client: got %v, want ErrClientNotFound", err)
	}
	_, err = s.FindClientByID(ctx, strings.ToUpper(c1.ID))
	if !errors.Is(err, callevents.ErrClientNotFound) {
		t.Fatalf("client id in another case: got %v, want ErrClientNotFound", err)
	}
	dup := newClient(4, base)
	dup.ID = c1.ID
	wantCode(t, s.CreateClient(ctx, dup), callevents.CodeUpdateFailed)

	must(t, s.DeleteClient(ctx, c1.ID))
	if err := s.DeleteClient(ctx, c1.ID); !errors.Is(err, callevents.ErrClientNotFound) {
		t.Fatalf("deleting a deleted client: got %v, want ErrClientNotFound", err)
	}
	all, err = s.FindClients(ctx)
	must(t, err)
	sameClients(t, all, []callevents.Client{c3, c2})
}

func testCreateFirstClient(t *testing.T, s Store) {
	ctx := context.Background()
	first := newClient(1, base)
	created, err := s.CreateFirstClient(ctx, first)
	must(t, err)
	if !created {
		t.Fatal("CreateFirstClient on an empty store created nothing")
	}
	created, err = s.CreateFirstClient(ctx, newClient(2, base))
	must(t, err)
	if created {
		t.Fatal("CreateFirstClient created a second client")
	}
	all, err := s.FindClients(ctx)
	must(t, err)
	sameClients(t, all, []callevents.Client{first})
}

func testCreateFirstClientConcurrent(t *testing.T, s Store) {
	const n = 10
	start := make(chan struct{})
	created := make([]bool, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			created[i], errs[i] = s.CreateFirstClient(context.Background(), newClient(i, base))
		})
	}
	close(start)
	wg.Wait()
	winner := -1
	for i := range n {
		must(t, errs[i])
		if created[i] {
			if winner >= 0 {
				t.Fatalf("callers %d and %d both created the first client", winner, i)
			}
			winner = i
		}
	}
	if winner < 0 {
		t.Fatal("no caller created the first client")
	}
	all, err := s.FindClients(context.Background())
	must(t, err)
	sameClients(t, all, []callevents.Client{newClient(winner, base)})
}

func token(n int, clientID string, expires time.Time) callevents.AccessToken {
	return callevents.AccessToken{Hash: fmt.Sprintf("%064x", 0xabcdef00+n), ClientID: clientID, Expires: expires}
}

func sameToken(t *testing.T, s Store, want callevents.AccessToken) {
	t.Helper()
	got, client, err := s.FindAccessToken(context.Background(), want.Hash)
	if err != nil {
		t.Fatalf("FindAccessToken(%s): %v", want.Hash, err)
	}
	if got.Hash != want.Hash || got.ClientID != want.ClientID || !got.Expires.Equal(want.Expires) || got.Expires.Location() != time.UTC {
		t.Fatalf("got token %+v, want %+v (in UTC)", got, want)
	}
	// The token comes with its client, exactly as FindClientByID reads it.
	byID, err := s.FindClientByID(context.Background(), want.ClientID)
	must(t, err)
	if client != byID {
		t.Fatalf("FindAccessToken returned client %+v, FindClientByID %+v", client, byID)
	}
}

func tokenGone(t *testing.T, s Store, hash string) {
	t.Helper()
	_, _, err := s.FindAccessToken(context.Background(), hash)
	if !errors.Is(err, callevents.ErrAccessTokenNotFound) {
		t.Fatalf("FindAccessToken(%s): got %v, want ErrAccessTokenNotFound", hash, err)
	}
}

func testDeleteClientDeletesTokens(t *testing.T, s Store) {
	ctx := context.Background()
	c1, c2 := newClient(1, base), newClient(2, base)
	must(t, s.CreateClient(ctx, c1))
	must(t, s.CreateClient(ctx, c2))
	t1, t2, t3 := token(1, c1.ID, base.Add(time.Hour)), token(2, c1.ID, base.Add(-time.Hour)), token(3, c2.ID, base.Add(time.Hour))
	for _, tok := range []callevents.AccessToken{t1, t2, t3} {
		must(t, s.CreateAccessToken(ctx, tok))
	}
	must(t, s.DeleteClient(ctx, c1.ID))
	tokenGone(t, s, t1.Hash)
	tokenGone(t, s, t2.Hash)
	sameToken(t, s, t3)
	if _, err := s.FindClientByID(ctx, c1.ID); !errors.Is(err, callevents.ErrClientNotFound) {
		t.Fatalf("deleted client: got %v, want ErrClientNotFound", err)
	}
}

func testAccessTokens(t *testing.T, s Store) {
	ctx := context.Background()
	c := newClient(1, base)
	must(t, s.CreateClient(ctx, c))
	now := base.Add(24 * time.Hour)
	live := token(1, c.ID, now.Add(callevents.TokenTTLDefault).In(elsewhere))
	expired := token(2, c.ID, now.Add(-time.Second))
	edge := token(3, c.ID, now) // expires at now: not "before now"
	for _, tok := range []callevents.AccessToken{live, expired, edge} {
		must(t, s.CreateAccessToken(ctx, tok))
	}
	sameToken(t, s, live)
	sameToken(t, s, expired) // expired tokens are found: the caller says 102
	sameToken(t, s, edge)
	tokenGone(t, s, token(4, c.ID, now).Hash)

	must(t, s.DeleteExpiredAccessTokens(ctx, now.In(elsewhere)))
	tokenGone(t, s, expired.Hash)
	sameToken(t, s, live)
	sameToken(t, s, edge)
	must(t, s.DeleteExpiredAccessTokens(ctx, now))
	sameToken(t, s, live)
}

// Client ids compare exactly on every backend: MySQL's PAD SPACE
// collations would take "id " for "id", so the store checks the id it
// reads back. Tested through the Authenticator too, since issuing a token
// is where a caller's client id meets the store.
func testClientIDsAreExact(t *testing.T, s Store) {
	ctx := context.Background()
	c, secret, err := callevents.NewClient("exact", callevents.ScopeAdmin, base)
	must(t, err)
	c.ID = "exactClientAbCdEf0123456"
	must(t, s.CreateClient(ctx, c))
	near := []string{c.ID + " ", c.ID + "  ", strings.ToUpper(c.ID), strings.ToLower(c.ID), " " + c.ID}
	for _, id := range near {
		if _, err := s.FindClientByID(ctx, id); !errors.Is(err, callevents.ErrClientNotFound) {
			t.Errorf("FindClientByID(%q): got %v, want ErrClientNotFound", id, err)
		}
		if err := s.CreateAccessToken(ctx, token(1, id, base.Add(time.Hour))); !errors.Is(err, callevents.ErrClientNotFound) {
			t.Errorf("CreateAccessToken for client %q: got %v, want ErrClientNotFound", id, err)
		}
		if err := s.DeleteClient(ctx, id); !errors.Is(err, callevents.ErrClientNotFound) {
			t.Errorf("DeleteClient(%q): got %v, want ErrClientNotFound", id, err)
		}
	}
	got, err := s.FindClientByID(ctx, c.ID)
	must(t, err)
	sameClient(t, got, c)

	auth := &callevents.Authenticator{Store: s, Now: func() time.Time { return base }}
	for _, id := range near {
		if _, _, err := auth.IssueToken(ctx, id, secret); callevents.ErrorCode(err, 0) != callevents.CodeAuthInvalid {
			t.Errorf("IssueToken(%q): got %v, want code %d", id, err, callevents.CodeAuthInvalid)
		}
	}
	tok, _, err := auth.IssueToken(ctx, c.ID, secret)
	must(t, err)
	p, err := auth.AuthenticateToken(ctx, tok)
	must(t, err)
	if p.ClientID != c.ID {
		t.Fatalf("token of client %q, want %q", p.ClientID, c.ID)
	}
}
