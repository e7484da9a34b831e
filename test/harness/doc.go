// Package harness runs several dubbo-admin replicas against one database and
// injects faults into them, for the multi-replica suites of test/replicas and
// for the benchmarks built on top of it.
//
// # Two harnesses
//
//   - InProcess (StartInProcess): N replicas in the calling process, each its
//     own fx application (runtime.Module, the GORM store, the Engine component
//     on a file source, a Probe that writes continuously) and its own
//     connection pool, optionally through its own faultproxy.Proxy so that
//     one replica's database connections can be paused or cut.
//   - Processes (StartProcesses): N processes of the built binary
//     (BuildBinary), each started with `run` on its own HTTP port (port 0,
//     read back from its log), sharing the database, with fast election
//     timings from flags. Kill (SIGKILL), Stop (SIGSTOP), Cont (SIGCONT) and
//     Term (SIGTERM) act on one replica; Restart starts it again.
//
// # Invariants and the records behind them
//
//   - Timeline: the start and stop instants of every replica's leader
//     components, per term. In-process, each leader component is wrapped so
//     that it records when its Start began and returned; for processes, the
//     runner's JSON log lines ("leader runner: Leading" and the Candidate or
//     Stopped line that follows the term) bound the same interval from
//     outside. Timeline.Check reports two intervals of different terms that
//     overlap.
//   - WriteLog: triggers on table resources copy every insert and update,
//     with the writer's term, into table harness_write_log, whose
//     auto-increment seq orders the writes as the database committed them
//     (a write's seq is taken inside its fenced transaction, which the next
//     term's acquisition waits for). WriteLog.Check reports a write of an
//     older term after a write of a newer one.
//   - Source: a directory of Engine runtime-instance files the test controls;
//     Source.Diff compares the store with it (nothing lost, nothing
//     resurrected).
//
// Every goroutine and process the harness starts has an owner: Close (or
// the stop function a method returns) cancels it and waits for it. Child
// processes run in their own process group with Pdeathsig SIGKILL, so none
// outlives the test process.
package harness
