package app_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gbytes"

	"github.com/apache/dubbo-admin/app"
	coreruntime "github.com/apache/dubbo-admin/pkg/core/runtime"
)

// The supervisor's own behaviour, with /bin/sh scripts as the replicas: the
// supervisor appends --replicas=1 --replica-index=i, which sh -c takes as
// $1 and $2.
var _ = Describe("Supervisor", Label("quick"), func() {
	run := func(sup *app.Supervisor, signals chan os.Signal) (*gbytes.Buffer, chan error) {
		out := gbytes.NewBuffer()
		sup.Executable = "/bin/sh"
		sup.Out, sup.ChildOut, sup.ChildErr = out, GinkgoWriter, GinkgoWriter
		sup.Address = func(i int) string { return "127.0.0.1:1" }
		sup.Poll = 50 * time.Millisecond
		sup.StopTimeout = 10 * time.Second
		sup.Log = GinkgoLogr
		done := make(chan error, 1)
		go func() { done <- sup.Run(context.Background(), signals) }()
		return out, done
	}

	It("counts the replicas left in words that agree with the number, and fails when they all died", func() {
		out, done := run(&app.Supervisor{Args: []string{"-c", `exit 3`, "sh"}, Replicas: 2}, make(chan os.Signal))
		var err error
		Eventually(done).Should(Receive(&err))
		Expect(err).To(MatchError(app.ErrReplicasExited))
		Expect(out).To(gbytes.Say(`exited: exit status 3; 1 replica left`))
		Expect(out).To(gbytes.Say(`exited: exit status 3; 0 replicas left`))
	})

	It("restarts a replica that exits, with backoff, says so, and stops cleanly", func() {
		marker := filepath.Join(GinkgoT().TempDir(), "ran")
		// Replica 1 fails on its first run only; replica 0 runs until told to stop.
		script := `trap 'exit 0' TERM; if [ "$2" = "--replica-index=1" ] && [ ! -e ` + marker + ` ]; then touch ` + marker + `; exit 4; fi; while :; do sleep 0.05; done`
		signals := make(chan os.Signal, 1)
		out, done := run(&app.Supervisor{Args: []string{"-c", script, "sh"}, Replicas: 2,
			Restart: true, RestartBackoff: coreruntime.Backoff{Initial: 100 * time.Millisecond, Max: time.Second, Factor: 2}}, signals)
		Eventually(out).Should(gbytes.Say(`replica 1 \(pid \d+\) exited: exit status 4; restarting it in 100ms \(restart 1\)`))
		Eventually(out).Should(gbytes.Say(`replica 1: pid \d+, http://127\.0\.0\.1:1 \(restart 1\)`))
		Consistently(done, 300*time.Millisecond).ShouldNot(Receive())
		signals <- syscall.SIGTERM
		var err error
		Eventually(done).Should(Receive(&err))
		Expect(err).NotTo(HaveOccurred())
	})

	It("exits non-zero when a replica died and was not restarted", func() {
		script := `trap 'exit 0' TERM; if [ "$2" = "--replica-index=1" ]; then exit 5; fi; while :; do sleep 0.05; done`
		signals := make(chan os.Signal, 1)
		out, done := run(&app.Supervisor{Args: []string{"-c", script, "sh"}, Replicas: 2}, signals)
		Eventually(out).Should(gbytes.Say(`replica 1 \(pid \d+\) exited: exit status 5; 1 replica left`))
		signals <- syscall.SIGTERM
		var err error
		Eventually(done).Should(Receive(&err))
		Expect(err).To(MatchError(app.ErrReplicasDied))
		Expect(err.Error()).To(ContainSubstring("replica 1: exit status 5"))
	})

	It("refuses a second supervisor on the same data directory", func() {
		dir := GinkgoT().TempDir()
		unlock, err := app.LockSupervisor(dir)
		Expect(err).NotTo(HaveOccurred())
		_, err = app.LockSupervisor(dir)
		Expect(err).To(MatchError(app.ErrSupervisorRunning))
		Expect(err.Error()).To(ContainSubstring("pid " + itoa(os.Getpid())))
		unlock()
		unlock2, err := app.LockSupervisor(dir)
		Expect(err).NotTo(HaveOccurred())
		unlock2()
	})
})

func itoa(i int) string { return strconv.Itoa(i) }

var _ = Describe("Supervisor stopped while a restart is pending", Label("quick"), func() {
	It("exits cleanly: the replica was down only until its restart", func() {
		script := `trap 'exit 0' TERM; if [ "$2" = "--replica-index=1" ]; then exit 6; fi; while :; do sleep 0.05; done`
		out := gbytes.NewBuffer()
		signals := make(chan os.Signal, 1)
		sup := &app.Supervisor{Executable: "/bin/sh", Args: []string{"-c", script, "sh"}, Replicas: 2,
			Address: func(int) string { return "127.0.0.1:1" }, Out: out, ChildOut: GinkgoWriter, ChildErr: GinkgoWriter,
			Poll: 50 * time.Millisecond, StopTimeout: 10 * time.Second, Log: GinkgoLogr,
			Restart: true, RestartBackoff: coreruntime.Backoff{Initial: time.Hour, Max: time.Hour, Factor: 2}}
		done := make(chan error, 1)
		go func() { done <- sup.Run(context.Background(), signals) }()
		Eventually(out).Should(gbytes.Say(`replica 1 \(pid \d+\) exited: exit status 6; restarting it in 1h0m0s`))
		signals <- syscall.SIGTERM
		Eventually(done).Should(Receive(BeNil()))
	})
})

var _ = Describe("Supervisor's leadership line", Label("quick"), func() {
	It("names the holder when the leader is none of its replicas", func() {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_ = json.NewEncoder(w).Encode(app.LeaderInfo{Election: "dubbo-admin", Holder: "other-host-1", Term: 9, Held: true,
				Self: app.SelfInfo{Identity: "mine-1", Role: coreruntime.RoleCandidate}})
		}))
		DeferCleanup(srv.Close)
		out := gbytes.NewBuffer()
		signals := make(chan os.Signal, 1)
		sup := &app.Supervisor{Executable: "/bin/sh", Args: []string{"-c", `trap 'exit 0' TERM; while :; do sleep 0.05; done`, "sh"},
			Replicas: 1, Address: func(int) string { return strings.TrimPrefix(srv.URL, "http://") },
			Out: out, ChildOut: GinkgoWriter, ChildErr: GinkgoWriter, Poll: 50 * time.Millisecond, StopTimeout: 10 * time.Second, Log: GinkgoLogr}
		done := make(chan error, 1)
		go func() { done <- sup.Run(context.Background(), signals) }()
		Eventually(out).Should(gbytes.Say(`leader: other-host-1 leads term 9, and it is not one of this supervisor's replicas`))
		signals <- syscall.SIGTERM
		Eventually(done).Should(Receive(BeNil()))
	})
})
