package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-logr/logr"
)

// ErrReplicasExited: every replica exited while the supervisor was not
// stopping them.
var ErrReplicasExited = errors.New("every replica exited")

// Supervisor runs Replicas processes of Executable on this machine and
// watches them. Each goroutine it starts (one waiter per child, one
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
	// leadership change, each exit.
	Out io.Writer
	// ChildOut and ChildErr receive the replicas' stdout and stderr.
	ChildOut, ChildErr io.Writer
	// Poll is the period of the leadership poll.
	Poll time.Duration
	// StopTimeout bounds a graceful stop before the kill.
	StopTimeout time.Duration
	Log         logr.Logger

	outMu sync.Mutex
}

type child struct {
	index  int
	cmd    *exec.Cmd
	url    string
	exited atomic.Bool
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

// Run starts the replicas and watches them until a signal arrives on
// signals (forwarded to every live replica, then a second signal, or the
// StopTimeout, kills them) or ctx ends (treated as SIGTERM), or until every
// replica exited on its own (ErrReplicasExited).
func (s *Supervisor) Run(ctx context.Context, signals <-chan os.Signal) error {
	children, err := s.startAll()
	if err != nil {
		return err
	}
	exits := make(chan exit, len(children))
	var wg sync.WaitGroup
	for _, c := range children {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := c.cmd.Wait()
			c.exited.Store(true)
			exits <- exit{c: c, err: err}
		}()
	}
	pollCtx, stopPoll := context.WithCancel(context.Background())
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.pollLeadership(pollCtx, children)
	}()
	defer func() {
		stopPoll()
		wg.Wait()
	}()

	var (
		stopping bool
		deadline <-chan time.Time
		failed   []string
		ctxDone  = ctx.Done()
	)
	stop := func(sig os.Signal) {
		if stopping {
			s.printf("second signal (%v): killing the replicas", sig)
			s.killAll(children)
			return
		}
		stopping = true
		s.printf("stopping: sending %v to every replica (killed after %v)", sig, s.StopTimeout)
		for _, c := range children {
			if !c.exited.Load() {
				if err := c.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
					s.Log.Error(err, "forward signal", "replica", c.index)
				}
			}
		}
		t := time.NewTimer(s.StopTimeout)
		deadline = t.C
	}
	for live := len(children); live > 0; {
		select {
		case sig := <-signals:
			stop(sig)
		case <-ctxDone:
			ctxDone = nil
			stop(syscall.SIGTERM)
		case <-deadline:
			deadline = nil
			s.printf("replicas still running %v after the stop signal: killing them", s.StopTimeout)
			s.killAll(children)
		case e := <-exits:
			live--
			pid := e.c.cmd.Process.Pid
			switch {
			case e.err == nil && stopping:
				s.printf("replica %d (pid %d) stopped", e.c.index, pid)
			case e.err == nil:
				s.printf("replica %d (pid %d) exited with status 0; %d replicas left", e.c.index, pid, live)
			default:
				s.printf("replica %d (pid %d) exited: %v; %d replicas left", e.c.index, pid, e.err, live)
				if stopping {
					failed = append(failed, fmt.Sprintf("replica %d: %v", e.c.index, e.err))
				}
			}
		}
	}
	switch {
	case !stopping:
		return ErrReplicasExited
	case len(failed) > 0:
		return fmt.Errorf("replicas did not stop cleanly: %v", failed)
	}
	return nil
}

// startAll starts every replica, or none: on a failure it kills and reaps
// the ones already started.
func (s *Supervisor) startAll() ([]*child, error) {
	children := make([]*child, 0, s.Replicas)
	for i := range s.Replicas {
		args := append(append([]string{}, s.Args...), "--replicas=1", "--"+replicaIndexFlag+"="+strconv.Itoa(i))
		cmd := exec.Command(s.Executable, args...)
		cmd.Env = append(append([]string{}, s.Env...), ReplicaIndexEnv+"="+strconv.Itoa(i))
		cmd.Stdout, cmd.Stderr = s.ChildOut, s.ChildErr
		cmd.SysProcAttr = childSysProcAttr()
		if err := cmd.Start(); err != nil {
			s.killAll(children)
			for _, c := range children {
				_ = c.cmd.Wait()
			}
			return nil, fmt.Errorf("start replica %d: %w", i, err)
		}
		c := &child{index: i, cmd: cmd, url: "http://" + s.Address(i)}
		children = append(children, c)
		s.printf("replica %d: pid %d, %s", i, cmd.Process.Pid, c.url)
	}
	return children, nil
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
