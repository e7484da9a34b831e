// Package engine is the Engine component: on the leader, it mirrors the
// runtime engine's workloads into the store as RuntimeInstance resources
// (key "namespace/name"; spec is the JSON of RuntimeInstance).
//
// The sync loop, fencing and restart rules are those of package source;
// Engine only picks the source by URL:
//
//	file://DIR   directory of runtime instance files (see examples/runtime)
//	kubernetes   pods through client-go informers, registered by package
//	             engine/kubernetes (kubernetes://?namespace=a&namespace=b&kubeconfig=PATH)
package engine
