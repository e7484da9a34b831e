package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"gorm.io/gorm"

	"github.com/apache/dubbo-admin/pkg/core/leader"
	"github.com/apache/dubbo-admin/pkg/core/store"
)

// txLog records, per transaction of a GORM store, the writes its TxHook
// saw, in order.
type txLog struct {
	mu sync.Mutex
	// txs holds each transaction (its *sql.Tx), in order of its first
	// write. Holding it keeps it alive: a transaction told apart by its
	// address alone could share it with a later one, once freed.
	txs []gorm.ConnPool
	ops map[gorm.ConnPool][]string
}

func (l *txLog) hook(failOn string, err error) store.TxHook {
	return func(tx *gorm.DB, op string, r store.Resource) error {
		if r.Key == failOn {
			return err
		}
		id := tx.Statement.ConnPool // the *sql.Tx
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.ops == nil {
			l.ops = map[gorm.ConnPool][]string{}
		}
		if _, ok := l.ops[id]; !ok {
			l.txs = append(l.txs, id)
		}
		l.ops[id] = append(l.ops[id], op+" "+r.Key)
		return nil
	}
}

func (l *txLog) transactions() [][]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([][]string, 0, len(l.txs))
	for _, id := range l.txs {
		out = append(out, l.ops[id])
	}
	return out
}

func items(kind, prefix string, n int, spec string) []store.Resource {
	out := make([]store.Resource, n)
	for i := range out {
		out[i] = res(kind, fmt.Sprintf("%s-%03d", prefix, i), nil, spec)
	}
	return out
}

// chunkedReplace registers the specs of the GORM backend's Replace, which
// writes a large kind in several fenced transactions (chunks).
func chunkedReplace(b *backend) {
	var (
		ctx  context.Context
		kind string
	)
	BeforeEach(func() {
		ctx = store.Unfenced(context.Background())
		kind = unique("kind")
	})

	Describe("chunked Replace", func() {
		It("writes every add and update before the first delete, each chunk its own bounded transaction", func() {
			var log txLog
			s, err := store.NewGORM(b.db, store.WithTxHook(log.hook("", nil)), store.WithBatchSize(4), store.WithReplaceChunk(10, time.Hour))
			Expect(err).NotTo(HaveOccurred())
			// 50 old resources; the source keeps 20 of them (10 changed)
			// and adds 15: 30 vanish.
			_, err = s.Replace(ctx, kind, items(kind, "old", 50, `1`))
			Expect(err).NotTo(HaveOccurred())
			source := append(items(kind, "old", 20, `1`), items(kind, "new", 15, `{}`)...)
			for i := range 10 {
				source[i].Spec = []byte(`2`)
			}
			log = txLog{}
			events := s.Subscribe(ctx)

			result, err := s.Replace(ctx, kind, source)
			Expect(err).NotTo(HaveOccurred())
			Expect(result).To(Equal(store.ReplaceResult{Added: 15, Updated: 10, Deleted: 30}))
			Expect(contentOf(listAll(ctx, s, kind, store.ListOptions{})...)).To(Equal(contentOf(sortedByKey(source)...)))

			txs := log.transactions()
			Expect(len(txs)).To(BeNumerically(">", 1))
			for _, ops := range txs {
				Expect(len(ops)).To(BeNumerically("<=", 10), "a chunk writes at most its rows: %v", ops)
			}
			var types []store.EventType
			Eventually(func() []store.EventType {
				for {
					select {
					case e := <-events:
						types = append(types, e.Type)
					default:
						return types
					}
				}
			}).Should(HaveLen(55))
			firstDelete := slices.Index(types, store.Deleted)
			Expect(firstDelete).To(Equal(25), "25 adds and updates, then the deletes")
			Expect(types[firstDelete:]).NotTo(ContainElement(store.Upserted))
		})

		It("shows readers old ∪ source shrinking to source: nothing both hold is ever missing, nothing else ever appears", func() {
			old := append(items(kind, "a", 20, `1`), items(kind, "c", 20, `1`)...)
			_, err := b.store.Replace(ctx, kind, old)
			Expect(err).NotTo(HaveOccurred())
			source := append(items(kind, "a", 10, `2`), items(kind, "b", 20, `{}`)...) // a-010..019 and every c vanish
			allowed, shared := map[string]bool{}, map[string]bool{}
			for _, r := range old {
				allowed[r.Key] = true
			}
			for _, r := range source {
				shared[r.Key] = allowed[r.Key]
				allowed[r.Key] = true
			}
			var seen []int // what a reader saw at each write, in other transactions
			check := store.WithTxHook(func(*gorm.DB, string, store.Resource) error {
				page, err := b.store.List(context.Background(), kind, store.ListOptions{})
				if err != nil {
					return err
				}
				keys := map[string]bool{}
				for _, r := range page.Items {
					if !allowed[r.Key] {
						return fmt.Errorf("a reader saw %s, in neither the old kind nor the source", r.Key)
					}
					keys[r.Key] = true
				}
				for k, both := range shared {
					if both && !keys[k] {
						return fmt.Errorf("a reader missed %s, which the old kind and the source both hold", k)
					}
				}
				seen = append(seen, len(page.Items))
				return nil
			})
			s, err := store.NewGORM(b.db, check, store.WithBatchSize(3), store.WithReplaceChunk(7, time.Hour))
			Expect(err).NotTo(HaveOccurred())
			_, err = s.Replace(ctx, kind, source)
			Expect(err).NotTo(HaveOccurred())
			Expect(contentOf(listAll(ctx, b.store, kind, store.ListOptions{})...)).To(Equal(contentOf(sortedByKey(source)...)))
			Expect(slices.Max(seen)).To(Equal(60), "after the adds and updates a reader sees old ∪ source")
		})

		It("is one transaction when the source and the kind fit in one chunk", func() {
			boom := errors.New("boom")
			_, err := b.store.Replace(ctx, kind, []store.Resource{res(kind, "gone", nil, `1`), res(kind, "kept", nil, `1`)})
			Expect(err).NotTo(HaveOccurred())
			s, err := store.NewGORM(b.db, store.WithTxHook((&txLog{}).hook("gone", boom)), store.WithBatchSize(2), store.WithReplaceChunk(10, time.Hour))
			Expect(err).NotTo(HaveOccurred())

			_, err = s.Replace(ctx, kind, append(items(kind, "new", 5, `{}`), res(kind, "kept", nil, `2`)))
			Expect(err).To(MatchError(boom), "the hook fails on the delete of gone, the last write")
			Expect(contentOf(listAll(ctx, s, kind, store.ListOptions{})...)).To(Equal([]content{
				{kind, "gone", nil, `1`}, {kind, "kept", nil, `1`},
			}), "the adds and the update were rolled back with the delete")
		})

		It("keeps what earlier chunks committed when a later one fails, counts it, and the next Replace completes it", func() {
			boom := errors.New("boom")
			failing, err := store.NewGORM(b.db, store.WithTxHook((&txLog{}).hook("item-035", boom)), store.WithBatchSize(5), store.WithReplaceChunk(10, time.Hour))
			Expect(err).NotTo(HaveOccurred())
			source := items(kind, "item", 50, `{}`)
			result, err := failing.Replace(ctx, kind, source)
			Expect(err).To(MatchError(boom))
			Expect(result).To(Equal(store.ReplaceResult{Added: 30}), "three chunks of 10 committed before the fourth failed")
			Expect(listAll(ctx, b.store, kind, store.ListOptions{})).To(HaveLen(30))

			result, err = b.store.Replace(ctx, kind, source)
			Expect(err).NotTo(HaveOccurred())
			Expect(result).To(Equal(store.ReplaceResult{Added: 20}))
			Expect(listAll(ctx, b.store, kind, store.ListOptions{})).To(HaveLen(50))
		})

		It("lets the lease be renewed and the term ended between its chunks, not only after the whole Replace", func(sctx SpecContext) {
			// While the first chunk writes, the leader renews and then
			// releases its term; every row takes 1 ms until both have
			// returned. Chunked, they commit once a chunk does (the renew
			// waits for SQLite's write lock, the release for the epoch row
			// the fence holds shared), and the next chunk's fence refuses
			// the rest. In one transaction they would wait for the commit
			// of all 20 000 rows, and the Replace would succeed. Nothing
			// about their latency is asserted, only their order.
			var (
				rows   atomic.Int64
				ended  atomic.Bool
				errs   = make(chan error, 2)
				wg     sync.WaitGroup
				tctx   context.Context
				term   leader.Term
				source = items(kind, "big", 20000, `{}`)
			)
			tctx, term = b.termCtx(sctx)
			slow := store.WithTxHook(func(*gorm.DB, string, store.Resource) error {
				if rows.Add(1) == 10 {
					wg.Go(func() {
						defer ended.Store(true)
						_, err := b.lease.Renew(sctx, term, time.Hour, 0)
						errs <- err
						_, err = b.lease.Release(sctx, term)
						errs <- err
					})
				}
				if !ended.Load() {
					time.Sleep(time.Millisecond)
				}
				return nil
			})
			s, err := store.NewGORM(b.db, slow, store.WithBatchSize(20), store.WithReplaceChunk(1000, 100*time.Millisecond))
			Expect(err).NotTo(HaveOccurred())
			result, err := s.Replace(tctx, kind, source)
			wg.Wait()
			Expect(<-errs).NotTo(HaveOccurred(), "renew")
			Expect(<-errs).NotTo(HaveOccurred(), "release")
			Expect(err).To(MatchError(store.ErrFenced), "a chunk after the release is refused")
			Expect(result.Added).To(BeNumerically("<", len(source)))
			Expect(listAll(ctx, b.store, kind, store.ListOptions{})).To(HaveLen(result.Added), "what the chunks before the release committed stays")
		}, NodeTimeout(5*time.Minute))
	})
}

func sortedByKey(rs []store.Resource) []store.Resource {
	out := slices.Clone(rs)
	slices.SortFunc(out, func(a, b store.Resource) int { return strings.Compare(a.Key, b.Key) })
	return out
}
