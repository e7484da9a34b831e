package runtime_test

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.uber.org/fx"
	"gorm.io/gorm"

	"github.com/apache/dubbo-admin/pkg/core/database"
	"github.com/apache/dubbo-admin/pkg/core/database/dbtest"
	"github.com/apache/dubbo-admin/pkg/core/runtime"
)

var _ = Describe("runtime.Module", Label("sqlite"), func() {
	var (
		rec   *recorder
		reset *resetter
		lead  *probe
	)

	BeforeEach(func() {
		rec = &recorder{}
		reset = &resetter{rec: rec}
		lead = newProbe("discovery", rec, nil)
	})

	components := fx.Options(
		fx.Provide(runtime.AsComponent(func() *runtime.FuncComponent { return lead.component() })),
		fx.Provide(runtime.AsComponent(func() *runtime.FuncComponent {
			return &runtime.FuncComponent{ComponentName: "api", Rank: -1, StartFunc: func(ctx context.Context) error {
				rec.add("start:api")
				<-ctx.Done()
				return nil
			}}
		})),
	)

	openDB := func() *gorm.DB {
		GinkgoHelper()
		db := dbtest.Ginkgo("pkg/core/runtime", database.SQLite)
		gdb, err := db.Open(context.Background())
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { _ = database.Close(gdb) })
		return gdb
	}

	startApp := func(opts ...fx.Option) (*fx.App, error) {
		app := fx.New(append([]fx.Option{runtime.FxLogger(GinkgoLogr), runtime.Module, fx.Supply(GinkgoLogr, fastConfig())}, opts...)...)
		if app.Err() != nil {
			return app, app.Err()
		}
		ctx, cancel := context.WithTimeout(context.Background(), eventually)
		defer cancel()
		return app, app.Start(ctx)
	}

	stopApp := func(app *fx.App) {
		GinkgoHelper()
		ctx, cancel := context.WithTimeout(context.Background(), eventually)
		defer cancel()
		Expect(app.Stop(ctx)).To(Succeed())
	}

	It("provides a runtime that leads through the lease table and stops with the app", func() {
		var rt *runtime.Runtime
		app, err := startApp(fx.Supply(openDB()), fx.Provide(func() runtime.Resetter { return reset }), components, fx.Populate(&rt))
		Expect(err).NotTo(HaveOccurred())
		term := lead.nextStart()
		Expect(term.Election).To(Equal(fastConfig().Name))
		st := rt.Status()
		Expect(st.Role).To(Equal(runtime.RoleLeading))
		Expect(st.Components).To(HaveLen(2))
		Expect(st.Components[0].Name).To(Equal("api"))
		Eventually(rec.all).Should(ContainElement("start:api"))

		stopApp(app)
		Expect(rt.Status().Role).To(Equal(runtime.RoleStopped))
		Expect(rec.all()).To(ContainElement("return:discovery"))
	})

	It("runs without election only in explicit single-replica mode", func() {
		_, err := startApp(components)
		Expect(err).To(MatchError(runtime.ErrElectionSetup))

		var rt *runtime.Runtime
		app, err := startApp(fx.Supply(runtime.Options{SingleReplica: true, Identity: "solo", DrainTimeout: time.Second}), components, fx.Populate(&rt))
		Expect(err).NotTo(HaveOccurred())
		Expect(lead.nextStart().Holder).To(Equal("solo"))
		Expect(rt.Status().Leader).To(Equal("solo"))
		stopApp(app)
	})

	It("refuses single-replica mode with a shared store, whose fenced writes no election could allow", func() {
		_, err := startApp(fx.Supply(runtime.Options{SingleReplica: true}), components,
			fx.Provide(func() runtime.Resetter { return sharedStore{} }))
		Expect(err).To(MatchError(runtime.ErrInvalidOptions))
		Expect(err).To(MatchError(ContainSubstring("shared store")))
		Expect(rec.all()).To(BeEmpty())
	})

	It("fails the app's start when the lease table cannot be created", func() {
		gdb := openDB()
		Expect(database.Close(gdb)).To(Succeed())
		_, err := startApp(fx.Supply(gdb), components)
		Expect(err).To(MatchError(runtime.ErrElectionSetup))
		Expect(rec.all()).To(BeEmpty())
	})
})

// sharedStore is a Resetter that says it is shared between replicas, as the
// GORM store does.
type sharedStore struct{}

func (sharedStore) Reset(context.Context) error { return nil }
func (sharedStore) Shared() bool                { return true }
