package app

import (
	"time"

	"github.com/go-logr/logr"
	"go.uber.org/fx"
	"gorm.io/gorm"

	"github.com/apache/dubbo-admin/pkg/core/leader"
	"github.com/apache/dubbo-admin/pkg/core/runtime"
	"github.com/apache/dubbo-admin/pkg/core/store"
)

// newEpochs returns the fencing epochs of Admin's database, which never go
// below the highest term stamped on the store's rows. The elector mints its
// terms with them; the console reads their term log (/api/v1/terms).
func newEpochs(cfg Config, db *gorm.DB) (*leader.Epochs, error) {
	var opts []leader.EpochOption
	if cfg.Store.Backend != StoreMemory {
		opts = append(opts, leader.WithFloor(func(tx *gorm.DB, _ string) (int64, error) { return store.HighestTerm(tx) }))
	}
	return leader.NewEpochs(db, opts...)
}

// newElector returns the configured election backend. Whatever elects the
// leader, its terms are minted by epochs.
func newElector(lc fx.Lifecycle, cfg Config, db *gorm.DB, epochs *leader.Epochs, m *Metrics, log logr.Logger) (leader.Elector, error) {
	switch cfg.Election.Backend {
	case ElectionKubernetes:
		return newKubernetesElector(cfg, epochs, m, log)
	case ElectionEtcd:
		return newEtcdElector(lc, cfg, epochs, m, log)
	}
	return leader.NewLeaseElector(db, epochs, cfg.Election.Leader(),
		leader.WithLogger(log.WithName("leader")), leader.WithObserver(m))
}

// lastRenewal reads the send instant of the last successful renew of the
// term this replica leads; ok is false while it leads none.
func lastRenewal(rt *runtime.Runtime) func() (time.Time, bool) {
	return func() (time.Time, bool) {
		ls := rt.Leadership()
		if ls == nil {
			return time.Time{}, false
		}
		return ls.LastRenewal(), true
	}
}
