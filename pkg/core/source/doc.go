// Package source is the contract between Admin's leader components and the
// systems they mirror (a service registry, a runtime engine), and the one
// per-term sync loop that both Discovery and Engine run.
//
// # The contract
//
// A Source is opened anew for every term by an Opener and used by exactly
// one Loop, from one goroutine:
//
//  1. Watch starts watching and returns a channel of Changes. From the moment
//     Watch returns, every change of the source's state is delivered on the
//     channel, in the order the source saw it, carrying the state as read
//     when the source processed it.
//  2. List returns the full current state, no older than any change already
//     delivered or pending on the channel.
//  3. Stop ends every watch, closes connections and waits for every goroutine
//     the source started. It returns the error that ended a watch early, if
//     any. The channel is closed once the source's goroutines are gone.
//
// Because Watch comes first, nothing that happens between the two calls is
// lost; because changes are delivered in order with the state of their time,
// applying List and then every pending change in order converges on the
// source's state even where a pending change is older than the List it raced
// with: the change that made the List newer is still behind it on the channel.
//
// # The loop
//
// Loop.Run is one term of mirroring: open the source, Watch, List, Replace
// every kind of the View in the store, then apply the changes and relist on
// a timer (Resync). Changes are written in batches, each one Store.Apply
// (one fenced transaction) on a writer goroutine of the loop, one batch at
// a time and in order: a batch is written when it holds BatchSize store
// changes or BatchDelay after its first change arrived, or, when a write
// was in flight, as soon as that write is done; the next batch fills while
// one is written, and the source waits when it is full. So a stream costs
// one fence check per batch and a lone change waits at most BatchDelay. A
// relist waits for the write in flight and drops the pending batch (the
// List it reads is newer). Writes use the context given to Run: the term
// context, whose leader.Term fences them. Run returns
//
//   - nil once ctx is cancelled (after stopping the source),
//   - an error wrapping leader.ErrFenced when the store refused a write
//     because the term is over (the runtime is about to cancel ctx),
//   - any other error when the source or the store failed; the runtime
//     restarts the component with backoff, which opens the source anew.
//
// Nothing survives a Run: the next term builds its source, watches and view
// from scratch, so a replica that regains leadership lists again.
//
// A View sits between the source and the store: Identity stores what the
// source reports; Discovery's view derives applications, instances and
// services from raw registrations. The view runs on the loop's goroutine, so
// it needs no locks and always sees changes in order.
package source
