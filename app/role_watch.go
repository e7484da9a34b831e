package app

import (
	"context"

	"github.com/apache/dubbo-admin/pkg/core/runtime"
)

// roleWatch counts the runtime's role changes into the metrics. It
// subscribes before the runtime starts, so that it sees every change; its
// goroutine ends when the runtime stops (the subscription closes) or when
// stop cancels it, and stop waits for it.
type roleWatch struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func startRoleWatch(rt *runtime.Runtime, m *Metrics) *roleWatch {
	ctx, cancel := context.WithCancel(context.Background())
	w := &roleWatch{cancel: cancel, done: make(chan struct{})}
	changes := rt.Subscribe(ctx)
	go func() {
		defer close(w.done)
		for ch := range changes {
			m.roleChanged(ch.To)
		}
	}()
	return w
}

func (w *roleWatch) stop() {
	w.cancel()
	<-w.done
}
