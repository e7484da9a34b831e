package runtime

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/go-logr/logr"
)

// Resetter is the store's Reset as the runtime needs it: after a lost term's
// leader components have returned and before the next campaign, the runtime
// calls Reset so that nothing this replica built during the term (caches,
// pending batches) survives into the next one. pkg/core/store satisfies it.
type Resetter interface {
	Reset(ctx context.Context) error
}

// DefaultDrainTimeout bounds how long leader components may take to return
// after their term context is cancelled.
const DefaultDrainTimeout = 5 * time.Second

// FailStopExitCode is the exit status of the default fail-stop hook.
const FailStopExitCode = 3

// Options tunes a Runtime. The zero value is usable: every zero field takes
// its default.
type Options struct {
	// SingleReplica runs without election (NoElection): this replica leads
	// from start to stop with a fixed term. It is read by Module only; New
	// takes the elector it is given. It is the only way to run without a
	// lease table.
	SingleReplica bool `json:"singleReplica" yaml:"singleReplica"`
	// Identity is the holder name Module campaigns as; empty means
	// leader.NewIdentity(). Read by Module only.
	Identity string `json:"identity" yaml:"identity"`
	// DrainTimeout bounds how long leader components may take to return once
	// their term context is cancelled; past it the runtime calls FailStop.
	// It also bounds each Reset attempt and the lease release at shutdown.
	// Keep it below fx's stop timeout. Default DefaultDrainTimeout.
	DrainTimeout time.Duration `json:"drainTimeout" yaml:"drainTimeout"`
	// Backoff paces restarts of failed components (and retries of a failed
	// Reset or Campaign). Default DefaultBackoff().
	Backoff Backoff `json:"backoff" yaml:"backoff"`
	// Resetter is called after every lost term; nil skips the step.
	Resetter Resetter `json:"-" yaml:"-"`
	// FailStop is called, on the runner goroutine, when leader components
	// have not returned within DrainTimeout of their term's end. The default
	// logs one line and exits the process with FailStopExitCode: a component
	// that ignores cancellation is a split brain in waiting. If the hook
	// returns (tests), the runner keeps waiting for the components and never
	// campaigns while one is running.
	FailStop func(err error) `json:"-" yaml:"-"`
}

func (o Options) withDefaults(log logr.Logger) (Options, error) {
	if o.DrainTimeout == 0 {
		o.DrainTimeout = DefaultDrainTimeout
	}
	if o.DrainTimeout < 0 {
		return o, fmt.Errorf("%w: drainTimeout is %v: must be positive", ErrInvalidOptions, o.DrainTimeout)
	}
	if o.Backoff == (Backoff{}) {
		o.Backoff = DefaultBackoff()
	}
	if err := o.Backoff.Validate(); err != nil {
		return o, err
	}
	if o.FailStop == nil {
		o.FailStop = func(err error) {
			log.Error(err, "fail-stop: exiting so that no other replica leads while this one still runs leader components", "exitCode", FailStopExitCode)
			os.Exit(FailStopExitCode)
		}
	}
	return o, nil
}
