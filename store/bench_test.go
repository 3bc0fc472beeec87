package store_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callevents/callevents"
	"github.com/callevents/callevents/store"
	"github.com/callevents/callevents/store/testdb"
)

// benchBackends are the databases the benchmarks compare (backends, in
// lower case as sub-benchmark names); MySQL skips without TEST_MYSQL_DSN.
var benchBackends = []struct {
	name string
	dsn  func(b testing.TB) string
}{
	{"sqlite", func(b testing.TB) string { return testdb.DSN(b, store.DialectSQLite) }},
	// Seeding a million rows takes longer than the default read timeout.
	{"mysql", func(b testing.TB) string { return testdb.DSN(b, store.DialectMySQL) + "?readTimeout=10m" }},
}

// benchNow is when the benchmarks claim: everything seeded is due by then.
var benchNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// BenchmarkClaimDue measures claiming a batch of 50 due deliveries beside
// 1,000 and 1,000,000 finished ones: the claim's cost must not grow with
// the finished rows that pile up between cleanings. Each of the 50 has an
// earlier, delivered delivery of its order key (the call's Dial-Out before
// its Hangup), so the ordering check finds a row to look at. The batch is
// released again, untimed, after each claim.
//
//	TEST_MYSQL_DSN=mysql://root@127.0.0.1:3306/ go test ./store -run '^$' -bench ClaimDue -benchtime 2000x
func BenchmarkClaimDue(b *testing.B) {
	const batch = 50
	for _, backend := range benchBackends {
		b.Run(backend.name, func(b *testing.B) {
			for _, finished := range []int{1000, 1_000_000} {
				b.Run(fmt.Sprintf("finished=%d", finished), func(b *testing.B) {
					db := testdb.MustOpenDSN(b, backend.dsn(b), store.Options{})
					seedQueue(b, db, batch, finished)
					b.ResetTimer()
					for b.Loop() {
						claimAndRelease(b, db, callevents.Claim{Worker: "bench", N: batch, Now: benchNow, Lease: time.Minute}, batch)
					}
				})
			}
		})
	}
}

// claimAndRelease claims with c, wants want deliveries, and gives them
// back untimed, so that the next claim finds the same queue.
func claimAndRelease(b *testing.B, db *store.DB, c callevents.Claim, want int) {
	ctx := context.Background()
	ds, err := db.ClaimDue(ctx, c)
	if err != nil || len(ds) != want {
		b.Fatalf("ClaimDue = %d deliveries, %v; want %d", len(ds), err, want)
	}
	b.StopTimer()
	ids := make([]string, len(ds))
	for i, d := range ds {
		ids[i] = d.ID
	}
	if err := db.ReleaseClaims(ctx, "bench", ids); err != nil {
		b.Fatal(err)
	}
	b.StartTimer()
}

// seedQueue leaves db with calls delivered Dial-Outs and calls pending
// Hangups of the same calls to the same receiver, through the store's own
// methods, and finished-calls more delivered deliveries seeded in bulk.
func seedQueue(b testing.TB, db *store.DB, calls, finished int) {
	ctx := context.Background()
	ext := callevents.Extension("0005*100")
	for _, typ := range []callevents.EventType{callevents.DialOut, callevents.Hangup} {
		c := callevents.CallEvent{ID: callevents.NewCallEventID(), Extension: ext, Type: typ,
			URL: fmt.Sprintf("https://receiver.example/%d", typ), Status: callevents.StatusEnabled, Modified: benchNow}
		if err := db.CreateCallEvent(ctx, c, 100); err != nil {
			b.Fatal(err)
		}
	}
	activities := func(phase callevents.CallPhase) []callevents.CallActivity {
		acts := make([]callevents.CallActivity, calls)
		for i := range acts {
			acts[i] = callevents.CallActivity{CallID: fmt.Sprintf("call-%d", i), Phase: phase, CallerExtension: string(ext), CalledNumber: "200"}
		}
		return acts
	}
	start := time.Now()
	if _, err := db.AcceptActivity(ctx, activities(callevents.PhaseDial), benchNow.Add(-time.Hour), nil); err != nil {
		b.Fatal(err)
	}
	ds, err := db.ClaimDue(ctx, callevents.Claim{Worker: "seed", N: calls, Now: benchNow.Add(-time.Hour), Lease: time.Minute})
	if err != nil || len(ds) != calls {
		b.Fatalf("ClaimDue = %d, %v", len(ds), err)
	}
	for _, d := range ds {
		err := db.RecordAttempts(ctx, "seed", []callevents.AttemptOutcome{{DeliveryID: d.ID, Next: callevents.DeliveryDelivered,
			Attempt: callevents.DeliveryAttempt{Attempt: 1, At: benchNow.Add(-time.Hour), StatusCode: 200}}})
		if err != nil {
			b.Fatal(err)
		}
	}
	if err := seedFinished(ctx, db, finished-calls); err != nil {
		b.Fatal(err)
	}
	if _, err := db.AcceptActivity(ctx, activities(callevents.PhaseHangup), benchNow.Add(-time.Minute), nil); err != nil {
		b.Fatal(err)
	}
	b.Logf("seeded %d finished deliveries on %s in %v", finished, db.Dialect(), time.Since(start).Round(time.Millisecond))
}

// seedColumns and seedValues make a delivered delivery of a call of its
// own; seedValues' one placeholder is the call's number, an SQL expression.
const seedColumns = "id, call_event_id, extension, type, call_id, payload, order_key, order_hash, state, attempts, next_attempt_at, created_at, finished_at, last_status, last_error"

// seedFinished inserts n delivered deliveries in a few statements: on
// SQLite one INSERT … SELECT over a recursive count, on MySQL a thousand
// that way and then INSERT … SELECT doublings of the seeded rows. Their ids
// and order hashes are synthetic and ascending, so that the inserts append
// to the indexes: random ones (as real hashes are) made seeding a million
// rows take minutes once the indexes outgrew the caches. The claim reads
// none of these rows' keys, so it does not care.
func seedFinished(ctx context.Context, db *store.DB, n int) error {
	if n <= 0 {
		return nil
	}
	const payload = "CallID=seed&CallerIDNum=100&CallerIDName=&CalledDID=&CalledExtension=&CallStatus=CALLING&CallFlow=OUT&CallerExtension=0005%2A100&CalledNumber=200&CallAPIID="
	at := benchNow.Add(-2 * time.Hour)
	if db.Dialect() == store.DialectSQLite {
		return db.ExecForTest(ctx, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
INSERT INTO deliveries (`+seedColumns+`)
SELECT printf('dlv_seed_%010d', i), 'seedcalleventseedcalleventseed', '0005*100', 1, 'seed-' || i, ?,
       'https://seed.example seed-' || i, printf('%064d', i), 'delivered', 1, ?, ?, ?, 200, '' FROM n`, n, payload, at, at, at)
	}
	first := min(n, 1000)
	err := db.ExecForTest(ctx, `INSERT INTO deliveries (`+seedColumns+`)
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
SELECT CONCAT('dlv_seed_00', LPAD(i, 10, '0')), 'seedcalleventseedcalleventseed', '0005*100', 1, CONCAT('seed-00-', i), ?,
       CONCAT('https://seed.example seed-00-', i), LPAD(CONCAT('00', LPAD(i, 10, '0')), 64, '0'), 'delivered', 1, ?, ?, ?, 200, '' FROM n`,
		first, payload, at, at, at)
	for round, have := 1, first; err == nil && have < n; round++ {
		// Each round copies up to as many seeded rows as there are, under
		// ids and order keys of its own: its number, then the source's seq.
		more := min(have, n-have)
		tag := fmt.Sprintf("%02d", round)
		err = db.ExecForTest(ctx, `INSERT INTO deliveries (`+seedColumns+`)
SELECT CONCAT('dlv_seed_', ?, LPAD(seq, 10, '0')), call_event_id, extension, type, CONCAT('seed-', ?, '-', seq), payload,
       CONCAT('https://seed.example seed-', ?, '-', seq), LPAD(CONCAT(?, LPAD(seq, 10, '0')), 64, '0'),
       state, attempts, next_attempt_at, created_at, finished_at, last_status, last_error
FROM deliveries WHERE call_event_id = 'seedcalleventseedcalleventseed' ORDER BY seq LIMIT ?`, tag, tag, tag, tag, more)
		have += more
	}
	return err
}

// BenchmarkAcceptActivity measures the PBX intake's store call: one
// request of batch activities (dial, both extensions set), each fanning out
// to two Call Events on each extension, so 4 deliveries per activity.
// ns/op divided by batch is the cost of one activity.
func BenchmarkAcceptActivity(b *testing.B) {
	for _, backend := range benchBackends {
		b.Run(backend.name, func(b *testing.B) {
			for _, batch := range []int{1, 100} {
				b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
					ctx := context.Background()
					db := testdb.MustOpenDSN(b, backend.dsn(b), store.Options{})
					for _, ext := range []callevents.Extension{"0005*100", "0005*200"} {
						for i, typ := range []callevents.EventType{callevents.DialOut, callevents.DialIn, callevents.DialOut, callevents.DialIn} {
							c := callevents.CallEvent{ID: callevents.NewCallEventID(), Extension: ext, Type: typ,
								URL: fmt.Sprintf("https://receiver%d.example/", i), Status: callevents.StatusEnabled, Modified: benchNow}
							if err := db.CreateCallEvent(ctx, c, 100); err != nil {
								b.Fatal(err)
							}
						}
					}
					acts := make([]callevents.CallActivity, batch)
					call := 0
					for b.Loop() {
						for i := range acts {
							call++
							acts[i] = callevents.CallActivity{CallID: fmt.Sprintf("call-%d", call), Phase: callevents.PhaseDial,
								CallerExtension: "0005*100", CalledExtension: "0005*200", CallerIDNum: "100", CalledNumber: "200"}
						}
						n, err := db.AcceptActivity(ctx, acts, benchNow, nil)
						if err != nil || n.Queued != 4*batch {
							b.Fatalf("AcceptActivity = %+v, %v; want %d queued", n, err, 4*batch)
						}
					}
					b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/activity")
				})
			}
		})
	}
}

// BenchmarkRecordAttempt measures reporting one delivered attempt, the
// store's share of every delivery after its claim: one caller at a time,
// and 16 at once, as 16 dispatchers sharing the store would report (a
// dispatcher's own outcomes reach the store in batches: its recorder).
func BenchmarkRecordAttempt(b *testing.B) {
	for _, backend := range benchBackends {
		b.Run(backend.name, func(b *testing.B) {
			for _, callers := range []int{1, 16} {
				b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) {
					ctx := context.Background()
					db := testdb.MustOpenDSN(b, backend.dsn(b), store.Options{})
					ds := claimedDeliveries(b, db, b.N)
					var next atomic.Int64
					b.SetParallelism(callers)
					b.ResetTimer()
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							d := ds[next.Add(1)-1]
							err := db.RecordAttempts(ctx, "bench", []callevents.AttemptOutcome{{DeliveryID: d.ID, Next: callevents.DeliveryDelivered,
								Attempt: callevents.DeliveryAttempt{Attempt: d.Attempts, At: benchNow, StatusCode: 200, Latency: time.Millisecond}}})
							if err != nil {
								b.Error(err)
								return
							}
						}
					})
				})
			}
		})
	}
}

// claimedDeliveries queues and claims n deliveries, one per call.
func claimedDeliveries(b *testing.B, db *store.DB, n int) []callevents.Delivery {
	ctx := context.Background()
	c := callevents.CallEvent{ID: callevents.NewCallEventID(), Extension: "0005*100", Type: callevents.DialOut,
		URL: "https://receiver.example/", Status: callevents.StatusEnabled, Modified: benchNow}
	if err := db.CreateCallEvent(ctx, c, 100); err != nil {
		b.Fatal(err)
	}
	var ds []callevents.Delivery
	for len(ds) < n {
		acts := make([]callevents.CallActivity, min(1000, n-len(ds)))
		for i := range acts {
			acts[i] = callevents.CallActivity{CallID: fmt.Sprintf("call-%d", len(ds)+i), Phase: callevents.PhaseDial, CallerExtension: "0005*100"}
		}
		if _, err := db.AcceptActivity(ctx, acts, benchNow, nil); err != nil {
			b.Fatal(err)
		}
		got, err := db.ClaimDue(ctx, callevents.Claim{Worker: "bench", N: len(acts), Now: benchNow, Lease: time.Hour})
		if err != nil || len(got) != len(acts) {
			b.Fatalf("ClaimDue = %d, %v; want %d", len(got), err, len(acts))
		}
		ds = append(ds, got...)
	}
	return ds
}

// BenchmarkClaimPastBacklog measures the claims of a dispatcher whose one
// receiver origin has a backlog of 20,000 due deliveries and no room left
// (fair share), while another origin has 50 due: "pass-over" looks past
// the backlog for those 50 (and must find them all), "oldest" is the
// ordinary claim that reads only the oldest due rows and takes its room of
// 32 from the backlog. The batch is released again, untimed.
//
//	TEST_MYSQL_DSN=mysql://root@127.0.0.1:3306/ go test ./store -run '^$' -bench ClaimPastBacklog -benchtime 200x
func BenchmarkClaimPastBacklog(b *testing.B) {
	const backlog, others = 20000, 50
	for _, backend := range benchBackends {
		b.Run(backend.name, func(b *testing.B) {
			ctx := context.Background()
			db := testdb.MustOpenDSN(b, backend.dsn(b), store.Options{})
			for ext, url := range map[callevents.Extension]string{"0005*100": "https://busy.example/in", "0005*200": "https://quiet.example/in"} {
				c := callevents.CallEvent{ID: callevents.NewCallEventID(), Extension: ext, Type: callevents.DialOut,
					URL: url, Status: callevents.StatusEnabled, Modified: benchNow}
				if err := db.CreateCallEvent(ctx, c, 100); err != nil {
					b.Fatal(err)
				}
			}
			report := func(ext string, n int, at time.Time) {
				acts := make([]callevents.CallActivity, n)
				for i := range acts {
					acts[i] = callevents.CallActivity{CallID: fmt.Sprintf("%s-%d", ext, i), Phase: callevents.PhaseDial, CallerExtension: ext, CalledNumber: "1"}
				}
				for len(acts) > 0 {
					k := min(len(acts), callevents.MaxActivitiesPerRequest)
					if _, err := db.AcceptActivity(ctx, acts[:k], at, nil); err != nil {
						b.Fatal(err)
					}
					acts = acts[k:]
				}
			}
			report("0005*100", backlog, benchNow.Add(-time.Hour))
			report("0005*200", others, benchNow.Add(-time.Minute))
			for _, tc := range []struct {
				name string
				c    callevents.Claim
				want int
			}{
				{"pass-over", callevents.Claim{Room: map[string]int{"https://busy.example": 0}, PassOver: true}, others},
				{"oldest", callevents.Claim{Room: map[string]int{"https://busy.example": 32}}, 32},
			} {
				b.Run(tc.name, func(b *testing.B) {
					c := tc.c
					c.Worker, c.N, c.Now, c.Lease, c.DefaultRoom, c.OrderHold = "bench", 128, benchNow, time.Minute, 64, time.Minute
					for b.Loop() {
						claimAndRelease(b, db, c, tc.want)
					}
				})
			}
		})
	}
}
