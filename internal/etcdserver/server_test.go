package etcdserver_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/apache/dubbo-admin/internal/etcdserver"
	"github.com/apache/dubbo-admin/pkg/core/database/dbtest"
)

func TestStopAndRestart(t *testing.T) {
	if ok, why := etcdserver.Available(); !ok {
		if dbtest.Strict() {
			t.Fatal(why)
		}
		dbtest.ReportSkip("internal/etcdserver", "etcd", why)
		t.Skip(why)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	s, err := etcdserver.Start(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	t.Logf("etcd ready at %s in %v", s.Endpoint(), time.Since(start))
	s.Kill()
	if c, err := net.DialTimeout("tcp", s.Addr(), time.Second); err == nil {
		c.Close()
		t.Fatal("a killed member still accepted connections")
	}
	if err := s.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	s.Stop()
	if err := s.Restart(ctx); err != nil {
		t.Fatal(err)
	}
}
