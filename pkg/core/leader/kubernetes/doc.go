// Package kubernetes is the Kubernetes Lease backend of leader.Elector: the
// replicas elect their leader through one coordination.k8s.io/v1 Lease, so
// `kubectl get lease` shows who leads, and the winner's term is then minted
// in the store's database (leader.Epochs.Mint) so that the store fences its
// writes exactly as with the SQL lease.
//
// # Pieces
//
//   - Config (config.go): namespace, Lease name, kubeconfig or in-cluster,
//     and the leader.Config timings; Validate names the broken field.
//   - lease (lease.go): the Lease API. Every write is an Update conditional
//     on the resourceVersion it was decided on (or a Create), so the
//     apiserver lets at most one of two racing writers through.
//   - Elector (elector.go): Prepare, the campaign loop, Leader, Observed,
//     ForceRelease.
//   - term (term.go): one Leadership, its renew loop and Resign.
//
// # The algorithm
//
// A follower reads the Lease at once, then every RetryPeriod plus up to
// JitterFactor of jitter (sooner when the holder's lease duration is about
// to run out). It takes the Lease when it does not exist (Create), when its
// holder is empty (released), when it names this very holder, or when the
// Lease's resourceVersion has not changed for spec.leaseDurationSeconds
// counted on the follower's own monotonic clock from the first time it read
// that resourceVersion. Taking is an Update of that resourceVersion: if the
// holder renewed in between, the apiserver answers 409 and the follower
// starts counting again. After a take it mints the term (token "lease
// NS/NAME resourceVersion N") and only then returns from Campaign; if the
// mint fails it releases the Lease and campaigns on. The leader renews every
// RetryPeriod with an Update of the version it last wrote, and writes its
// term into the annotation dubbo.apache.org/term for operators. Resign
// empties the holder, so that a follower takes over at its next poll.
//
// # Safety argument (the local deadline)
//
// No replica ever compares its clock with another's: spec.acquireTime and
// spec.renewTime are written for kubectl and never read. A follower counts
// from when it observed a version, which is after the leader's write of
// that version was committed, which is after the leader sent it. The leader
// keeps its term context for RenewDeadline after the send of its last
// successful write, on its own monotonic clock (a watchdog cancels it then,
// whatever the renew loop is doing). So a follower can take over no sooner
// than LeaseDuration after that send, by its clock, and the leader stops at
// RenewDeadline after it, by its own: the term context is cancelled before
// anyone else can win as long as the two clocks' rates differ by less than
// (LeaseDuration-RenewDeadline)/LeaseDuration, 30% with the defaults.
// ValidUntil keeps back half of that gap.
//
// A write whose answer was lost may still have landed; it only moves the
// followers' count later, while the leader's deadline stays at its last
// write it knows succeeded, so it errs the safe way. A conflict on renew is
// read back: a Lease that still names this holder (someone annotated it) is
// renewed at its new version; one that names another holder, or is gone,
// ends the term at once with leader.ErrLeaseLost.
//
// What the Lease does not guarantee by itself: an operator who deletes the
// Lease or runs `leader release --force` lets a follower win before the old
// leader's next renew tells it (within RetryPeriod), and a paused leader can
// act after its context ended. Both are what the minted term is for: the
// store fences every write on it, so an old term's write cannot land after
// a newer term was minted.
//
// # Why not client-go's tools/leaderelection
//
// It is the usual choice, and its LeaseLock is where the object layout
// comes from, but it does not meet this contract as it stands: its renew
// deadline is a timeout started RetryPeriod after the last renew returned,
// so the leader's margin depends on request latency (LeaseDuration must
// exceed RenewDeadline+RetryPeriod+latency, which the config cannot check);
// it starts OnStartedLeading on a goroutine of its own that nobody awaits,
// with no way to mint a term first or hand out the resourceVersion it won;
// its release runs under its own RenewDeadline timeout on a background
// context, not the caller's; and it has no force-release. The algorithm here is the same
// observe-then-update one, on about 300 lines that the contract's
// conformance suite runs against a real apiserver.
//
// # Permissions
//
// get, create and update on the one Lease (Verbs); no list, watch, patch or
// delete. Prepare checks them with SelfSubjectAccessReviews, so a replica
// whose Role is missing fails its start instead of campaigning forever.
// deploy/kubernetes has the Role.
package kubernetes
