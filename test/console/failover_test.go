package console_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.uber.org/goleak"

	"github.com/apache/dubbo-admin/internal/browser"
	"github.com/apache/dubbo-admin/pkg/core/database"
	"github.com/apache/dubbo-admin/pkg/core/database/dbtest"
	"github.com/apache/dubbo-admin/test/harness"
)

const suite = "test/console"

// ArtifactsEnv names the directory the screenshots go to; unset, they go
// to artifacts/test-console at the module's root.
const ArtifactsEnv = "ADMIN_TEST_ARTIFACTS"

func artifacts() string {
	GinkgoHelper()
	dir := os.Getenv(ArtifactsEnv)
	if dir == "" {
		_, file, _, _ := runtime.Caller(0)
		dir = filepath.Join(filepath.Dir(file), "..", "..", "artifacts")
	}
	dir = filepath.Join(dir, "test-console")
	Expect(os.MkdirAll(dir, 0o755)).To(Succeed())
	return dir
}

// shown is what the page says, read from its DOM.
type shown struct {
	Live   string `json:"live"`
	Holder string `json:"holder"`
	Term   string `json:"term"`
	Text   string `json:"text"`
	// Terms maps each listed term to how it ended ("" while open).
	Terms map[string]string `json:"terms"`
	// Roles maps each listed replica to its role cell's data-role.
	Roles map[string]string `json:"roles"`
}

const readPage = `(() => {
  const el = document.getElementById('leader');
  if (!el) return null;
  const terms = {}, roles = {};
  for (const li of document.querySelectorAll('#terms li[data-term]')) terms[li.dataset.term] = li.dataset.how;
  for (const tr of document.querySelectorAll('#replicas tr[data-identity]')) roles[tr.dataset.identity] = tr.dataset.role;
  return { live: document.getElementById('live').dataset.state, holder: el.dataset.holder, term: el.dataset.term,
           text: el.textContent, terms, roles };
})()`

func read(ctx context.Context, p *browser.Page) (shown, error) {
	var s shown
	err := p.Eval(ctx, readPage, &s)
	return s, err
}

var _ = Describe("The cluster page in Chromium", Label("sqlite", "browser"), func() {
	It("follows a kill -9 of the leader: the new leader, and the killed term ended", func(ctx SpecContext) {
		browser.SkipUnavailable(suite)
		leaks := goleak.IgnoreCurrent()
		DeferCleanup(func() { Eventually(func() error { return goleak.Find(leaks) }).Should(Succeed()) })

		binDir := GinkgoT().TempDir()
		bin, err := harness.BuildBinary(ctx, binDir)
		Expect(err).NotTo(HaveOccurred())
		src, err := harness.NewSource(GinkgoT().TempDir())
		Expect(err).NotTo(HaveOccurred())
		Expect(src.Put("shop.yaml", harness.Instances("shop", "order", 3)...)).To(Succeed())
		db := harness.FromDBTest(dbtest.Ginkgo(suite, database.SQLite))
		c, err := harness.StartProcesses(ctx, 3, harness.ProcessConfig{Binary: bin, Database: db, Source: src, Dir: GinkgoT().TempDir()})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(c.Close)

		first, _, err := c.WaitForLeader(ctx, 0)
		Expect(err).NotTo(HaveOccurred())
		follower := (first + 1) % c.N()
		url := c.Process(follower).URL() + "/"

		b := browser.Ginkgo(suite)
		page, err := b.NewPage(ctx, 1280, 1000)
		Expect(err).NotTo(HaveOccurred())
		Expect(page.Navigate(ctx, url)).To(Succeed())
		// The leader to kill is the one the page shows, and not the page's
		// own replica (a loaded machine may move leadership meanwhile).
		var (
			lead       int
			term       int64
			leaderInfo harness.LeaderInfo
		)
		Eventually(func(g Gomega) {
			var ok bool
			lead, term, ok, err = c.Leader(ctx)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(ok).To(BeTrue(), "one leader")
			g.Expect(lead).NotTo(Equal(follower))
			leaderInfo, err = c.Info(ctx, lead)
			g.Expect(err).NotTo(HaveOccurred())
			s, err := read(ctx, page)
			g.Expect(err).NotTo(HaveOccurred())
			want := strconv.FormatInt(term, 10)
			g.Expect(s.Live).To(Equal("live"), "the page is on the stream")
			g.Expect(s.Holder).To(Equal(leaderInfo.Self.Identity))
			g.Expect(s.Term).To(Equal(want))
			g.Expect(s.Text).To(ContainSubstring("Leader: "+leaderInfo.Self.Identity), "text, not colour, says who leads")
			g.Expect(s.Terms).To(HaveKeyWithValue(want, ""), "the term is open")
		}).WithPolling(50 * time.Millisecond).Should(Succeed())
		wantTerm := strconv.FormatInt(term, 10)
		shot(ctx, page, "before-failover.png")

		By(fmt.Sprintf("kill -9 the leader, replica %d (%s, term %d)", lead, leaderInfo.Self.Identity, term))
		// The follower's API and the page are watched side by side from the
		// kill on: the page must show the new leader within a second of the
		// API serving it.
		var (
			mu      sync.Mutex
			apiKnew time.Time
			newTerm int64
		)
		watchCtx, stopWatch := context.WithCancel(ctx)
		watched := make(chan struct{})
		go func() {
			defer close(watched)
			t := time.NewTicker(10 * time.Millisecond)
			defer t.Stop()
			for {
				if info, err := c.Info(watchCtx, follower); err == nil && info.Held && info.Term > term {
					mu.Lock()
					apiKnew, newTerm = time.Now(), info.Term
					mu.Unlock()
					return
				}
				select {
				case <-watchCtx.Done():
					return
				case <-t.C:
				}
			}
		}()
		DeferCleanup(func() { stopWatch(); <-watched })
		killed := time.Now()
		Expect(c.Kill(lead)).To(Succeed())

		var pageShowed time.Time
		Eventually(func(g Gomega) {
			s, err := read(ctx, page)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(s.Term).NotTo(BeElementOf("", wantTerm))
			pageShowed = time.Now()
		}).WithTimeout(time.Minute).WithPolling(10 * time.Millisecond).Should(Succeed())
		Eventually(watched).Should(BeClosed())
		mu.Lock()
		api, nt := apiKnew, newTerm
		mu.Unlock()
		Expect(api.IsZero()).To(BeFalse(), "the follower's API served the new leader")
		lag := pageShowed.Sub(api)
		AddReportEntry("failover", fmt.Sprintf("kill -9 -> follower API serves term %d: %v; API -> page shows it: %v",
			nt, api.Sub(killed).Round(time.Millisecond), lag.Round(time.Millisecond)))
		Expect(lag).To(BeNumerically("<", time.Second), "the page shows the failover within a second of the API knowing it")

		// The page follows whatever the follower's API says now (a loaded
		// machine may already have ended term nt and started another).
		Eventually(func(g Gomega) {
			info, err := c.Info(ctx, follower)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(info.Held).To(BeTrue())
			s, err := read(ctx, page)
			g.Expect(err).NotTo(HaveOccurred())
			now := strconv.FormatInt(info.Term, 10)
			g.Expect(s.Live).To(Equal("live"))
			g.Expect(s.Holder).To(Equal(info.Holder))
			g.Expect(s.Term).To(Equal(now))
			g.Expect(s.Text).To(ContainSubstring("Leader: " + info.Holder))
			g.Expect(s.Terms).To(HaveKeyWithValue(now, ""), "the current term is open")
			g.Expect(s.Terms).To(HaveKey(wantTerm))
			g.Expect(s.Terms[wantTerm]).NotTo(BeEmpty(), "the killed leader's term is shown as ended")
			for id, role := range s.Roles {
				if role == "leader" {
					g.Expect(id).To(Equal(info.Holder), "the replica list marks the leader only")
				}
			}
		}).WithPolling(50 * time.Millisecond).Should(Succeed())
		s, err := read(ctx, page)
		Expect(err).NotTo(HaveOccurred())
		AddReportEntry("killed term", fmt.Sprintf("term %s ended: %s", wantTerm, s.Terms[wantTerm]))
		shot(ctx, page, "after-failover.png")
	}, NodeTimeout(5*time.Minute))
})

// shot saves a screenshot of the page into the artifacts.
func shot(ctx context.Context, p *browser.Page, name string) {
	GinkgoHelper()
	png, err := p.Screenshot(ctx)
	Expect(err).NotTo(HaveOccurred())
	path := filepath.Join(artifacts(), name)
	Expect(os.WriteFile(path, png, 0o644)).To(Succeed())
	AddReportEntry("screenshot", path)
	fmt.Fprintln(GinkgoWriter, "screenshot:", path)
}
