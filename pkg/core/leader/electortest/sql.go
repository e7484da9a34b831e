package electortest

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // ginkgo's DSL reads best unqualified
	. "github.com/onsi/gomega"    //nolint:revive
	"gorm.io/gorm"

	"github.com/apache/dubbo-admin/internal/faultproxy"
	"github.com/apache/dubbo-admin/pkg/core/database"
	"github.com/apache/dubbo-admin/pkg/core/database/dbtest"
	"github.com/apache/dubbo-admin/pkg/core/leader"
)

// FastConfig is the SQL lease's default timings scaled down, their
// relation kept, so that the suites run fast.
func FastConfig(name string) leader.Config {
	return leader.Config{
		Name:          name,
		LeaseDuration: 1500 * time.Millisecond,
		RenewDeadline: 1000 * time.Millisecond,
		RetryPeriod:   100 * time.Millisecond,
		JitterFactor:  0.2,
		OpTimeout:     300 * time.Millisecond,
	}
}

// OpenPool opens a pool of its own to cfg, as a separate replica would,
// closed at cleanup.
func OpenPool(cfg database.Config) *gorm.DB {
	GinkgoHelper()
	db, err := database.Open(context.Background(), cfg)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { Expect(database.Close(db)).To(Succeed()) })
	return db
}

// CutPool returns a pool to tdb that cut severs until heal, for a candidate
// of the SQL lease cut off from its database. On a server dialect the pool
// goes through a fault proxy that cut pauses (closed at cleanup). SQLite
// has no network: cut holds the database's write lock from another pool
// (writing election's lease row), which cuts every candidate off. open
// opens a pool (OpenPool, say).
func CutPool(tdb *dbtest.DB, election string, open func(database.Config) *gorm.DB) (db *gorm.DB, cut, heal func()) {
	GinkgoHelper()
	if tdb.Config.Driver == database.SQLite {
		locker := open(tdb.Config)
		var tx *gorm.DB
		cut = func() {
			tx = locker.Begin()
			Expect(tx.Error).NotTo(HaveOccurred())
			Expect(tx.Exec(`UPDATE leader_leases SET transitions = transitions WHERE name = ?`, election).Error).To(Succeed())
		}
		heal = func() { Expect(tx.Rollback().Error).To(Succeed()) }
		return open(tdb.Config), cut, heal
	}
	proxy, err := faultproxy.Start(tdb.Addr)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(proxy.Close)
	via, err := tdb.ConfigVia(proxy.Addr())
	Expect(err).NotTo(HaveOccurred())
	return open(via), proxy.Pause, proxy.Resume
}
