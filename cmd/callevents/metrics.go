package main

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/callevents/callevents"
)

// queueStatsTimeout bounds the queue query made at each scrape.
const queueStatsTimeout = 2 * time.Second

// metrics is the Prometheus callevents.Observer, on a private registry
// (with the Go and process collectors) served at GET /metrics.
type metrics struct {
	registry     *prometheus.Registry
	activities   *prometheus.CounterVec
	rejected     *prometheus.CounterVec
	deliveries   *prometheus.CounterVec
	attemptTime  prometheus.Histogram
	requests     *prometheus.CounterVec
	amiConnected prometheus.Gauge
	queued       prometheus.Counter
	breakersOpen prometheus.Gauge
	// breakers tells the console which breakers are open.
	breakers     callevents.BreakerBoard
	breakerMoves *prometheus.CounterVec
}

var _ callevents.Observer = (*metrics)(nil)

// newMetrics registers every metric; queue, when set, is read at each
// scrape for the queue gauges.
func newMetrics(queue callevents.QueueStatsReader, log *slog.Logger) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		activities: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "callevents_intake_activities_total",
			Help: "Call activities reported by the PBX (HTTP intake and AMI) that reached validation, by result: accepted (stored, deduplicated) or rejected (their request was refused; nothing stored).",
		}, []string{"result"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "callevents_intake_rejected_total",
			Help: "Intake requests (HTTP intake and AMI) refused by the activity service, by error code (SPEC.md §4): 117/400/254 invalid activity, 103 wrong scope, 151/152 internal (database).",
		}, []string{"code"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "callevents_deliveries_total",
			Help: "Recorded delivery attempts, by outcome (the state the delivery moved to: delivered, pending = retry scheduled, failed, cancelled) and error class (empty on success).",
		}, []string{"outcome", "error_class"}),
		attemptTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "callevents_delivery_attempt_seconds",
			Help:    "Duration of each recorded delivery attempt (the webhook request).",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "callevents_requests_total",
			Help: "Requests answered, by edge (soap, rest, intake, oauth), operation (SOAP operation, REST method and route, events, token) and code (0 success, else the SPEC.md §4 error code).",
		}, []string{"edge", "operation", "code"}),
		amiConnected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "callevents_ami_connected",
			Help: "1 while the AMI source is logged in to Asterisk, else 0.",
		}),
	}
	m.queued = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "callevents_intake_queued_total",
		Help: "Deliveries queued by accepted call activity.",
	})
	m.breakersOpen = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "callevents_dispatch_breakers_open",
		Help: "Circuit breakers (one per organization and receiver origin) open or half-open in this process: their due deliveries wait, attempts unspent, while a probe tests the receiver.",
	})
	m.breakerMoves = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "callevents_dispatch_breaker_transitions_total",
		Help: "Circuit breaker state changes (per organization and receiver origin) in this process, by the state entered: open (paused after consecutive failures, or a failed probe), half_open (probe sent), closed (the receiver answered again).",
	}, []string{"state"})
	for _, st := range []callevents.BreakerState{callevents.BreakerOpen, callevents.BreakerHalfOpen, callevents.BreakerClosed} {
		m.breakerMoves.WithLabelValues(string(st))
	}
	m.registry.MustRegister(m.activities, m.rejected, m.deliveries, m.attemptTime, m.requests, m.amiConnected, m.queued,
		m.breakersOpen, m.breakerMoves,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.activities.WithLabelValues("accepted")
	m.activities.WithLabelValues("rejected")
	if queue != nil {
		m.registry.MustRegister(&queueCollector{queue: queue, log: log})
	}
	return m
}

// handler serves the registry in the Prometheus exposition format.
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry})
}

func (m *metrics) ActivityAccepted(activities, queued int) {
	m.activities.WithLabelValues("accepted").Add(float64(activities))
	m.queued.Add(float64(queued))
}

func (m *metrics) ActivityRejected(activities int, code callevents.Code) {
	m.activities.WithLabelValues("rejected").Add(float64(activities))
	m.rejected.WithLabelValues(strconv.Itoa(int(code))).Inc()
}

func (m *metrics) DeliveryAttempted(next callevents.DeliveryState, errorClass string, latency time.Duration) {
	m.deliveries.WithLabelValues(string(next), errorClass).Inc()
	m.attemptTime.Observe(latency.Seconds())
}

func (m *metrics) RequestServed(edge, operation string, code callevents.Code) {
	m.requests.WithLabelValues(edge, operation, strconv.Itoa(int(code))).Inc()
}

func (m *metrics) BreakerChanged(organization, origin string, state callevents.BreakerState, open int) {
	m.breakers.BreakerChanged(organization, origin, state)
	m.breakerMoves.WithLabelValues(string(state)).Inc()
	m.breakersOpen.Set(float64(open))
}

func (m *metrics) AMIConnected(up bool) {
	if up {
		m.amiConnected.Set(1)
	} else {
		m.amiConnected.Set(0)
	}
}

// queueCollector reads the queue's depth at scrape time, one QueueStats
// call per scrape, bounded by queueStatsTimeout. When the database does
// not answer, the gauges are left out of that scrape (and the error logged
// once per outage), so an alert on their absence or on /readyz fires.
type queueCollector struct {
	queue callevents.QueueStatsReader
	log   *slog.Logger

	mu     sync.Mutex
	failed bool
}

var (
	queuePendingDesc = prometheus.NewDesc("callevents_queue_pending",
		"Deliveries waiting to be sent (due or scheduled for a retry).", nil, nil)
	queueRunningDesc = prometheus.NewDesc("callevents_queue_running",
		"Deliveries leased to a dispatcher worker (being sent).", nil, nil)
	queueOldestDueDesc = prometheus.NewDesc("callevents_queue_oldest_due_seconds",
		"How long the oldest due pending delivery has been waiting since it became due (0 when none is due).", nil, nil)
)

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- queuePendingDesc
	ch <- queueRunningDesc
	ch <- queueOldestDueDesc
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), queueStatsTimeout)
	defer cancel()
	st, err := c.queue.QueueStats(ctx, time.Now())
	c.mu.Lock()
	wasFailing := c.failed
	c.failed = err != nil
	c.mu.Unlock()
	if err != nil {
		if !wasFailing {
			c.log.Warn("callevents: metrics cannot read the delivery queue", "error", err.Error())
		}
		return
	}
	ch <- prometheus.MustNewConstMetric(queuePendingDesc, prometheus.GaugeValue, float64(st.Pending))
	ch <- prometheus.MustNewConstMetric(queueRunningDesc, prometheus.GaugeValue, float64(st.Running))
	ch <- prometheus.MustNewConstMetric(queueOldestDueDesc, prometheus.GaugeValue, st.OldestDue.Seconds())
}
