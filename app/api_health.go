package app

import (
	"fmt"
	"net/http"
	"time"

	"github.com/apache/dubbo-admin/pkg/core/runtime"
)

// Probe is the body of a successful /healthz or /readyz.
type Probe struct {
	Status string       `json:"status"`
	Role   runtime.Role `json:"role"`
}

// healthz fails when the replica believes it leads but has not confirmed
// its lease within the lease duration, or when its runtime has stopped.
func (a *API) healthz(w http.ResponseWriter, _ *http.Request) {
	st := a.Status()
	if err := a.unhealthy(st); err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, Probe{Status: "ok", Role: st.Role})
}

func (a *API) unhealthy(st runtime.Status) error {
	switch st.Role {
	case runtime.RoleStopped:
		return fmt.Errorf("unhealthy: the runtime has stopped")
	case runtime.RoleLeading:
		last, ok := a.LastRenewal()
		if !ok {
			return nil // the term's first instant; nothing to judge yet
		}
		if age := a.now().Sub(last); age > a.LeaseDuration {
			return fmt.Errorf("unhealthy: leading term %d, but the lease was last confirmed %v ago, longer than the lease duration %v: the replica is stuck",
				st.Term.Number, age.Round(time.Millisecond), a.LeaseDuration)
		}
	}
	return nil
}

// readyz succeeds once the runtime started, its components are running and
// the replica knows its role: it leads, or it has read the lease at least
// once as a follower.
func (a *API) readyz(w http.ResponseWriter, _ *http.Request) {
	st := a.Status()
	if err := a.notReady(st); err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, Probe{Status: "ready", Role: st.Role})
}

func (a *API) notReady(st runtime.Status) error {
	if !a.Started() {
		return fmt.Errorf("not ready: the runtime has not started")
	}
	switch st.Role {
	case runtime.RoleLeading, runtime.RoleDraining:
	case runtime.RoleCandidate:
		if el := a.election(); el.Failing() {
			return fmt.Errorf("not ready: this replica cannot take part in the election (%d failed attempts since %s): %s",
				el.FailedAttempts, el.FailingSince.UTC().Format(stampLayout), el.LastError)
		}
		if a.Lease.Observed().Now.IsZero() {
			return fmt.Errorf("not ready: the lease has not been read yet")
		}
	default:
		return fmt.Errorf("not ready: role %s", st.Role)
	}
	for _, c := range st.Components {
		if !c.LeaderOnly && c.State != runtime.ComponentRunning {
			return fmt.Errorf("not ready: component %s is %s", c.Name, c.State)
		}
	}
	return nil
}
