package app

import (
	"github.com/go-logr/logr"
	"go.uber.org/fx"

	"github.com/apache/dubbo-admin/examples/component/heartbeat"
	"github.com/apache/dubbo-admin/pkg/core/runtime"
	"github.com/apache/dubbo-admin/pkg/core/store"
)

// heartbeatComponent plugs the example component of
// examples/component/heartbeat into the replica when heartbeat.interval is
// set. It is how any component joins: one runtime.AsComponent(constructor)
// in the replica's fx.Provide list (see NewReplica); the runtime finds it in
// the components group and runs it on the leader only because it answers
// NeedLeaderElection with true.
func heartbeatComponent(cfg Config) fx.Option {
	if cfg.Heartbeat.Interval <= 0 {
		return fx.Options()
	}
	return fx.Provide(runtime.AsComponent(func(st store.ResourceStore, log logr.Logger) *heartbeat.Heartbeat {
		return heartbeat.New(heartbeat.Config{Interval: cfg.Heartbeat.Interval.D()}, st, log)
	}))
}
