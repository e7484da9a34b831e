package app

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/apache/dubbo-admin/pkg/core/leader"
	"github.com/apache/dubbo-admin/pkg/core/runtime"
)

// Metrics are one replica's Prometheus metrics, on a registry of its own
// (so that several replicas in one test process do not collide).
//
//	dubbo_admin_leader_is_leader                     gauge: 1 while this replica leads
//	dubbo_admin_leader_term                          gauge: the lease's term as this replica knows it
//	dubbo_admin_leader_transitions_total{to}         counter: role changes of this replica
//	dubbo_admin_leader_renew_duration_seconds        histogram: latency of the leader's renews
//	dubbo_admin_leader_renew_failures_total          counter: renews that failed
//	dubbo_admin_leader_acquire_failures_total        counter: campaign attempts that failed (not "held by another")
//	dubbo_admin_leader_seconds_since_last_renew      gauge: while leading, age of the last confirmed renew
//	dubbo_admin_leader_lock_fenced                   gauge: while leading, 1 on the session-lock path, 0 lease-only
//	dubbo_admin_component_restarts_total{component}  counter: failed Starts restarted with backoff
//	dubbo_admin_store_fenced_writes_total{op,result} counter: writes carrying a term: committed, refused (fenced), failed
type Metrics struct {
	Registry *prometheus.Registry

	renewLatency  prometheus.Histogram
	renewFailures prometheus.Counter
	transitions   *prometheus.CounterVec
	fencedWrites  *prometheus.CounterVec

	acquireFailures prometheus.Counter
	trouble         campaignTrouble
}

var (
	_ leader.Observer        = (*Metrics)(nil)
	_ leader.AcquireObserver = (*Metrics)(nil)
)

// NewMetrics registers the replica's metrics, with the Go and process
// collectors, on a new registry.
func NewMetrics() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		renewLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "dubbo_admin_leader_renew_duration_seconds",
			Help:    "Latency of the leader's lease renewals, failed ones included.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}),
		renewFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dubbo_admin_leader_renew_failures_total",
			Help: "Lease renewals that failed (retried until the renew deadline).",
		}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dubbo_admin_leader_transitions_total",
			Help: "Role changes of this replica's leader runner, by the role entered.",
		}, []string{"to"}),
		acquireFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dubbo_admin_leader_acquire_failures_total",
			Help: "Campaign attempts that failed: the replica could not ask for the lease (not counted: attempts that found another holder).",
		}),
		fencedWrites: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dubbo_admin_store_fenced_writes_total",
			Help: "Store writes carrying a leader term, by operation and result (committed, fenced: refused because the term is over, error).",
		}, []string{"op", "result"}),
	}
	m.Registry.MustRegister(m.renewLatency, m.renewFailures, m.acquireFailures, m.transitions, m.fencedWrites,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// ObserveRenew implements leader.Observer; it runs on the renew goroutine
// and only touches atomic counters.
func (m *Metrics) ObserveRenew(latency time.Duration, err error) {
	m.renewLatency.Observe(latency.Seconds())
	if err != nil {
		m.renewFailures.Inc()
	}
}

// ObserveAcquire implements leader.AcquireObserver: it counts the failed
// campaign attempts and remembers the last one's cause.
func (m *Metrics) ObserveAcquire(_ time.Duration, err error) {
	if err != nil && !errors.Is(err, leader.ErrHeld) {
		m.acquireFailures.Inc()
	}
	m.trouble.observe(err, time.Now())
}

// Election is how this replica's campaign attempts go.
func (m *Metrics) Election() ElectionState { return m.trouble.state() }

// roleChanged counts one transition of the leader runner.
func (m *Metrics) roleChanged(to runtime.Role) { m.transitions.WithLabelValues(string(to)).Inc() }

// storeWrite counts one write that carried a term.
func (m *Metrics) storeWrite(op string, err error) {
	result := "committed"
	switch {
	case errors.Is(err, leader.ErrFenced):
		result = "fenced"
	case err != nil:
		result = "error"
	}
	m.fencedWrites.WithLabelValues(op, result).Inc()
}

// watchState registers the gauges read at scrape time from the runtime's
// status and the election.
func (m *Metrics) watchState(status func() runtime.Status, lastRenewal func() (time.Time, bool), now func() time.Time) {
	m.Registry.MustRegister(&stateCollector{status: status, lastRenewal: lastRenewal, now: now})
}

var (
	isLeaderDesc = prometheus.NewDesc("dubbo_admin_leader_is_leader",
		"1 while this replica leads (its leader components run), else 0.", nil, nil)
	termDesc = prometheus.NewDesc("dubbo_admin_leader_term",
		"The lease's term as this replica knows it: its own while leading, else the observed leader's (0 when unknown).", nil, nil)
	sinceRenewDesc = prometheus.NewDesc("dubbo_admin_leader_seconds_since_last_renew",
		"While leading: seconds since the last successful renew was sent (local monotonic clock).", nil, nil)
	restartsDesc = prometheus.NewDesc("dubbo_admin_component_restarts_total",
		"Failed Starts of a component that the runtime restarted with backoff.", []string{"component"}, nil)
)

// stateCollector reads the runtime's status at scrape time.
type stateCollector struct {
	status      func() runtime.Status
	lastRenewal func() (time.Time, bool)
	now         func() time.Time
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- isLeaderDesc
	ch <- termDesc
	ch <- sinceRenewDesc
	ch <- restartsDesc
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.status()
	leading := st.Role == runtime.RoleLeading
	ch <- prometheus.MustNewConstMetric(isLeaderDesc, prometheus.GaugeValue, boolFloat(leading))
	ch <- prometheus.MustNewConstMetric(termDesc, prometheus.GaugeValue, float64(st.LeaderTerm))
	if last, ok := c.lastRenewal(); leading && ok {
		ch <- prometheus.MustNewConstMetric(sinceRenewDesc, prometheus.GaugeValue, c.now().Sub(last).Seconds())
	}
	for _, cs := range st.Components {
		ch <- prometheus.MustNewConstMetric(restartsDesc, prometheus.CounterValue, float64(cs.Restarts), cs.Name)
	}
}

var lockFencedDesc = prometheus.NewDesc("dubbo_admin_leader_lock_fenced",
	"While leading: 1 when the term is lock-fenced (a crashed leader is replaced about lockWindow later), 0 when lease-only (after the lease expires; /api/v1/leader says why).", nil, nil)

// watchPath registers the gauge of the led term's failover path.
func (m *Metrics) watchPath(leadership func() leader.Leadership) {
	m.Registry.MustRegister(pathCollector(leadership))
}

type pathCollector func() leader.Leadership

func (c pathCollector) Describe(ch chan<- *prometheus.Desc) { ch <- lockFencedDesc }

func (c pathCollector) Collect(ch chan<- prometheus.Metric) {
	if p, ok := c().(leader.FailoverPather); ok {
		path, _ := p.FailoverPath()
		ch <- prometheus.MustNewConstMetric(lockFencedDesc, prometheus.GaugeValue, boolFloat(path == leader.PathLockFenced))
	}
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
