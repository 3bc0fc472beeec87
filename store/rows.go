package store

import (
	"database/sql"
	"time"

	"github.com/callevents/callevents"
)

// callEventRow is a row of call_events. It never leaves the package.
type callEventRow struct {
	Seq        int64     `gorm:"column:seq;primaryKey;autoIncrement"`
	ID         string    `gorm:"column:id"`
	Extension  string    `gorm:"column:extension"`
	Type       int       `gorm:"column:type"`
	Method     int       `gorm:"column:method"`
	URL        string    `gorm:"column:url"`
	Status     int       `gorm:"column:status"`
	Note       string    `gorm:"column:note"`
	Secret     string    `gorm:"column:secret"`
	ModifiedAt time.Time `gorm:"column:modified_at"`
}

func (callEventRow) TableName() string { return "call_events" }

func newCallEventRow(c callevents.CallEvent) callEventRow {
	return callEventRow{
		ID:         c.ID,
		Extension:  string(c.Extension),
		Type:       int(c.Type),
		Method:     int(c.Method),
		URL:        c.URL,
		Status:     int(c.Status),
		Note:       c.Note,
		Secret:     c.Secret,
		ModifiedAt: storedTime(c.Modified),
	}
}

func (r callEventRow) callEvent() callevents.CallEvent {
	return callevents.CallEvent{
		ID:        r.ID,
		Extension: callevents.Extension(r.Extension),
		Type:      callevents.EventType(r.Type),
		Method:    callevents.Method(r.Method),
		URL:       r.URL,
		Status:    callevents.Status(r.Status),
		Note:      r.Note,
		Secret:    r.Secret,
		Modified:  r.ModifiedAt.UTC(),
	}
}

// storedTime is t as the database keeps it: UTC, whole seconds. Truncating
// here rather than letting the server round (MySQL does, MariaDB
// truncates) makes both backends return the same value.
func storedTime(t time.Time) time.Time { return t.UTC().Truncate(time.Second) }

// clientRow is a row of api_clients. It never leaves the package.
type clientRow struct {
	ID         string    `gorm:"column:id;primaryKey"`
	Name       string    `gorm:"column:name"`
	Scope      string    `gorm:"column:scope"`
	SecretHash string    `gorm:"column:secret_hash"`
	CreatedAt  time.Time `gorm:"column:created_at"`
}

func (clientRow) TableName() string { return "api_clients" }

func newClientRow(c callevents.Client) clientRow {
	return clientRow{ID: c.ID, Name: c.Name, Scope: string(c.Scope), SecretHash: c.SecretHash, CreatedAt: storedTime(c.Created)}
}

func (r clientRow) client() callevents.Client {
	return callevents.Client{ID: r.ID, Name: r.Name, Scope: callevents.Scope(r.Scope), SecretHash: r.SecretHash, Created: r.CreatedAt.UTC()}
}

// accessTokenRow is a row of access_tokens. It never leaves the package.
type accessTokenRow struct {
	Hash      string    `gorm:"column:hash;primaryKey"`
	ClientID  string    `gorm:"column:client_id"`
	ExpiresAt time.Time `gorm:"column:expires_at"`
}

func (accessTokenRow) TableName() string { return "access_tokens" }

// activityRow is a row of call_activities: an accepted report, kept so that
// the same report again adds nothing. It never leaves the package.
type activityRow struct {
	DedupeHash string    `gorm:"column:dedupe_hash;primaryKey"`
	AcceptedAt time.Time `gorm:"column:accepted_at"`
}

func (activityRow) TableName() string { return "call_activities" }

// deliveryRow is a row of deliveries. It never leaves the package.
type deliveryRow struct {
	Seq           int64      `gorm:"column:seq;primaryKey;autoIncrement"`
	ID            string     `gorm:"column:id"`
	CallEventID   string     `gorm:"column:call_event_id"`
	Extension     string     `gorm:"column:extension"`
	Type          int        `gorm:"column:type"`
	CallID        string     `gorm:"column:call_id"`
	Payload       string     `gorm:"column:payload"`
	OrderKey      string     `gorm:"column:order_key"`
	OrderHash     string     `gorm:"column:order_hash"`
	Sequence      int        `gorm:"column:sequence"`
	Origin        string     `gorm:"column:origin"`
	State         string     `gorm:"column:state"`
	Attempts      int        `gorm:"column:attempts"`
	NextAttemptAt time.Time  `gorm:"column:next_attempt_at"`
	LeaseUntil    *time.Time `gorm:"column:lease_until"`
	ClaimedBy     string     `gorm:"column:claimed_by"`
	CreatedAt     time.Time  `gorm:"column:created_at"`
	FinishedAt    *time.Time `gorm:"column:finished_at"`
	LastStatus    int        `gorm:"column:last_status"`
	LastError     string     `gorm:"column:last_error"`
}

func (deliveryRow) TableName() string { return "deliveries" }

// deliveryColumns are what scanDelivery reads, in its order: everything
// but the lease, which only the queue's own statements look at.
const deliveryColumns = "seq, id, call_event_id, extension, type, call_id, payload, order_key, order_hash, sequence, origin, state, attempts, next_attempt_at, created_at, finished_at, last_status, last_error"

// scanDelivery reads one row of deliveryColumns. Rows are scanned by hand:
// gorm's reflective scan is the larger part of a claim otherwise.
func scanDelivery(rows *sql.Rows) (deliveryRow, error) {
	var r deliveryRow
	var finished sql.NullTime
	err := rows.Scan(&r.Seq, &r.ID, &r.CallEventID, &r.Extension, &r.Type, &r.CallID, &r.Payload, &r.OrderKey,
		&r.OrderHash, &r.Sequence, &r.Origin, &r.State, &r.Attempts, &r.NextAttemptAt, &r.CreatedAt, &finished, &r.LastStatus, &r.LastError)
	if finished.Valid {
		r.FinishedAt = &finished.Time
	}
	return r, err
}

func scanDeliveries(rows *sql.Rows, err error) ([]deliveryRow, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []deliveryRow
	for rows.Next() {
		r, err := scanDelivery(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func (r deliveryRow) delivery() callevents.Delivery {
	d := callevents.Delivery{
		ID:            r.ID,
		CallEventID:   r.CallEventID,
		Extension:     callevents.Extension(r.Extension),
		Type:          callevents.EventType(r.Type),
		CallID:        r.CallID,
		Payload:       r.Payload,
		OrderKey:      r.OrderKey,
		Sequence:      r.Sequence,
		Origin:        r.Origin,
		State:         callevents.DeliveryState(r.State),
		Attempts:      r.Attempts,
		NextAttemptAt: r.NextAttemptAt.UTC(),
		Created:       r.CreatedAt.UTC(),
		LastStatus:    r.LastStatus,
		LastError:     r.LastError,
	}
	if r.FinishedAt != nil {
		d.Finished = r.FinishedAt.UTC()
	}
	return d
}

// attemptRow is a row of delivery_attempts. It never leaves the package.
type attemptRow struct {
	Seq         int64     `gorm:"column:seq;primaryKey;autoIncrement"`
	DeliverySeq int64     `gorm:"column:delivery_seq"`
	Attempt     int       `gorm:"column:attempt"`
	At          time.Time `gorm:"column:at"`
	StatusCode  int       `gorm:"column:status_code"`
	ErrorClass  string    `gorm:"column:error_class"`
	LatencyUS   int64     `gorm:"column:latency_us"`
}

func (attemptRow) TableName() string { return "delivery_attempts" }

// queueTime is t as the queue stores it: UTC, whole microseconds, the
// resolution of MySQL's DATETIME(6). Due-ness and leases need better than
// the second that Call Events keep, and truncating here makes both
// backends compare and return the same value.
func queueTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// maxErrorClass is the width of last_error and error_class.
const maxErrorClass = 64

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// insertBatch is the most rows one INSERT carries: 100 deliveries of 17
// columns stay far below every placeholder and packet limit, and SQLite's
// statement cache sees few shapes.
const insertBatch = 100

// inChunk bounds the values of one IN (…) list.
const inChunk = 500

// chunks calls fn with consecutive pieces of s of at most n elements.
func chunks[T any](s []T, n int, fn func([]T) error) error {
	for len(s) > 0 {
		k := min(n, len(s))
		if err := fn(s[:k]); err != nil {
			return err
		}
		s = s[k:]
	}
	return nil
}
