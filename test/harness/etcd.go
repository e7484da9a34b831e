package harness

import (
	"fmt"
	"time"
)

// EtcdElection makes the replicas of a cluster elect through etcd
// (election.backend etcd) instead of the lease row; the terms are still
// minted in the shared database.
type EtcdElection struct {
	// Addr is the etcd member's client host:port.
	Addr string
	// Proxied puts a faultproxy.Proxy in front of each replica's etcd
	// connections (Process.EtcdProxy), so that a test can make etcd
	// unreachable for one replica or for all.
	Proxied bool
	// TTL is the session TTL; 0 means EtcdTTL.
	TTL time.Duration
}

// EtcdTTL is the session TTL of the suites: etcd's shortest (a crashed
// leader is replaced after about 2 s; a cut-off one stops leading 1.33 s
// after its last keep-alive).
const EtcdTTL = 2 * time.Second

// etcdArgs are the flags of replica i's etcd election.
func (e *EtcdElection) etcdArgs(addr string) []string {
	ttl := e.TTL
	if ttl == 0 {
		ttl = EtcdTTL
	}
	return []string{"--election-backend", "etcd", "--etcd-endpoints", "http://" + addr,
		"--etcd-ttl", fmt.Sprintf("%ds", int(ttl/time.Second)), "--etcd-op-timeout", "500ms"}
}
