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
//   - The supervisor (supervisor*.go): `run --replicas N` re-executes this
//     binary N times on one machine, prints one line per leadership change,
//     forwards SIGINT/SIGTERM, and never leaves a child behind.
//   - The CLI (cli*.go): the cobra commands of app/dubbo-admin.
//
// # Health
//
// /healthz fails when the replica believes it leads but has not confirmed
// its lease for longer than the lease duration: the elector should have
// stepped down long before (at the renew deadline), so the replica is stuck
// and must be restarted. It also fails once the runtime has stopped.
// /readyz succeeds once the runtime started and the replica knows its role:
// it leads, or, as a follower, it has read the lease at least once.
//
// Nothing in this package is imported by the rest of the module.
package app
