package zktest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/url"
	"path"
	"sync"
	"sync/atomic"

	"github.com/go-zookeeper/zk"
)

// Roots of Dubbo's two layouts (the source's InterfaceRoot and
// ApplicationRoot; not imported, so that the source's own specs can use
// this package).
const (
	interfaceRoot   = "/dubbo"
	applicationRoot = "/services"
)

// Layout is a synthetic Dubbo registry: Services services of Instances
// providers each, every provider on its own address.
//
// Interface level: service i is the interface ServiceName(i), registered by
// the application App(i) (ten services per application), each provider a
// URL node under /dubbo/<interface>/providers. Application level: service i
// is the application App(i), each provider a ServiceInstance node under
// /services/<app>/<ip:port>.
type Layout struct {
	Services, Instances int
	ApplicationLevel    bool
}

// ServiceName is the interface of service i (interface level).
func (l Layout) ServiceName(i int) string {
	return fmt.Sprintf("org.apache.dubbo.bench.Service%05d", i)
}

// App is the application that registers service i.
func (l Layout) App(i int) string {
	if l.ApplicationLevel {
		return fmt.Sprintf("bench-application-%05d", i)
	}
	return fmt.Sprintf("bench-app-%05d", i/10)
}

// Addr is the address of provider j of service i: unique in the layout,
// and between a layout of each level.
func (l Layout) Addr(i, j int) (ip string, port int) {
	n := i*l.Instances + j
	if l.ApplicationLevel {
		n += 1 << 23
	}
	return fmt.Sprintf("10.%d.%d.%d", n>>16&255, n>>8&255, n&255), 20880
}

// InstanceKey is the key of the Instance resource Admin derives from
// provider j of service i.
func (l Layout) InstanceKey(i, j int) string {
	ip, port := l.Addr(i, j)
	return fmt.Sprintf("%s/%s:%d", l.App(i), ip, port)
}

// Counts are the Application, Instance and Service resources Admin derives
// from the whole layout.
func (l Layout) Counts() (apps, instances, services int) {
	if l.ApplicationLevel {
		return l.Services, l.Services * l.Instances, 0
	}
	return (l.Services + 9) / 10, l.Services * l.Instances, l.Services
}

// Dir is the registry directory that holds service i's providers.
func (l Layout) Dir(i int) string {
	if l.ApplicationLevel {
		return path.Join(applicationRoot, l.App(i))
	}
	return path.Join(interfaceRoot, l.ServiceName(i), "providers")
}

// Node is the path and data of provider j of service i as registered at
// ts (Unix milliseconds): the URL's timestamp, or the instance's
// registrationTimeUTC.
func (l Layout) Node(i, j int, ts int64) (p string, data []byte) {
	ip, port := l.Addr(i, j)
	if l.ApplicationLevel {
		app := l.App(i)
		data = fmt.Appendf(nil, `{"name":%q,"id":"%s:%d","address":%q,"port":%d,"sslPort":null,`+
			`"payload":{"@class":"org.apache.dubbo.registry.zookeeper.ZookeeperInstance","id":"%s:%d","name":%q,`+
			`"metadata":{"dubbo.endpoints":"[{\"port\":%d,\"protocol\":\"tri\"}]","dubbo.metadata.revision":"r1"}},`+
			`"registrationTimeUTC":%d,"serviceType":"DYNAMIC","uriSpec":null}`,
			app, ip, port, ip, port, ip, port, app, port, ts)
		return path.Join(l.Dir(i), fmt.Sprintf("%s:%d", ip, port)), data
	}
	iface := l.ServiceName(i)
	u := fmt.Sprintf("dubbo://%s:%d/%s?anyhost=true&application=%s&interface=%s&methods=sayHello,sayGoodbye&side=provider&timestamp=%d&version=1.0.0",
		ip, port, iface, l.App(i), iface, ts)
	return path.Join(l.Dir(i), url.QueryEscape(u)), nil
}

// maxOps bounds the operations of one multi request, which must stay under
// the server's jute.maxbuffer (1 MiB): a provider node is under 400 bytes.
const maxOps = 1000

// Load creates the layout's tree, every provider registered at ts, with
// multi requests spread over conns (one goroutine per connection, all
// returned before Load returns). The roots must not hold the layout yet.
func Load(ctx context.Context, conns []*zk.Conn, l Layout, ts int64) error {
	if len(conns) == 0 {
		return errors.New("zktest: Load needs a connection")
	}
	acl := zk.WorldACL(zk.PermAll)
	for _, root := range []string{interfaceRoot, applicationRoot} {
		if _, err := conns[0].Create(root, nil, 0, acl); err != nil && !errors.Is(err, zk.ErrNodeExists) {
			return fmt.Errorf("zktest: create %s: %w", root, err)
		}
	}
	step := max(1, maxOps/(l.Instances+2))
	var (
		next  atomic.Int64 // the first service not handed out yet
		mu    sync.Mutex
		first error
		wg    sync.WaitGroup
	)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		first = cmp.Or(first, err)
	}
	failed := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return first != nil
	}
	for _, conn := range conns {
		wg.Go(func() {
			for !failed() {
				if err := ctx.Err(); err != nil {
					fail(err)
					return
				}
				from := int(next.Add(int64(step))) - step
				if from >= l.Services {
					return
				}
				if err := loadServices(conn, l, from, min(from+step, l.Services), ts, acl); err != nil {
					fail(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}

// loadServices creates services [first, end) in one multi request.
func loadServices(conn *zk.Conn, l Layout, first, end int, ts int64, acl []zk.ACL) error {
	ops := make([]any, 0, (end-first)*(l.Instances+2))
	for i := first; i < end; i++ {
		dir := l.Dir(i)
		if !l.ApplicationLevel {
			ops = append(ops, &zk.CreateRequest{Path: path.Dir(dir), Acl: acl})
		}
		ops = append(ops, &zk.CreateRequest{Path: dir, Acl: acl})
		for j := range l.Instances {
			p, data := l.Node(i, j, ts)
			ops = append(ops, &zk.CreateRequest{Path: p, Data: data, Acl: acl})
		}
	}
	if _, err := conn.Multi(ops...); err != nil {
		return fmt.Errorf("zktest: create services %d..%d: %w", first, end-1, err)
	}
	return nil
}

// Reregister replaces provider j of service i, registered at old, by its
// registration at ts, in one multi request (as a provider that restarts
// re-registers: a new URL, or new instance data).
func Reregister(conn *zk.Conn, l Layout, i, j int, old, ts int64) error {
	oldPath, _ := l.Node(i, j, old)
	p, data := l.Node(i, j, ts)
	var err error
	if l.ApplicationLevel {
		_, err = conn.Set(p, data, -1)
	} else {
		_, err = conn.Multi(&zk.DeleteRequest{Path: oldPath, Version: -1}, &zk.CreateRequest{Path: p, Data: data, Acl: zk.WorldACL(zk.PermAll)})
	}
	if err != nil {
		return fmt.Errorf("zktest: re-register %s: %w", l.InstanceKey(i, j), err)
	}
	return nil
}

// Deregister removes provider j of service i, registered at ts.
func Deregister(conn *zk.Conn, l Layout, i, j int, ts int64) error {
	p, _ := l.Node(i, j, ts)
	if err := conn.Delete(p, -1); err != nil {
		return fmt.Errorf("zktest: deregister %s: %w", l.InstanceKey(i, j), err)
	}
	return nil
}

// Register adds provider j of service i, registered at ts.
func Register(conn *zk.Conn, l Layout, i, j int, ts int64) error {
	p, data := l.Node(i, j, ts)
	if _, err := conn.Create(p, data, 0, zk.WorldACL(zk.PermAll)); err != nil {
		return fmt.Errorf("zktest: register %s: %w", l.InstanceKey(i, j), err)
	}
	return nil
}
