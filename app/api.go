package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/pprof"
	"os"
	"strconv"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/apache/dubbo-admin/pkg/core/leader"
	"github.com/apache/dubbo-admin/pkg/core/runtime"
	"github.com/apache/dubbo-admin/pkg/core/store"
)

// LeaseReader is what the API reads of the election.
type LeaseReader interface {
	// Leader reads the lease from the database.
	Leader(ctx context.Context) (leader.Record, error)
	// Observed is the lease as last seen, without a query.
	Observed() leader.Record
	// Identity is this replica's holder name.
	Identity() string
}

// API serves the HTTP endpoints of one replica (see the package doc). The
// functions are its view of the replica; tests give it fakes.
type API struct {
	// Status is the runtime's snapshot.
	Status func() runtime.Status
	// Started reports whether the runtime's Start returned successfully.
	Started func() bool
	// LastRenewal is the local instant of the last confirmed renew of this
	// replica's latest term (ok false before its first term).
	LastRenewal func() (time.Time, bool)
	Lease       LeaseReader
	// Store serves the resource reads.
	Store store.ResourceStore
	// Registry is exposed on /metrics.
	Registry *prometheus.Registry
	// LeaseDuration is how long a leader may go without confirming its lease
	// before /healthz fails.
	LeaseDuration time.Duration
	// Replica is the supervisor's index of this replica, -1 if none.
	Replica int
	// Election is how this replica's campaign attempts go; nil means they
	// are not observed.
	Election func() ElectionState
	// Members reads the membership table for /api/v1/replicas; nil
	// answers 404.
	Members MembershipReader
	// Kinds are the resource kinds this replica serves; any other kind is
	// 404. Empty means every kind the store has.
	Kinds []string
	// Now is the local clock; nil means time.Now.
	Now func() time.Time
	Log logr.Logger
	// Console serves the cluster page and its endpoints (console.go); nil
	// serves neither.
	Console *Console
	// Subscribe delivers the runtime's role changes to the leader stream
	// (api_watch.go); nil: the stream sees them on its next check.
	Subscribe func(ctx context.Context) <-chan runtime.RoleChange
	// WatchInterval and WatchKeepalive are the leader stream's timings; 0
	// means DefaultWatchInterval and DefaultWatchKeepalive.
	WatchInterval, WatchKeepalive time.Duration
	// Pprof serves net/http/pprof under /debug/pprof/.
	Pprof bool

	streams streams // ends every leader stream at shutdown
}

// MaxListLimit bounds ?limit= of a resource list.
const MaxListLimit = 1000

// Handler routes the endpoints.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/healthz", get(a.healthz))
	mux.Handle("/readyz", get(a.readyz))
	mux.Handle("/metrics", promhttp.HandlerFor(a.Registry, promhttp.HandlerOpts{ErrorLog: nil}))
	mux.Handle("/api/v1/leader", get(a.leader))
	mux.Handle("/api/v1/status", get(a.status))
	mux.Handle("/api/v1/replicas", get(a.replicas))
	mux.Handle("/api/v1/resources/{kind}", get(a.listResources))
	mux.Handle("/api/v1/resources/{kind}/{key...}", get(a.getResource))
	a.Console.mount(mux, a)
	if a.Pprof {
		// No /debug/pprof/cmdline: a DSN given as a flag would show.
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	mux.Handle("/", get(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no endpoint %s", r.URL.Path))
	}))
	return mux
}

func (a *API) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

// get accepts GET and HEAD only.
func get(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed: use GET", r.Method))
			return
		}
		h(w, r)
	})
}

// ErrorBody is every error response.
type ErrorBody struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, ErrorBody{Code: code, Message: msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client went away; nothing to do
}

// storeError maps a store error to its status code.
func storeError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, store.ErrInvalid):
		writeError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		writeError(w, http.StatusServiceUnavailable, err.Error())
	default:
		writeError(w, http.StatusInternalServerError, err.Error())
	}
}

// LeaderInfo is the body of /api/v1/leader: the lease and this replica.
type LeaderInfo struct {
	Election string `json:"election"`
	// Holder leads while Held; empty when the lease is free.
	Holder string `json:"holder"`
	Term   int64  `json:"term"`
	// Since is when the term began and Expires when the lease expires,
	// both by the database's clock.
	Since   time.Time `json:"since,omitzero"`
	Expires time.Time `json:"expires,omitzero"`
	Held    bool      `json:"held"`
	// DatabaseNow is the database's clock when the lease was read.
	DatabaseNow time.Time `json:"databaseNow,omitzero"`
	// Backend is the election backend ("sql", "etcd"); Token its own
	// fencing token (the etcd leader key's revision) and Candidates its
	// queue, leader first, where it has them.
	Backend    string   `json:"backend,omitempty"`
	Token      string   `json:"token,omitempty"`
	Candidates []string `json:"candidates,omitempty"`
	// Path is the term's failover path (lock-fenced or lease-only) and
	// PathReason why it is lease-only.
	Path       string `json:"path,omitempty"`
	PathReason string `json:"pathReason,omitempty"`
	// LockWindowMs is a lock-fenced term's lock window as its row says, in
	// milliseconds: larger than election.lockWindow while the leader's lock
	// checks are slow.
	LockWindowMs int64 `json:"lockWindowMs,omitempty"`
	// Stale is true when the database could not be read: the lease is the
	// one this replica last saw, and Error says why.
	Stale bool   `json:"stale,omitempty"`
	Error string `json:"error,omitempty"`
	// Warning is set when the lease expires further ahead than any lease
	// duration allows: a row a dead holder left (or a clock jump), which no
	// follower will ever take; `dubbo-admin leader release --force` clears it.
	Warning string   `json:"warning,omitempty"`
	Self    SelfInfo `json:"self"`
}

// SelfInfo is this replica in a LeaderInfo.
type SelfInfo struct {
	Identity string       `json:"identity"`
	Role     runtime.Role `json:"role"`
	// Leading is true while this replica runs the leader components.
	Leading bool `json:"leading"`
	// Term is this replica's own term while it leads or drains.
	Term      int64     `json:"term,omitempty"`
	RoleSince time.Time `json:"roleSince"`
	// Replica is the index a supervisor (`run --replicas N`) gave this
	// replica; absent for a replica started on its own.
	Replica *int `json:"replica,omitempty"`
	PID     int  `json:"pid"`
	// ElectionError is why this replica's campaign attempts fail, while
	// they do (see ElectionState): it cannot take part in the election.
	ElectionError string `json:"electionError,omitempty"`
}

func (a *API) leader(w http.ResponseWriter, r *http.Request) {
	if v := r.URL.Query().Get("watch"); v != "" {
		watch, err := strconv.ParseBool(v)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("watch %q: want true or false", v))
			return
		}
		if watch {
			a.watchLeader(w, r)
			return
		}
	}
	writeJSON(w, http.StatusOK, a.leaderInfo(r.Context()))
}

// leaderInfo reads the lease from the database; when it cannot, it is the
// lease as last observed, marked stale.
func (a *API) leaderInfo(ctx context.Context) LeaderInfo {
	rec, err := a.Lease.Leader(ctx)
	if err != nil {
		info := a.leaseInfo(a.Lease.Observed())
		info.Stale, info.Error = true, err.Error()
		return info
	}
	return a.leaseInfo(rec)
}

// leaseInfo is the lease rec with this replica.
func (a *API) leaseInfo(rec leader.Record) LeaderInfo {
	st := a.Status()
	info := LeaderInfo{Self: SelfInfo{
		Identity: a.Lease.Identity(), Role: st.Role, Leading: st.Role == runtime.RoleLeading,
		Term: st.Term.Number, RoleSince: st.Since, Replica: a.replica(), PID: os.Getpid(),
		ElectionError: a.election().LastError,
	}}
	info.Election, info.Holder, info.Term = rec.Election, rec.Holder, rec.Term
	info.Since, info.Expires, info.Held, info.DatabaseNow = rec.AcquiredAt, rec.ExpiresAt, rec.Held(), rec.Now
	info.Backend, info.Token, info.Candidates = rec.Backend, rec.Token, rec.Candidates
	info.Path, info.PathReason, info.LockWindowMs = rec.Path, rec.PathReason, rec.LockWindow.Milliseconds()
	if !info.Held {
		info.Holder = ""
	}
	info.Warning = implausibleLease(rec, a.LeaseDuration)
	return info
}

// implausibleLease warns of a lease that expires further ahead than twice
// the lease duration: no holder renewing with these settings wrote it.
func implausibleLease(rec leader.Record, leaseDuration time.Duration) string {
	if leaseDuration <= 0 || rec.Remaining() <= 2*leaseDuration {
		return ""
	}
	return fmt.Sprintf("the lease of %s expires in %v, further ahead than any lease duration allows (%v): if %s is gone, no replica will take over until `dubbo-admin leader release --force` clears it",
		rec.Holder, rec.Remaining().Round(time.Second), leaseDuration, rec.Holder)
}

func (a *API) election() ElectionState {
	if a.Election == nil {
		return ElectionState{}
	}
	return a.Election()
}

func (a *API) replica() *int {
	if a.Replica < 0 {
		return nil
	}
	i := a.Replica
	return &i
}

// StatusInfo is the body of /api/v1/status: the runtime's snapshot in
// camelCase, with what does not apply left out.
type StatusInfo struct {
	Role runtime.Role `json:"role"`
	// Since is when Role was entered (local clock).
	Since time.Time `json:"since"`
	// Term is this replica's own term while it leads or drains; absent
	// otherwise.
	Term *TermInfo `json:"term,omitempty"`
	// Leader and LeaderTerm are the holder as this replica knows it (itself
	// while leading); absent when the lease is free or unknown.
	Leader     string `json:"leader,omitempty"`
	LeaderTerm int64  `json:"leaderTerm,omitempty"`
	// Election is present while this replica's campaign attempts fail.
	Election   *ElectionState            `json:"election,omitempty"`
	Components []runtime.ComponentStatus `json:"components"`
}

// TermInfo is a leader.Term in JSON.
type TermInfo struct {
	Election string `json:"election"`
	Holder   string `json:"holder"`
	Number   int64  `json:"number"`
	// AcquiredAt is when the term began, by the database's clock.
	AcquiredAt time.Time `json:"acquiredAt,omitzero"`
}

func termInfo(t leader.Term) *TermInfo {
	if t.IsZero() {
		return nil
	}
	return &TermInfo{Election: t.Election, Holder: t.Holder, Number: t.Number, AcquiredAt: t.AcquiredAt}
}

func statusInfo(st runtime.Status) StatusInfo {
	cs := st.Components
	if cs == nil {
		cs = []runtime.ComponentStatus{}
	}
	return StatusInfo{Role: st.Role, Since: st.Since, Term: termInfo(st.Term),
		Leader: st.Leader, LeaderTerm: st.LeaderTerm, Components: cs}
}

func (a *API) status(w http.ResponseWriter, _ *http.Request) {
	info := statusInfo(a.Status())
	if el := a.election(); el.Failing() {
		info.Election = &el
	}
	writeJSON(w, http.StatusOK, info)
}
