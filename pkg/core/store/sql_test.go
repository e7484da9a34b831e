package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"gorm.io/gorm"

	"github.com/apache/dubbo-admin/pkg/core/database"
	"github.com/apache/dubbo-admin/pkg/core/leader"
	"github.com/apache/dubbo-admin/pkg/core/store"
)

// sqlConformance registers the specs of the shared (GORM) backend: table
// creation, fencing against the lease, and the race with an acquisition.
func sqlConformance(b *backend) {
	var (
		ctx  context.Context
		kind string
	)
	BeforeEach(func() {
		ctx = store.Unfenced(context.Background())
		kind = unique("kind")
	})

	It("creates its table idempotently, from several replicas at once", func(sctx SpecContext) {
		Expect(b.db.WithContext(sctx).Exec(`DROP TABLE resources`).Error).To(Succeed())
		var wg sync.WaitGroup
		errs := make([]error, 6)
		for i := range errs {
			db, err := b.tdb.Open(sctx)
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(func() { Expect(database.Close(db)).To(Succeed()) })
			s, err := store.NewGORM(db)
			Expect(err).NotTo(HaveOccurred())
			wg.Go(func() { errs[i] = s.Migrate(sctx) })
		}
		wg.Wait()
		Expect(errors.Join(errs...)).NotTo(HaveOccurred())
		Expect(b.store.(*store.GORM).Migrate(sctx)).To(Succeed())
		_, err := b.store.Upsert(ctx, res(kind, "a", nil, `{}`))
		Expect(err).NotTo(HaveOccurred())
	}, NodeTimeout(time.Minute))

	It("keeps keys apart that some collations would equate, and orders them by bytes", func() {
		keys := []string{"A", "a", "b", "Z", "é", "e", "a-b", "a b", "ä", "日本"}
		for _, k := range keys {
			_, err := b.store.Upsert(ctx, res(kind, k, nil, `{}`))
			Expect(err).NotTo(HaveOccurred(), k)
		}
		var got []string
		for _, r := range listAll(ctx, b.store, kind, store.ListOptions{Limit: 3}) {
			got = append(got, r.Key)
		}
		Expect(got).To(Equal(sortedCopy(keys)))
	})

	It("rolls back the whole write when the transaction hook fails", func(sctx SpecContext) {
		boom := errors.New("boom")
		s, err := store.NewGORM(b.db, store.WithTxHook(func(_ *gorm.DB, op string, r store.Resource) error {
			if r.Key == "c" {
				return boom
			}
			return nil
		}))
		Expect(err).NotTo(HaveOccurred())
		_, err = s.Replace(ctx, kind, []store.Resource{res(kind, "a", nil, `1`), res(kind, "b", nil, `2`)})
		Expect(err).NotTo(HaveOccurred())
		_, err = s.Replace(ctx, kind, []store.Resource{res(kind, "a", nil, `9`), res(kind, "c", nil, `3`)})
		Expect(err).To(MatchError(boom))
		all := listAll(ctx, s, kind, store.ListOptions{})
		Expect(contentOf(all...)).To(Equal([]content{{kind, "a", nil, `1`}, {kind, "b", nil, `2`}}))
	})

	Describe("fenced writes", func() {
		var (
			election string
			termA    leader.Term
			ctxA     context.Context
		)
		acquire := func(ctx context.Context, holder string, ttl time.Duration) leader.Term {
			GinkgoHelper()
			var rec leader.Record
			Eventually(func() error {
				var err error
				rec, err = b.lease.TryAcquire(ctx, election, holder, ttl)
				return err
			}).WithTimeout(30 * time.Second).WithPolling(10 * time.Millisecond).Should(Succeed())
			return rec.TermOf()
		}
		BeforeEach(func(sctx SpecContext) {
			election = unique("election")
			termA = acquire(sctx, "holder-a", time.Hour)
			ctxA = leader.WithTerm(context.Background(), termA)
			_, err := b.store.Replace(ctxA, kind, []store.Resource{res(kind, "a", nil, `1`), res(kind, "b", nil, `2`)})
			Expect(err).NotTo(HaveOccurred())
		})

		expectFencedAndUnchanged := func(ctx context.Context) {
			GinkgoHelper()
			before := listAll(ctx, b.store, kind, store.ListOptions{})
			_, err := b.store.Upsert(ctxA, res(kind, "a", nil, `"late"`))
			Expect(err).To(MatchError(store.ErrFenced))
			Expect(errors.Is(err, leader.ErrFenced)).To(BeTrue())
			_, err = b.store.Upsert(ctxA, res(kind, "new", nil, `"late"`))
			Expect(err).To(MatchError(store.ErrFenced))
			Expect(b.store.Delete(ctxA, kind, "b")).To(MatchError(store.ErrFenced))
			_, err = b.store.Replace(ctxA, kind, nil)
			Expect(err).To(MatchError(store.ErrFenced))
			_, err = b.store.Apply(ctxA, []store.Change{
				{Type: store.Upserted, Resource: res(kind, "a", nil, `"late"`)},
				{Type: store.Deleted, Resource: store.Resource{Kind: kind, Key: "b"}},
			})
			Expect(err).To(MatchError(store.ErrFenced))
			Expect(listAll(ctx, b.store, kind, store.ListOptions{})).To(Equal(before))
		}

		It("writes while the term is the live lease", func() {
			Expect(b.store.Delete(ctxA, kind, "b")).To(Succeed())
			all := listAll(ctx, b.store, kind, store.ListOptions{})
			Expect(all).To(HaveLen(1))
			Expect(all[0].Term).To(Equal(termA.Number))
		})

		It("fails an old term with ErrFenced once another holder acquired, changing nothing", func(sctx SpecContext) {
			_, err := b.lease.ForceRelease(sctx, election)
			Expect(err).NotTo(HaveOccurred())
			termB := acquire(sctx, "holder-b", time.Hour)
			Expect(termB.Number).To(Equal(termA.Number + 1))
			expectFencedAndUnchanged(sctx)

			out, err := b.store.Upsert(leader.WithTerm(sctx, termB), res(kind, "a", nil, `"b"`))
			Expect(err).NotTo(HaveOccurred())
			Expect(out.Term).To(Equal(termB.Number))
		})

		// The fence is the epoch, not the lease: an expired term whose
		// successor has not been minted yet is still the newest term, and
		// its write orders correctly; once the successor is minted it fails.
		It("fails a term whose lease expired once a successor is minted", func(sctx SpecContext) {
			election = unique("election")
			termA = acquire(sctx, "holder-a", 200*time.Millisecond)
			ctxA = leader.WithTerm(context.Background(), termA)
			Eventually(func() error {
				_, err := b.lease.TryAcquire(sctx, election, "holder-b", time.Hour)
				return err
			}).WithTimeout(30 * time.Second).WithPolling(20 * time.Millisecond).Should(Succeed())
			expectFencedAndUnchanged(sctx)
		})

		It("fails a term whose holder released it", func(sctx SpecContext) {
			_, err := b.lease.Release(sctx, termA)
			Expect(err).NotTo(HaveOccurred())
			expectFencedAndUnchanged(sctx)
		})

		It("fails a term of an election that does not exist", func() {
			ctxA = leader.WithTerm(context.Background(), leader.Term{Election: unique("nowhere"), Holder: "x", Number: 1})
			expectFencedAndUnchanged(context.Background())
		})
	})

	if b.dialect == database.Postgres {
		It("reads an Apply's rows by their keys however often its statements run, not by filtering the kind's range (no generic plan)", func(sctx SpecContext) {
			// A churn's batch holds keys spread over the whole kind. PostgreSQL
			// switches a statement run more than five times to a generic plan,
			// which cannot use the key list in the index: it scans the keys'
			// range and filters it by the list, seconds a batch at 100k rows.
			// The batch read runs eight times inside an Apply's transaction,
			// as the store's own statements do, and shows its plan.
			const size, batch = 20000, 100
			_, err := b.store.Replace(ctx, kind, items(kind, "k", size, `{}`))
			Expect(err).NotTo(HaveOccurred())
			Expect(b.db.WithContext(sctx).Exec("ANALYZE resources").Error).To(Succeed())
			keys := make([]string, batch)
			for i := range keys {
				keys[i] = fmt.Sprintf("k-%03d", i*(size/batch)+i%7)
			}
			where, args := store.WhereKeys(kind, keys)
			for i := 1; strings.Contains(where, "?"); i++ {
				where = strings.Replace(where, "?", fmt.Sprintf("$%d", i), 1)
			}
			literals := make([]string, len(args))
			for i, a := range args {
				literals[i] = "'" + strings.ReplaceAll(a.(string), "'", "''") + "'"
			}
			execute := "EXECUTE batch_read(" + strings.Join(literals, ",") + ")"

			var plan string
			checked := false
			probe := func(tx *gorm.DB, _ string, _ store.Resource) error {
				if checked {
					return nil
				}
				checked = true
				if err := tx.Exec("PREPARE batch_read AS SELECT res_key, resource_version, digest FROM resources" + where).Error; err != nil {
					return err
				}
				for range 8 {
					var found []struct {
						ResKey          string
						ResourceVersion int64
						Digest          string
					}
					if err := tx.Raw(execute).Scan(&found).Error; err != nil {
						return err
					}
					if len(found) != batch {
						return fmt.Errorf("read %d rows, want %d", len(found), batch)
					}
				}
				if err := tx.Raw("EXPLAIN (ANALYZE, FORMAT JSON) " + execute).Scan(&plan).Error; err != nil {
					return err
				}
				return tx.Exec("DEALLOCATE batch_read").Error
			}
			s, err := store.NewGORM(b.db, store.WithTxHook(probe))
			Expect(err).NotTo(HaveOccurred())
			_, err = s.Apply(ctx, []store.Change{{Type: store.Upserted, Resource: res(kind, keys[0], nil, `{"changed":true}`)}})
			Expect(err).NotTo(HaveOccurred())
			Expect(checked).To(BeTrue())

			var nodes []struct {
				Plan map[string]any `json:"Plan"`
			}
			Expect(json.Unmarshal([]byte(plan), &nodes)).To(Succeed())
			var removed func(n map[string]any) float64
			removed = func(n map[string]any) float64 {
				r, _ := n["Rows Removed by Filter"].(float64)
				children, _ := n["Plans"].([]any)
				for _, c := range children {
					if m, ok := c.(map[string]any); ok {
						r += removed(m)
					}
				}
				return r
			}
			Expect(removed(nodes[0].Plan)).To(BeNumerically("<", batch), "rows read and thrown away, plan: %s", plan)
		})
	}

	It("never lands a write of term T after term T+1 was acquired", func(sctx SpecContext) {
		Expect(b.db.WithContext(sctx).Exec(writeLogDDL[b.dialect]).Error).To(Succeed())
		logged, err := store.NewGORM(b.db, store.WithTxHook(func(tx *gorm.DB, op string, r store.Resource) error {
			return tx.Exec(`INSERT INTO write_log (kind, res_key, term) VALUES (?, ?, ?)`, r.Kind, r.Key, r.Term).Error
		}))
		Expect(err).NotTo(HaveOccurred())

		const rounds = 25
		for round := range rounds {
			raceRound(sctx, b, logged, round)
		}
	}, NodeTimeout(5*time.Minute))
}

var writeLogDDL = map[string]string{
	database.SQLite:   `CREATE TABLE IF NOT EXISTS write_log (seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, res_key TEXT NOT NULL, term BIGINT NOT NULL)`,
	database.MySQL:    `CREATE TABLE IF NOT EXISTS write_log (seq BIGINT AUTO_INCREMENT PRIMARY KEY, kind VARCHAR(128) NOT NULL, res_key VARCHAR(512) NOT NULL, term BIGINT NOT NULL)`,
	database.Postgres: `CREATE TABLE IF NOT EXISTS write_log (seq BIGSERIAL PRIMARY KEY, kind VARCHAR(128) NOT NULL, res_key VARCHAR(512) NOT NULL, term BIGINT NOT NULL)`,
}

type logEntry struct {
	Seq    int64
	ResKey string
	Term   int64
}

// raceRound: holder A writes continuously with term T while holder B takes
// the lease (force-release, or on some rounds expiry) and records a marker
// in the write log once its acquire returned. Every write of T must be
// logged before the marker, every acknowledged write of T must be stored
// and every fenced one absent.
func raceRound(sctx SpecContext, b *backend, s *store.GORM, round int) {
	GinkgoHelper()
	kind, election := unique("race"), unique("election")
	expire := round%5 == 4
	ttl := time.Hour
	if expire {
		ttl = 150 * time.Millisecond
	}
	recA := retry(sctx, func() (leader.Record, error) { return b.lease.TryAcquire(sctx, election, "holder-a", ttl) })
	ctxA := leader.WithTerm(context.Background(), recA.TermOf())

	var (
		mu      sync.Mutex
		acked   []string
		fenced  []string
		failed  = map[string]error{}
		nAcked  atomic.Int64
		nFenced atomic.Int64
	)
	writerCtx, stop := context.WithCancel(ctxA)
	var wg sync.WaitGroup
	// SQLite's busy handler polls with sleeps rather than queueing, so a
	// writer in this process that re-takes the write lock the moment it
	// lets go starves every other connection (the acquirer) for the whole
	// busy timeout. On SQLite the writer leaves a short gap after each
	// write; MySQL and PostgreSQL queue lock waiters and get no gap.
	var gap <-chan time.Time
	if b.dialect == database.SQLite {
		t := time.NewTicker(3 * time.Millisecond)
		defer t.Stop()
		gap = t.C
	}
	wg.Go(func() {
		for i := 0; writerCtx.Err() == nil; i++ {
			if gap != nil {
				select {
				case <-gap:
				case <-writerCtx.Done():
					return
				}
			}
			key := fmt.Sprintf("w%06d", i)
			_, err := s.Upsert(writerCtx, res(kind, key, nil, `{}`))
			mu.Lock()
			switch {
			case err == nil:
				acked = append(acked, key)
				nAcked.Add(1)
			case errors.Is(err, store.ErrFenced):
				fenced = append(fenced, key)
				nFenced.Add(1)
			case writerCtx.Err() != nil:
				// stopped mid-write, after the takeover: it cannot land
				fenced = append(fenced, key)
			default:
				// e.g. SQLITE_BUSY: rolled back, so it must not land either
				failed[key] = err
			}
			mu.Unlock()
		}
	})
	defer func() { stop(); wg.Wait() }()

	if !expire {
		Eventually(nAcked.Load).WithTimeout(30 * time.Second).Should(BeNumerically(">=", 2))
		retry(sctx, func() (leader.Record, error) { return b.lease.ForceRelease(sctx, election) })
	}
	recB := retry(sctx, func() (leader.Record, error) { return b.lease.TryAcquire(sctx, election, "holder-b", time.Hour) })
	Expect(recB.Term).To(Equal(recA.Term + 1))
	retry(sctx, func() (any, error) {
		return nil, b.db.WithContext(sctx).Exec(`INSERT INTO write_log (kind, res_key, term) VALUES (?, ?, ?)`, kind, "acquired", recB.Term).Error
	})
	retry(sctx, func() (store.Resource, error) {
		return s.Upsert(leader.WithTerm(sctx, recB.TermOf()), res(kind, "by-b", nil, `{}`))
	})

	Eventually(nFenced.Load).WithTimeout(30*time.Second).Should(BeNumerically(">=", 3), "the old holder keeps trying after the takeover")
	stop()
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	Expect(len(failed)).To(BeNumerically("<", len(acked)+len(fenced)), "round %d: most writes succeed or are fenced: %v", round, failed)

	var entries []logEntry
	Expect(b.db.WithContext(sctx).Raw(`SELECT seq, res_key, term FROM write_log WHERE kind = ? ORDER BY seq`, kind).Scan(&entries).Error).To(Succeed())
	marker := int64(-1)
	var lastT int64
	loggedT := map[string]bool{}
	for _, e := range entries {
		switch {
		case e.ResKey == "acquired":
			marker = e.Seq
		case e.Term == recA.Term:
			lastT = max(lastT, e.Seq)
			loggedT[e.ResKey] = true
		case e.Term == recB.Term:
			Expect(marker).To(BeNumerically(">", 0), "round %d: a write of term %d logged before the acquire marker", round, recB.Term)
		default:
			Fail(fmt.Sprintf("round %d: unexpected term %d in the write log", round, e.Term))
		}
	}
	Expect(marker).To(BeNumerically(">", 0))
	Expect(lastT).To(BeNumerically("<", marker), "round %d: a write of term %d committed after term %d was acquired", round, recA.Term, recB.Term)

	stored := map[string]int64{}
	for _, r := range listAll(context.Background(), s, kind, store.ListOptions{}) {
		stored[r.Key] = r.Term
	}
	for _, k := range acked {
		Expect(stored).To(HaveKeyWithValue(k, recA.Term), "round %d: acknowledged write %s", round, k)
		Expect(loggedT).To(HaveKey(k))
	}
	for _, k := range fenced {
		Expect(stored).NotTo(HaveKey(k), "round %d: fenced write %s landed", round, k)
		Expect(loggedT).NotTo(HaveKey(k))
	}
	for k := range failed {
		Expect(stored).NotTo(HaveKey(k), "round %d: failed write %s landed", round, k)
	}
	Expect(stored).To(HaveLen(len(acked)+1), "round %d: only acknowledged writes and B's write are stored", round)
}

// retry runs op until it succeeds: on SQLite a statement can fail with
// SQLITE_BUSY while another connection holds the write lock.
func retry[T any](ctx context.Context, op func() (T, error)) T {
	GinkgoHelper()
	var out T
	Eventually(ctx, func() error {
		var err error
		out, err = op()
		return err
	}).WithTimeout(30 * time.Second).WithPolling(5 * time.Millisecond).Should(Succeed())
	return out
}
