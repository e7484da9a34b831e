package store_test

import (
	"context"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/apache/dubbo-admin/pkg/core/store"
)

// counting: Counts agrees with what was written, per kind.
func counting(b *backend) {
	Describe("Counts", func() {
		It("counts every kind's resources, and a kind emptied by deletes is absent", func(ctx SpecContext) {
			wctx := store.Unfenced(context.Background())
			a, z := unique("count-a"), unique("count-z")
			for _, key := range []string{"1", "2", "3"} {
				_, err := b.store.Upsert(wctx, res(a, key, nil, `{}`))
				Expect(err).NotTo(HaveOccurred())
			}
			_, err := b.store.Upsert(wctx, res(z, "only", nil, `{}`))
			Expect(err).NotTo(HaveOccurred())

			counts, err := b.store.(store.Counter).Counts(ctx)
			Expect(err).NotTo(HaveOccurred())
			Expect(counts).To(HaveKeyWithValue(a, int64(3)))
			Expect(counts).To(HaveKeyWithValue(z, int64(1)))

			Expect(b.store.Delete(wctx, z, "only")).To(Succeed())
			counts, err = b.store.(store.Counter).Counts(ctx)
			Expect(err).NotTo(HaveOccurred())
			Expect(counts).NotTo(HaveKey(z))
			Expect(counts).To(HaveKeyWithValue(a, int64(3)))
		})
	})
}
