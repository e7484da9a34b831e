package harness

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"gorm.io/gorm"

	"github.com/apache/dubbo-admin/internal/faultproxy"
	"github.com/apache/dubbo-admin/pkg/core/database"
	"github.com/apache/dubbo-admin/pkg/core/leader"
	"github.com/apache/dubbo-admin/pkg/core/runtime"
	"github.com/apache/dubbo-admin/pkg/core/store"
)

// BuildBinary builds app/dubbo-admin into dir and returns the binary's path.
// It runs `go build` in the calling test's working directory, which must be
// inside the module.
func BuildBinary(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "dubbo-admin")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/apache/dubbo-admin/app/dubbo-admin")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("harness: go build app/dubbo-admin: %w: %s", err, out)
	}
	return bin, nil
}

// ProcessConfig configures StartProcesses.
type ProcessConfig struct {
	// Binary is the built dubbo-admin (BuildBinary); required.
	Binary   string
	Database Database
	// Source is the Engine's file directory; required.
	Source *Source
	// Dir holds the replicas' logs and the empty registry directory;
	// required.
	Dir string
	// Leader holds the election timings; the zero value means FastTimings().
	Leader leader.Config
	// Proxied puts a faultproxy.Proxy in front of each replica's
	// connections (MySQL and PostgreSQL only).
	Proxied bool
	// DrainTimeout is --drain-timeout; 0 means DefaultDrainTimeout.
	DrainTimeout time.Duration
	// Output, if set, also receives every replica's log.
	Output io.Writer
	// Etcd, if set, elects through etcd instead of the lease row.
	Etcd *EtcdElection
	// ExtraArgs are appended to every replica's `run` flags (e.g. another
	// election backend).
	ExtraArgs []string
}

// Processes is a cluster of replica processes.
type Processes struct {
	cfg ProcessConfig
	// WriteLog orders every write to the resources table.
	WriteLog *WriteLog
	// Store reads the shared store through the observer's own pool.
	Store    store.ResourceStore
	observer *gorm.DB
	procs    []*Process
	registry string
}

// Process is one replica slot; Restart fills it with a new process.
type Process struct {
	Index int
	// Proxy is in front of the replica's connections (nil when not
	// Proxied); it outlives restarts.
	Proxy *faultproxy.Proxy
	// EtcdProxy is in front of the replica's etcd connections (nil unless
	// Etcd.Proxied); it outlives restarts.
	EtcdProxy *faultproxy.Proxy

	mu      sync.Mutex
	runs    []*run
	stopped bool // SIGSTOP sent, no SIGCONT yet
}

// run is one process of a slot.
type run struct {
	cmd      *exec.Cmd
	logPath  string
	url      string
	exited   chan struct{}
	exitErr  error
	killedAt time.Time // when Kill sent SIGKILL; set once the process is reaped
}

// StartProcesses prepares the database (store table and write log) and
// starts n replica processes; it returns once each serves HTTP, without
// waiting for a leader. Close kills what is left.
func StartProcesses(ctx context.Context, n int, cfg ProcessConfig) (*Processes, error) {
	if cfg.Binary == "" || cfg.Source == nil || cfg.Dir == "" {
		return nil, errors.New("harness: ProcessConfig needs Binary, Source and Dir")
	}
	if cfg.Leader == (leader.Config{}) {
		cfg.Leader = FastTimings()
	}
	if cfg.DrainTimeout == 0 {
		cfg.DrainTimeout = DefaultDrainTimeout
	}
	if err := cfg.Leader.Validate(); err != nil {
		return nil, err
	}
	registry := filepath.Join(cfg.Dir, "registry")
	if err := os.MkdirAll(registry, 0o755); err != nil {
		return nil, fmt.Errorf("harness: %w", err)
	}
	observer, err := database.Open(ctx, cfg.Database.Config)
	if err != nil {
		return nil, fmt.Errorf("harness: open observer pool: %w", err)
	}
	st, wl, err := prepare(ctx, observer)
	if err != nil {
		_ = database.Close(observer)
		return nil, err
	}
	p := &Processes{cfg: cfg, WriteLog: wl, Store: st, observer: observer, registry: registry}
	for i := range n {
		pr := &Process{Index: i}
		if cfg.Proxied && cfg.Database.Addr != "" {
			px, err := faultproxy.Start(cfg.Database.Addr)
			if err != nil {
				return nil, errors.Join(fmt.Errorf("harness: start proxy of replica %d: %w", i, err), p.Close())
			}
			pr.Proxy = px
		}
		if cfg.Etcd != nil && cfg.Etcd.Proxied {
			px, err := faultproxy.Start(cfg.Etcd.Addr)
			if err != nil {
				return nil, errors.Join(fmt.Errorf("harness: start etcd proxy of replica %d: %w", i, err), p.Close())
			}
			pr.EtcdProxy = px
		}
		p.procs = append(p.procs, pr)
	}
	for i := range n {
		if err := p.Restart(ctx, i); err != nil {
			return nil, errors.Join(err, p.Close())
		}
	}
	return p, nil
}

// N is the number of replica slots.
func (p *Processes) N() int { return len(p.procs) }

// Process returns slot i.
func (p *Processes) Process(i int) *Process { return p.procs[i] }

// Observer is the harness's own pool on the database (not proxied).
func (p *Processes) Observer() *gorm.DB { return p.observer }

func (p *Processes) args(i int) ([]string, error) {
	dbCfg := p.cfg.Database.Config
	if px := p.procs[i].Proxy; px != nil {
		var err error
		if dbCfg, err = p.cfg.Database.Via(px.Addr()); err != nil {
			return nil, err
		}
	}
	l := p.cfg.Leader
	ms := func(d time.Duration) string { return fmt.Sprintf("%dms", d.Milliseconds()) }
	var election []string
	if e := p.cfg.Etcd; e != nil {
		addr := e.Addr
		if px := p.procs[i].EtcdProxy; px != nil {
			addr = px.Addr()
		}
		election = e.etcdArgs(addr)
	}
	lock := []string{"--fast-failover=" + strconv.FormatBool(l.FastFailover)}
	if l.FastFailover {
		lock = append(lock, "--lock-window", ms(l.LockWindow), "--lock-check-period", ms(l.LockCheckPeriod))
	}
	return append([]string{"run",
		"--db-driver", dbCfg.Driver, "--db-dsn", dbCfg.DSN,
		"--store", "gorm",
		"--registry", "file://" + p.registry,
		"--engine", p.cfg.Source.URL(),
		"--http-address", "127.0.0.1:0", "--http-shutdown-timeout", "2s",
		"--election-name", l.Name,
		"--lease-duration", ms(l.LeaseDuration), "--renew-deadline", ms(l.RenewDeadline),
		"--retry-period", ms(l.RetryPeriod), "--jitter-factor", fmt.Sprint(l.JitterFactor),
		"--op-timeout", ms(l.OpTimeout), "--drain-timeout", ms(p.cfg.DrainTimeout),
		"--log-format", "json", "--log-level", "info",
	}, append(append(election, lock...), p.cfg.ExtraArgs...)...), nil
}

// Restart starts a new process in slot i, whose previous process (if any)
// must have exited; it returns once the new one serves HTTP.
func (p *Processes) Restart(ctx context.Context, i int) error {
	pr := p.procs[i]
	pr.mu.Lock()
	if r := pr.current(); r != nil && !r.done() {
		pr.mu.Unlock()
		return fmt.Errorf("harness: replica %d is still running (pid %d)", i, r.cmd.Process.Pid)
	}
	gen := len(pr.runs)
	pr.mu.Unlock()
	args, err := p.args(i)
	if err != nil {
		return err
	}
	logPath := filepath.Join(p.cfg.Dir, fmt.Sprintf("replica-%d.%d.log", i, gen))
	logFile, err := os.Create(logPath)
	if err != nil {
		return fmt.Errorf("harness: %w", err)
	}
	cmd := exec.Command(p.cfg.Binary, args...)
	cmd.Env = cleanEnv()
	var out io.Writer = logFile
	if p.cfg.Output != nil {
		out = io.MultiWriter(logFile, prefixWriter(p.cfg.Output, fmt.Sprintf("[replica %d.%d] ", i, gen)))
	}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return fmt.Errorf("harness: start replica %d: %w", i, err)
	}
	r := &run{cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	go func() {
		r.exitErr = cmd.Wait()
		_ = logFile.Close()
		close(r.exited)
	}()
	pr.mu.Lock()
	pr.runs = append(pr.runs, r)
	pr.stopped = false
	pr.mu.Unlock()

	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		if url := servingURL(logPath); url != "" {
			pr.mu.Lock()
			r.url = url
			pr.mu.Unlock()
			return nil
		}
		select {
		case <-r.exited:
			data, _ := os.ReadFile(logPath)
			return fmt.Errorf("harness: replica %d exited during start-up (%v): %s", i, r.exitErr, data)
		case <-ctx.Done():
			return fmt.Errorf("harness: replica %d: wait for HTTP: %w", i, context.Cause(ctx))
		case <-t.C:
		}
	}
}

// cleanEnv is this process's environment without ADMIN_* settings, so that
// only the flags configure a replica.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ADMIN_") {
			env = append(env, kv)
		}
	}
	return env
}

// logLine is the part of a replica's JSON log line the harness reads.
type logLine struct {
	TS     string `json:"ts"`
	Msg    string `json:"msg"`
	URL    string `json:"url"`
	Term   int64  `json:"term"`
	Holder string `json:"holder"`
}

func servingURL(path string) string {
	var url string
	_ = scanLog(path, func(l logLine) bool {
		if l.Msg == "serving HTTP" && l.URL != "" {
			url = l.URL
			return false
		}
		return true
	})
	return url
}

func scanLog(path string, f func(logLine) bool) error {
	file, err := os.Open(path)
	if err != nil {
		return err
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	sc.Buffer(make([]byte, 64*1024), 4<<20)
	for sc.Scan() {
		var l logLine
		if json.Unmarshal(sc.Bytes(), &l) != nil {
			continue
		}
		if !f(l) {
			return nil
		}
	}
	return sc.Err()
}

func (pr *Process) current() *run {
	if len(pr.runs) == 0 {
		return nil
	}
	return pr.runs[len(pr.runs)-1]
}

func (r *run) done() bool {
	select {
	case <-r.exited:
		return true
	default:
		return false
	}
}

// PID is the current process's pid (0 before the first start).
func (pr *Process) PID() int {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if r := pr.current(); r != nil {
		return r.cmd.Process.Pid
	}
	return 0
}

// URL is the current process's HTTP base URL.
func (pr *Process) URL() string {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if r := pr.current(); r != nil {
		return r.url
	}
	return ""
}

// Alive reports whether the current process has not exited.
func (pr *Process) Alive() bool {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	r := pr.current()
	return r != nil && !r.done()
}

// Stopped reports whether the process was sent SIGSTOP and not SIGCONT.
func (pr *Process) Stopped() bool {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	return pr.stopped
}

// Exited is closed when the current process has exited.
func (pr *Process) Exited() <-chan struct{} {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	return pr.current().exited
}

// ExitError is the current process's exit (nil for status 0); valid once
// Exited is closed.
func (pr *Process) ExitError() error {
	pr.mu.Lock()
	r := pr.current()
	pr.mu.Unlock()
	<-r.exited
	return r.exitErr
}

func (pr *Process) signal(sig syscall.Signal) error {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	r := pr.current()
	if r == nil || r.done() {
		return fmt.Errorf("harness: replica %d is not running", pr.Index)
	}
	if err := r.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("harness: signal %v to replica %d: %w", sig, pr.Index, err)
	}
	switch sig {
	case syscall.SIGSTOP:
		pr.stopped = true
	case syscall.SIGCONT:
		pr.stopped = false
	}
	return nil
}

// Kill sends SIGKILL to replica i and waits until it is reaped; the
// instant it was reaped closes its last leader interval.
func (p *Processes) Kill(i int) error {
	pr := p.procs[i]
	// The process's leader interval ends when the signal is sent: the
	// kernel acts on SIGKILL at once, stopped process or not, while the
	// reaping is seen only once this goroutine runs again. On SQLite a
	// successor takes the flock within milliseconds of the death, before
	// that: the reaped instant made a false overlap (CI, KillMidTransaction).
	sent := time.Now()
	if err := pr.signal(syscall.SIGKILL); err != nil {
		return err
	}
	pr.mu.Lock()
	r := pr.current()
	pr.mu.Unlock()
	<-r.exited
	pr.mu.Lock()
	r.killedAt, pr.stopped = sent, false
	pr.mu.Unlock()
	return nil
}

// Stop sends SIGSTOP to replica i.
func (p *Processes) Stop(i int) error { return p.procs[i].signal(syscall.SIGSTOP) }

// Cont sends SIGCONT to replica i.
func (p *Processes) Cont(i int) error { return p.procs[i].signal(syscall.SIGCONT) }

// Term sends SIGTERM to replica i; wait on Process(i).Exited.
func (p *Processes) Term(i int) error { return p.procs[i].signal(syscall.SIGTERM) }

// LeaderInfo is the part of /api/v1/leader the harness reads.
type LeaderInfo struct {
	Holder string `json:"holder"`
	Term   int64  `json:"term"`
	Held   bool   `json:"held"`
	Self   struct {
		Identity string `json:"identity"`
		Role     string `json:"role"`
		Leading  bool   `json:"leading"`
		Term     int64  `json:"term"`
		PID      int    `json:"pid"`
	} `json:"self"`
}

var httpClient = &http.Client{Timeout: time.Second}

// Info reads /api/v1/leader of replica i.
func (p *Processes) Info(ctx context.Context, i int) (LeaderInfo, error) {
	var info LeaderInfo
	url := p.procs[i].URL()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/api/v1/leader", nil)
	if err != nil {
		return info, fmt.Errorf("harness: %w", err)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return info, fmt.Errorf("harness: replica %d: %w", i, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return info, fmt.Errorf("harness: replica %d: /api/v1/leader: %s", i, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
		return info, fmt.Errorf("harness: replica %d: decode /api/v1/leader: %w", i, err)
	}
	return info, nil
}

// Leaders asks every live, not stopped replica whether it leads and returns
// those that do, with their terms. A replica that does not answer is an
// error.
func (p *Processes) Leaders(ctx context.Context) (idx []int, terms []int64, err error) {
	for i, pr := range p.procs {
		if !pr.Alive() || pr.Stopped() {
			continue
		}
		info, err := p.Info(ctx, i)
		if err != nil {
			return nil, nil, err
		}
		if info.Self.Leading {
			idx, terms = append(idx, i), append(terms, info.Self.Term)
		}
	}
	return idx, terms, nil
}

// Leader returns the one leading replica and its term; ok is false when
// none or several lead.
func (p *Processes) Leader(ctx context.Context) (i int, term int64, ok bool, err error) {
	idx, terms, err := p.Leaders(ctx)
	if err != nil || len(idx) != 1 {
		return -1, 0, false, err
	}
	return idx[0], terms[0], true, nil
}

// WaitForLeader polls every 20ms until exactly one replica leads with a
// term other than notTerm (0: any), or ctx ends.
func (p *Processes) WaitForLeader(ctx context.Context, notTerm int64) (i int, term int64, err error) {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	var last error
	for {
		i, term, ok, err := p.Leader(ctx)
		if ok && term != notTerm {
			return i, term, nil
		}
		last = err
		select {
		case <-ctx.Done():
			return -1, 0, fmt.Errorf("harness: no leader (last error: %v): %w", last, context.Cause(ctx))
		case <-t.C:
		}
	}
}

// Timeline rebuilds, from every process's JSON log, the intervals during
// which it ran leader components: from its "leader runner: Leading" line to
// the Candidate or Stopped line that ends the term (logged after every
// leader component returned), or, for a killed process still leading, the
// instant it was reaped. The interval contains the components' real one.
func (p *Processes) Timeline() (*Timeline, error) {
	tl := &Timeline{}
	for i, pr := range p.procs {
		pr.mu.Lock()
		runs := append([]*run(nil), pr.runs...)
		pr.mu.Unlock()
		for gen, r := range runs {
			name := fmt.Sprintf("replica-%d.%d", i, gen)
			var open *Interval
			err := scanLog(r.logPath, func(l logLine) bool {
				ts, err := time.Parse(time.RFC3339Nano, l.TS)
				if err != nil {
					return true
				}
				switch l.Msg {
				case "leader runner: Leading":
					open = &Interval{Replica: name, Component: "leader components", Term: l.Term, Holder: l.Holder, Start: ts}
				case runtime.LogDrained, "leader runner: Candidate", "leader runner: Stopped":
					if open != nil && l.Term == open.Term {
						open.Stop = ts
						tl.Add(*open)
						open = nil
					}
				}
				return true
			})
			if err != nil {
				return nil, fmt.Errorf("harness: read log of %s: %w", name, err)
			}
			if open != nil {
				pr.mu.Lock()
				if r.done() {
					open.Stop = r.killedAt
					if open.Stop.IsZero() {
						open.Stop = time.Now() // exited without a last line: bounded by now
					}
				}
				pr.mu.Unlock()
				tl.Add(*open)
			}
		}
	}
	return tl, nil
}

// Close kills every process group that is left, waits for the processes,
// closes the proxies and the observer's pool.
func (p *Processes) Close() error {
	for _, pr := range p.procs {
		pr.mu.Lock()
		runs := append([]*run(nil), pr.runs...)
		pr.mu.Unlock()
		for _, r := range runs {
			if !r.done() {
				_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
			}
			<-r.exited
		}
		if pr.Proxy != nil {
			pr.Proxy.Close()
		}
		if pr.EtcdProxy != nil {
			pr.EtcdProxy.Close()
		}
	}
	return database.Close(p.observer)
}

// prefixWriter prefixes every write (a log line) with prefix.
func prefixWriter(w io.Writer, prefix string) io.Writer {
	return writerFunc(func(b []byte) (int, error) {
		if _, err := io.WriteString(w, prefix+string(b)); err != nil {
			return 0, err
		}
		return len(b), nil
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }
