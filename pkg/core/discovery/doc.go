// Package discovery is the Discovery component: on the leader, it mirrors a
// Dubbo service registry into the store as Application, Instance and Service
// resources.
//
// Sources report raw registrations (KindRegistration): one per provider or
// consumer URL at interface level, one per service instance at application
// level, one per entry of an instance file. The view in this package derives
// the stored kinds from them, so every source maps the registry the same way:
//
//   - Instance "app/ip:port": one process of an application, with the
//     services it provides and consumes;
//   - Service "group/interface:version" (Dubbo's service key, empty parts
//     left out): the providers and consumers of one service;
//   - Application "app": its instances and services.
//
// Registrations are never stored. Specs are the JSON of the typed structs
// below. The sync loop, fencing and restart rules are those of package
// source; Discovery only picks the source by URL:
//
//	file://DIR                 directory of instance files (the default, see examples/registry)
//	zookeeper://host:port,...  registered by package discovery/zookeeper
package discovery
