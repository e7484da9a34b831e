// Package app assembles one dubbo-admin replica and the tools around it.
//
// # What it provides
//
//   - Config (config.go, config_fields.go, config_load.go): every setting,
//     its defaults, and its sources in increasing precedence: the embedded
//     defaults, a YAML file (--config), ADMIN_* environment variables, then
//     command-line flags. Validate names the field of every error and never
//     prints a database password (see database.Redact).
//   - The replica (replica.go): an fx application of the database, the store,
//     the election, the runtime with the Discovery and Engine components, the
//     metrics and the HTTP API. fx starts them in that order and stops them in
//     the reverse order: the runtime drains its leader components and
//     releases the lease before the HTTP server shuts down, and the database
//     closes last.
//   - The HTTP API (api*.go, http_server.go): /healthz, /readyz, /metrics,
//     /api/v1/leader, /api/v1/status and /api/v1/resources/..., JSON in and
//     out, errors as {"error": "..."}; reads are served on every replica.
//     /api/v1/leader?watch=true streams the lease as server-sent events
//     (api_watch.go).
//   - The console (console.go, web/): the cluster page at / and /cluster,
//     embedded, live from the leader stream, and the endpoints only it
//     needs: /api/v1/terms, /api/v1/cluster and /api/v1/counts.
//   - The supervisor (supervisor*.go): `run --replicas N` re-executes this
//     binary N times on one machine, prints one line per leadership change
//     (naming the holder when it is not one of its replicas), restarts a
//     replica that exits with backoff (1s doubling to 30s), forwards
//     SIGINT/SIGTERM, never leaves a child behind, and exits non-zero when a
//     replica died and stayed down. An flock in the data directory refuses a
//     second supervisor on the same SQLite file.
//   - The CLI (cli*.go): the cobra commands of app/dubbo-admin.
//
// # Health
//
// /healthz is liveness: restart me. It fails when the replica believes it
// leads but has not confirmed its lease for longer than the lease duration
// (the elector should have stepped down long before, at the renew
// deadline, so the replica is stuck), and once the runtime has stopped. A
// follower is never unhealthy for the election's sake: restarting it does
// not mend a database it cannot write.
//
// /readyz is "this replica takes part": it succeeds once the runtime
// started, its non-leader components run and the replica knows its role
// (it leads, or as a follower it has read the lease). It fails, naming the
// cause, while a follower's campaign attempts fail (the database refuses
// writes, the lease table is broken...): such a replica could never take
// over. "Held by another" is not a failure. The same cause is in
// /api/v1/status ("election"), /api/v1/leader ("self.electionError"), the
// membership table (`leader status`) and the counter
// dubbo_admin_leader_acquire_failures_total; the elector logs it once per
// change of cause.
//
// # Errors
//
// A replica that cannot start prints one line naming the problem and the
// setting, never the dependency-injection chain (assemblyError). A database
// that does not answer yet (refused, unreachable, timing out) is waited for
// with capped exponential backoff (1s to 30s, one WARNING line per change of
// cause) until it answers or the replica is signalled, so that a replica
// started before its database comes up when the database does; a database
// that answers no (wrong password, unknown database, bad DSN) fails at once.
//
// Nothing in this package is imported by the rest of the module.
package app
