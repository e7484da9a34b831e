package e2e_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gexec"

	"github.com/apache/dubbo-admin/app"
)

const replicas = 3

// repoRoot is the module's root directory.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// freeBasePort finds a port p such that p..p+n-1 are all free right now.
func freeBasePort(n int) int {
	GinkgoHelper()
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		Expect(err).NotTo(HaveOccurred())
		base := ln.Addr().(*net.TCPAddr).Port
		held := []net.Listener{ln}
		ok := base+n-1 <= 65535
		for i := 1; ok && i < n; i++ {
			l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(base+i)))
			if err != nil {
				ok = false
				break
			}
			held = append(held, l)
		}
		for _, l := range held {
			_ = l.Close()
		}
		if ok {
			return base
		}
	}
	Fail("no run of free ports found")
	return 0
}

func leaderOf(url string) (app.LeaderInfo, error) {
	var info app.LeaderInfo
	client := http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get(url + "/api/v1/leader")
	if err != nil {
		return info, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return info, fmt.Errorf("%s: %s", url, resp.Status)
	}
	return info, json.NewDecoder(resp.Body).Decode(&info)
}

func alive(pid int) bool {
	return !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

var _ = Describe("dubbo-admin run --replicas 3 on sqlite", Label("e2e", "sqlite"), Ordered, func() {
	var (
		bin     string
		session *gexec.Session
		urls    []string
		pids    map[int]int // replica index -> pid
		dbPath  string
	)

	BeforeAll(func() {
		var err error
		bin, err = gexec.Build("github.com/apache/dubbo-admin/app/dubbo-admin")
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(gexec.CleanupBuildArtifacts)

		base := freeBasePort(replicas)
		for i := range replicas {
			urls = append(urls, "http://127.0.0.1:"+strconv.Itoa(base+i))
		}
		root := repoRoot()
		dbPath = filepath.Join(GinkgoT().TempDir(), "admin.db")
		cmd := exec.Command(bin, "run", "--replicas", strconv.Itoa(replicas),
			"--db-dsn", dbPath,
			"--http-address", "127.0.0.1:"+strconv.Itoa(base),
			"--registry", "file://"+filepath.Join(root, "examples", "registry"),
			"--engine", "file://"+filepath.Join(root, "examples", "runtime"),
			"--lease-duration", "2s", "--renew-deadline", "1500ms", "--retry-period", "200ms", "--op-timeout", "500ms",
			"--drain-timeout", "5s", "--http-shutdown-timeout", "5s")
		session, err = gexec.Start(cmd, GinkgoWriter, GinkgoWriter)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() {
			// Only reached with a live supervisor when a spec failed.
			session.Kill().Wait(time.Minute)
			for _, pid := range pids {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		})
	})

	It("elects exactly one leader among the replicas", func() {
		pids = map[int]int{}
		Eventually(func(g Gomega) {
			leading := 0
			for i, u := range urls {
				info, err := leaderOf(u)
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(info.Self.Replica).To(HaveValue(Equal(i)))
				pids[i] = info.Self.PID
				if info.Self.Leading {
					leading++
				}
			}
			g.Expect(leading).To(Equal(1))
		}).WithTimeout(2 * time.Minute).WithPolling(100 * time.Millisecond).Should(Succeed())
		Eventually(session).WithTimeout(time.Minute).Should(gbytesSay(`leader: replica \d \(pid \d+, http://127\.0\.0\.1:\d+\) leads term \d+`))
	})

	It("moves leadership to another replica when the leader is killed with SIGKILL", func() {
		var old app.LeaderInfo
		oldIndex := -1
		for i, u := range urls {
			info, err := leaderOf(u)
			Expect(err).NotTo(HaveOccurred())
			if info.Self.Leading {
				old, oldIndex = info, i
			}
		}
		Expect(oldIndex).NotTo(Equal(-1), "a replica leads")
		Expect(syscall.Kill(old.Self.PID, syscall.SIGKILL)).To(Succeed())

		Eventually(session).WithTimeout(time.Minute).Should(gbytesSay(
			fmt.Sprintf(`replica %d \(pid %d\) exited: signal: killed; restarting it in 1s \(restart 1\)`, oldIndex, old.Self.PID)))

		var successor app.LeaderInfo
		Eventually(func(g Gomega) {
			leading := 0
			for i, u := range urls {
				info, err := leaderOf(u)
				if i == oldIndex && err != nil {
					continue // the supervisor restarts it, with a new identity: it may lead next
				}
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(info.Held).To(BeTrue())
				g.Expect(info.Holder).NotTo(Equal(old.Holder))
				g.Expect(info.Term).To(BeNumerically(">", old.Term))
				if info.Self.Leading {
					leading++
					successor = info
				}
			}
			g.Expect(leading).To(Equal(1))
		}).WithTimeout(2 * time.Minute).WithPolling(100 * time.Millisecond).Should(Succeed())
		Expect(successor.Self.Term).To(Equal(successor.Term))
		Eventually(session).WithTimeout(time.Minute).Should(gbytesSay(
			fmt.Sprintf(`leader: replica %d \(pid %d, [^)]+\) leads term %d`, *successor.Self.Replica, successor.Self.PID, successor.Term)))
		Expect(alive(old.Self.PID)).To(BeFalse())

		// The membership table lists the killed replica as gone once it was
		// not seen for the lease duration, and never as alive again.
		status := func(g Gomega) app.LeaseStatus {
			out, err := exec.Command(bin, "leader", "status", "-o", "json", "--db-dsn", dbPath).Output()
			g.Expect(err).NotTo(HaveOccurred())
			var st app.LeaseStatus
			g.Expect(json.Unmarshal(out, &st)).To(Succeed())
			return st
		}
		goneRow := func(g Gomega) bool {
			for _, r := range status(g).Replicas {
				if r.Identity == old.Holder {
					return r.Gone
				}
			}
			g.Expect("row of "+old.Holder).To(BeEmpty(), "the killed replica's row is kept")
			return false
		}
		Eventually(goneRow).WithTimeout(time.Minute).Should(BeTrue())
		Consistently(goneRow, 2*time.Second, 200*time.Millisecond).Should(BeTrue())
	})

	It("stops every replica gracefully on SIGTERM and leaves none behind", func() {
		session.Terminate()
		Eventually(session).WithTimeout(2 * time.Minute).Should(gexec.Exit(0))
		Expect(session.Out).To(gbytesSay(`stopping: sending terminated to every replica`))
		for i, pid := range pids {
			Expect(alive(pid)).To(BeFalse(), "replica %d (pid %d) is gone", i, pid)
		}
		Expect(string(session.Out.Contents())).To(MatchRegexp(`replica \d \(pid \d+\) stopped`))
	})
})
