package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-logr/logr"

	"github.com/apache/dubbo-admin/pkg/core/runtime"
)

// ErrReplicasExited: every replica exited while the supervisor was not
// stopping them.
var ErrReplicasExited = errors.New("every replica exited")

// ErrReplicasDied: some replica exited on its own and was not restarted, or
// did not stop cleanly; the supervisor's exit status is then non-zero.
var ErrReplicasDied = errors.New("replicas died")

// Supervisor runs Replicas processes of Executable on this machine and
// watches them. Each goroutine it starts (one waiter per child process, one
// leadership poller) is waited for before Run returns, and Run returns only
// once every child has exited: children that do not stop within
// StopTimeout of the stop signal are killed.
type Supervisor struct {
	// Executable is the binary to run; Args its arguments for every
	// replica, to which Run appends --replicas=1 --replica-index=i.
	Executable string
	Args       []string
	// Env is the replicas' environment (ADMIN_REPLICA_INDEX is added).
	Env []string
	// Replicas is the number of replica processes.
	Replicas int
	// Address returns the HTTP address of replica i.
	Address func(i int) string
	// Out receives the supervisor's lines: the replicas it started, each
	// leadership change, each exit and restart.
	Out io.Writer
	// ChildOut and ChildErr receive the replicas' stdout and stderr.
	ChildOut, ChildErr io.Writer
	// Poll is the period of the leadership poll.
	Poll time.Duration
	// StopTimeout bounds a graceful stop before the kill.
	StopTimeout time.Duration
	// Restart starts a replica that exited on its own again, after
	// RestartBackoff.Delay(n) for its n-th consecutive quick exit (a run
	// longer than RestartBackoff.Max resets the count).
	Restart        bool
	RestartBackoff runtime.Backoff
	Log            logr.Logger

	outMu sync.Mutex
	mu    sync.Mutex
	kids  []*child // the current process of each replica, by index
}

type child struct {
	index    int
	restarts int
	cmd      *exec.Cmd
	url      string
	started  time.Time
	exited   atomic.Bool
}

type exit struct {
	c   *child
	err error
}

// printf writes one line to Out; the poller and Run both print.
func (s *Supervisor) printf(format string, args ...any) {
	s.outMu.Lock()
	defer s.outMu.Unlock()
	fmt.Fprintf(s.Out, format+"\n", args...)
}

// current returns the current process of every replica.
func (s *Supervisor) current() []*child {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.kids)
}

// Run starts the replicas and watches them until a signal arrives on
// signals (forwarded to every live replica, then a second signal, or the
// StopTimeout, kills them) or ctx ends (treated as SIGTERM), or until every
// replica exited on its own and none is to be restarted
// (ErrReplicasExited). A replica that exits on its own is restarted with
// backoff when Restart is set. Run returns ErrReplicasDied when a replica
// exited on its own and stayed down, or did not stop cleanly.
func (s *Supervisor) Run(ctx context.Context, signals <-chan os.Signal) error {
	children, err := s.startAll()
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.kids = children
	s.mu.Unlock()
	exits := make(chan exit, len(children))
	var wg sync.WaitGroup
	wait := func(c *child) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := c.cmd.Wait()
			c.exited.Store(true)
			exits <- exit{c: c, err: err}
		}()
	}
	for _, c := range children {
		wait(c)
	}
	pollCtx, stopPoll := context.WithCancel(context.Background())
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.pollLeadership(pollCtx)
	}()
	defer func() {
		stopPoll()
		wg.Wait()
	}()

	var (
		stopping bool
		deadline <-chan time.Time
		died     = map[int]string{} // replicas down after an exit of their own
		failed   []string
		ctxDone  = ctx.Done()
		restarts = map[int]*time.Timer{}
		due      = make(chan int, len(children))
		live     = len(children)
	)
	stop := func(sig os.Signal) {
		if stopping {
			s.printf("second signal (%v): killing the replicas", sig)
			s.killAll(s.current())
			return
		}
		stopping = true
		for i, t := range restarts {
			// It was down only until its restart: the stop is not its failure.
			t.Stop()
			delete(restarts, i)
			delete(died, i)
		}
		s.printf("stopping: sending %v to every replica (killed after %v)", sig, s.StopTimeout)
		for _, c := range s.current() {
			if !c.exited.Load() {
				if err := c.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
					s.Log.Error(err, "forward signal", "replica", c.index)
				}
			}
		}
		t := time.NewTimer(s.StopTimeout)
		deadline = t.C
	}
	for live > 0 || len(restarts) > 0 {
		select {
		case sig := <-signals:
			stop(sig)
		case <-ctxDone:
			ctxDone = nil
			stop(syscall.SIGTERM)
		case <-deadline:
			deadline = nil
			s.printf("replicas still running %v after the stop signal: killing them", s.StopTimeout)
			s.killAll(s.current())
		case i := <-due:
			if _, ok := restarts[i]; !ok || stopping {
				continue
			}
			delete(restarts, i)
			old := s.current()[i]
			c, err := s.start(i, old.restarts+1)
			if err != nil {
				s.printf("replica %d: restart failed: %v", i, err)
				died[i] = err.Error()
				continue
			}
			s.mu.Lock()
			s.kids[i] = c
			s.mu.Unlock()
			delete(died, i)
			live++
			wait(c)
		case e := <-exits:
			live--
			pid := e.c.cmd.Process.Pid
			status := "exited with status 0"
			if e.err != nil {
				status = "exited: " + e.err.Error()
			}
			switch {
			case stopping && e.err == nil:
				s.printf("replica %d (pid %d) stopped", e.c.index, pid)
			case stopping:
				s.printf("replica %d (pid %d) %s", e.c.index, pid, status)
				failed = append(failed, fmt.Sprintf("replica %d: %v", e.c.index, e.err))
			case s.Restart:
				n := e.c.restarts
				if time.Since(e.c.started) >= s.RestartBackoff.Max {
					n = 0 // it ran long enough: start the sequence again
				}
				delay := s.RestartBackoff.Delay(n)
				e.c.restarts = n
				s.printf("replica %d (pid %d) %s; restarting it in %v (restart %d)", e.c.index, pid, status, delay, n+1)
				died[e.c.index] = strings.TrimPrefix(status, "exited: ")
				i := e.c.index
				restarts[i] = time.AfterFunc(delay, func() { due <- i })
			default:
				s.printf("replica %d (pid %d) %s; %s left", e.c.index, pid, status, plural(live, "replica"))
				died[e.c.index] = strings.TrimPrefix(status, "exited: ")
			}
		}
	}
	switch {
	case !stopping:
		return ErrReplicasExited
	case len(failed) > 0 || len(died) > 0:
		for i, why := range died {
			failed = append(failed, fmt.Sprintf("replica %d: %s", i, why))
		}
		slices.Sort(failed)
		return fmt.Errorf("%w: %s", ErrReplicasDied, strings.Join(failed, "; "))
	}
	return nil
}

// plural is "1 replica", "0 replicas", "2 replicas".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

// startAll starts every replica, or none: on a failure it kills and reaps
// the ones already started.
func (s *Supervisor) startAll() ([]*child, error) {
	children := make([]*child, 0, s.Replicas)
	for i := range s.Replicas {
		c, err := s.start(i, 0)
		if err != nil {
			s.killAll(children)
			for _, c := range children {
				_ = c.cmd.Wait()
			}
			return nil, err
		}
		children = append(children, c)
	}
	return children, nil
}

// start starts the process of replica i; restarts counts its earlier
// quick exits.
func (s *Supervisor) start(i, restarts int) (*child, error) {
	args := append(append([]string{}, s.Args...), "--replicas=1", "--"+replicaIndexFlag+"="+strconv.Itoa(i))
	cmd := exec.Command(s.Executable, args...)
	cmd.Env = append(append([]string{}, s.Env...), ReplicaIndexEnv+"="+strconv.Itoa(i))
	cmd.Stdout, cmd.Stderr = s.ChildOut, s.ChildErr
	cmd.SysProcAttr = childSysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start replica %d: %w", i, err)
	}
	c := &child{index: i, restarts: restarts, cmd: cmd, url: "http://" + s.Address(i), started: time.Now()}
	if restarts > 0 {
		s.printf("replica %d: pid %d, %s (restart %d)", i, cmd.Process.Pid, c.url, restarts)
	} else {
		s.printf("replica %d: pid %d, %s", i, cmd.Process.Pid, c.url)
	}
	return c, nil
}

func (s *Supervisor) killAll(children []*child) {
	for _, c := range children {
		if !c.exited.Load() {
			if err := killGroup(c.cmd.Process); err != nil && !errors.Is(err, os.ErrProcessDone) && !errors.Is(err, syscall.ESRCH) {
				s.Log.Error(err, "kill replica", "replica", c.index)
			}
		}
	}
}
