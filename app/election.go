package app

import (
	"io"
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

// newElector returns the configured election backend (buildElector),
// closed when the replica stops, after the runtime resigned.
func newElector(lc fx.Lifecycle, cfg Config, db *gorm.DB, epochs *leader.Epochs, m *Metrics, log logr.Logger) (leader.Elector, error) {
	e, err := buildElector(cfg, db, epochs, m, log)
	if err != nil {
		return nil, err
	}
	if c, ok := e.(io.Closer); ok {
		lc.Append(fx.StopHook(c.Close))
	}
	return e, nil
}

// buildElector returns the configured election backend (election.backend),
// for a replica and for the leader commands alike; it does no I/O (Prepare
// does). Whatever elects the leader, its terms are minted by epochs. m may
// be nil (no metrics). A backend that holds a connection (etcd) is an
// io.Closer.
func buildElector(cfg Config, db *gorm.DB, epochs *leader.Epochs, m *Metrics, log logr.Logger) (leader.Elector, error) {
	switch cfg.Election.Backend {
	case ElectionKubernetes:
		return newKubernetesElector(cfg, epochs, m, log)
	case ElectionEtcd:
		return newEtcdElector(cfg, epochs, m, log)
	}
	opts := []leader.Option{leader.WithLogger(log.WithName("leader"))}
	if m != nil {
		opts = append(opts, leader.WithObserver(m))
	}
	return leader.NewLeaseElector(db, epochs, cfg.Election.Leader(), opts...)
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
