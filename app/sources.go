package app

import (
	"github.com/apache/dubbo-admin/examples/component/heartbeat"
	"github.com/apache/dubbo-admin/pkg/core/discovery"
	"github.com/apache/dubbo-admin/pkg/core/discovery/zookeeper"
	"github.com/apache/dubbo-admin/pkg/core/engine"
	"github.com/apache/dubbo-admin/pkg/core/engine/kubernetes"
	"github.com/apache/dubbo-admin/pkg/core/source"
)

// registrySources maps the URL schemes of registry.url to Discovery's
// sources: file:// and zookeeper://.
func registrySources() source.Registry {
	reg := discovery.Sources()
	zookeeper.Register(reg)
	return reg
}

// engineSources maps the URL schemes of engine.url to Engine's sources:
// file:// and kubernetes. The Kubernetes client is built on the first term
// that uses it (kubeconfig from the URL's query, or the default rules, or
// in-cluster), so a replica on file:// never loads it.
func engineSources() source.Registry {
	reg := engine.Sources()
	kubernetes.Register(reg)
	return reg
}

// servedKinds are the resource kinds the API serves: Discovery's, Engine's
// and, when it runs, the heartbeat example's.
func servedKinds(cfg Config) []string {
	kinds := []string{discovery.KindApplication, discovery.KindInstance, discovery.KindService, engine.KindRuntimeInstance}
	if cfg.Heartbeat.Interval > 0 {
		kinds = append(kinds, heartbeat.Kind)
	}
	return kinds
}
