// Package zookeeper is Discovery's ZooKeeper source: Dubbo's registry layout
// read through github.com/go-zookeeper/zk, the only package that links it
// (with its test helpers, zktest: throwaway servers and a bulk loader).
//
// Layout (Dubbo 2 and 3):
//
//	/dubbo/<interface>/providers/<url-encoded provider URL>   interface level
//	/dubbo/<interface>/consumers/<url-encoded consumer URL>
//	/services/<application>/<instance id>                      application level,
//	                                                           data: Curator ServiceInstance JSON
//
// Each node becomes one discovery.Registration keyed by its path; the
// Discovery view derives applications, instances and services from them.
// A node that does not parse is logged once per term and skipped, never
// fatal.
//
// Watching: ZooKeeper watches fire once, so every watched node (the two
// roots, each interface and category, each application, each instance's
// data) is re-read and re-watched when its watch fires, and the children are
// diffed against what was last reported (kept as a 64-bit digest per node;
// a URL leaf is parsed once: its path is its registration). A missing root
// is watched for its creation. One goroutine owns that state. Watch events reach it through
// the client's event callback, queued in the order they arrived, so a
// pending watch costs no goroutine (a registry of 100k instances has 100k
// data watches at application level); the watches that fired together are
// re-read in parallel. Every read of a walk below a root is made ahead, in
// parallel, too; the first List returns what the first walk read.
//
// Sessions: a reconnect within the session keeps the watches (the client
// re-sends them). When the session expires, the server has dropped every
// watch and ephemeral node: once the client holds a new session the source
// walks the whole tree again and reports the difference. A request that
// fails on a broken connection schedules the same walk. The connection is
// opened per term and closed when the term ends.
//
// URL: zookeeper://host:port[,host:port...][?sessionTimeout=10s]
package zookeeper
