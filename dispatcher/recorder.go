package dispatcher

import (
	"context"

	"github.com/callevents/callevents"
)

// maxRecordBatch bounds the outcomes committed in one transaction.
const maxRecordBatch = 256

// recorder commits attempt outcomes in batches. Each delivery goroutine
// hands its outcome over and waits for the commit; one goroutine writes all
// the outcomes waiting at that moment in one transaction (group commit). On
// SQLite's single writer that is the difference between a transaction per
// delivery and one per batch, with the same guarantee: an outcome is
// durable before its delivery's slot is free.
type recorder struct {
	in      chan *recordRequest
	stopped chan struct{}
}

type recordRequest struct {
	outcome callevents.AttemptOutcome
	err     error
	done    chan struct{}
}

func newRecorder() *recorder {
	return &recorder{in: make(chan *recordRequest), stopped: make(chan struct{})}
}

// record hands o to the recorder and waits until it is committed.
func (r *recorder) record(o callevents.AttemptOutcome) error {
	req := &recordRequest{outcome: o, done: make(chan struct{})}
	r.in <- req
	<-req.done
	return req.err
}

// stop waits for the outcomes handed over to be committed, and ends run.
// Nothing may call record any more.
func (r *recorder) stop() {
	close(r.in)
	<-r.stopped
}

// run commits batches until stop. ctx bounds each commit.
func (r *recorder) run(store callevents.DeliveryQueue, worker string, ctx func() (context.Context, context.CancelFunc)) {
	defer close(r.stopped)
	for first := range r.in {
		batch := []*recordRequest{first}
	drain:
		for len(batch) < maxRecordBatch {
			select {
			case req, ok := <-r.in:
				if !ok {
					break drain
				}
				batch = append(batch, req)
			default:
				break drain
			}
		}
		outcomes := make([]callevents.AttemptOutcome, len(batch))
		for i, req := range batch {
			outcomes[i] = req.outcome
		}
		cctx, cancel := ctx()
		err := store.RecordAttempts(cctx, worker, outcomes)
		cancel()
		for _, req := range batch {
			req.err = err
			close(req.done)
		}
	}
}
