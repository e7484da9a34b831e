package harness

import (
	"context"
	"errors"

	"gorm.io/gorm"

	"github.com/apache/dubbo-admin/pkg/core/database"
)

// This file extends InProcess for the benchmarks of test/bench: a simulated
// crash and access to a replica's pool (see also InProcessConfig.PoolHook).

// SimulateCrash stops replica i the way a crash would, as far as the
// database can tell: it closes the replica's pool first, so that no
// statement of it runs again (in particular no release of the lease), then
// stops its runtime (which cannot release what it holds). Its lease stays
// until it expires by the database clock, as after a kill -9. The replica
// can be started again as a new holder.
func (c *InProcess) SimulateCrash(ctx context.Context, i int) error {
	r := c.replicas[i]
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.running {
		return nil
	}
	r.running = false
	closeErr := database.Close(r.db)
	stopErr := r.app.Stop(ctx)
	return errors.Join(closeErr, stopErr)
}

// DB is the pool of the replica's current (or last) run; nil before its
// first start.
func (r *Replica) DB() *gorm.DB {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.db
}
