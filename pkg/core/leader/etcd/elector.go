package etcd

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/go-logr/logr"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"

	"github.com/apache/dubbo-admin/pkg/core/leader"
)

// Backend is the Record.Backend of this package.
const Backend = "etcd"

// ErrNotPrepared: Campaign, Leader or ForceRelease before Prepare.
var ErrNotPrepared = errors.New("etcd elector: Prepare was not called")

// Option configures an Elector.
type Option func(*Elector)

// WithLogger sets the logger for transitions; the default discards.
func WithLogger(l logr.Logger) Option { return func(e *Elector) { e.log = l } }

// WithObserver reports every keep-alive a leader sends (its latency and
// error) to o, as the SQL lease reports its renewals, for metrics.
func WithObserver(o leader.Observer) Option { return func(e *Elector) { e.observer = o } }

// WithIdentity sets the holder identity; the default is leader.NewIdentity().
func WithIdentity(id string) Option { return func(e *Elector) { e.identity = id } }

// Elector is the etcd backend of leader.Elector for one election name and
// one candidate. It owns its etcd client: Close it.
type Elector struct {
	name     string
	cfg      Config
	epochs   *leader.Epochs
	identity string
	log      logr.Logger
	trouble  *leader.Trouble
	observer leader.Observer
	pfx      string // Prefix/escaped(name)/: the election's keys

	mu       sync.Mutex
	client   *clientv3.Client
	observed leader.Record
}

var (
	_ leader.Elector       = (*Elector)(nil)
	_ leader.ForceReleaser = (*Elector)(nil)
)

// New validates the configuration and returns the candidate of election
// name. Terms are minted with epochs (in the store's database). It does no
// I/O: Prepare connects.
func New(name string, cfg Config, epochs *leader.Epochs, opts ...Option) (*Elector, error) {
	cfg = cfg.WithDefaults()
	if err := leader.ValidateName(name); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if epochs == nil {
		return nil, fmt.Errorf("%w: etcd elector: nil epochs (terms are minted in the store's database)", leader.ErrInvalidConfig)
	}
	e := &Elector{name: name, cfg: cfg, epochs: epochs, log: logr.Discard()}
	for _, o := range opts {
		o(e)
	}
	if e.identity == "" {
		e.identity = leader.NewIdentity()
	}
	if id := e.identity; id == "" || len(id) > leader.MaxHolderLength || !utf8.ValidString(id) || strings.TrimSpace(id) != id {
		return nil, fmt.Errorf("%w: holder identity %q: must be 1..%d bytes of UTF-8 without surrounding white space", leader.ErrInvalidConfig, id, leader.MaxHolderLength)
	}
	e.pfx = cfg.Prefix + "/" + url.PathEscape(name) + "/"
	e.log = e.log.WithValues("election", name, "identity", e.identity, "backend", Backend)
	e.trouble = leader.NewTrouble(e.log)
	return e, nil
}

// Identity is the holder name this elector campaigns as.
func (e *Elector) Identity() string { return e.identity }

// Config returns the validated configuration.
func (e *Elector) Config() Config { return e.cfg }

// Prepare connects to etcd, checks that the election's keys can be read
// (credentials, permissions), and creates the epoch table.
func (e *Elector) Prepare(ctx context.Context) error {
	c, err := e.connect()
	if err != nil {
		return err
	}
	opCtx, cancel := context.WithTimeout(ctx, e.cfg.OpTimeout)
	defer cancel()
	if _, err := c.Get(opCtx, e.pfx, clientv3.WithPrefix(), clientv3.WithCountOnly()); err != nil {
		return fmt.Errorf("etcd election %q at %s: %w", e.name, strings.Join(e.cfg.Redacted().Endpoints, ","), err)
	}
	if err := e.epochs.Migrate(ctx); err != nil {
		return fmt.Errorf("etcd election %q: %w", e.name, err)
	}
	return nil
}

func (e *Elector) connect() (*clientv3.Client, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.client != nil {
		return e.client, nil
	}
	tc, err := e.cfg.tlsConfig()
	if err != nil {
		return nil, err
	}
	c, err := clientv3.New(clientv3.Config{
		Endpoints:            e.cfg.Endpoints,
		DialTimeout:          e.cfg.OpTimeout,
		DialKeepAliveTime:    e.cfg.TTL / 3,
		DialKeepAliveTimeout: e.cfg.OpTimeout,
		TLS:                  tc,
		Username:             e.cfg.Username,
		Password:             e.cfg.Password,
		Logger:               zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("etcd client for %s: %w", strings.Join(e.cfg.Redacted().Endpoints, ","), err)
	}
	e.client = c
	return c, nil
}

func (e *Elector) conn() (*clientv3.Client, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.client == nil {
		return nil, ErrNotPrepared
	}
	return e.client, nil
}

// Close closes the etcd client. Leaderships still running end: their
// keep-alives fail.
func (e *Elector) Close() error {
	e.mu.Lock()
	c := e.client
	e.client = nil
	e.mu.Unlock()
	if c == nil {
		return nil
	}
	return c.Close()
}

// Observed returns the leader as this elector last saw it, without I/O.
func (e *Elector) Observed() leader.Record {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.observed
}

func (e *Elector) observe(r leader.Record) {
	e.mu.Lock()
	e.observed = r
	e.mu.Unlock()
}

// Leader reads the election's keys: the leader is the candidate whose key
// was created first, the others follow in creation order. The term is the
// epoch's when it was minted for that holder.
func (e *Elector) Leader(ctx context.Context) (leader.Record, error) {
	c, err := e.conn()
	if err != nil {
		return leader.Record{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, e.cfg.OpTimeout)
	defer cancel()
	rec, err := e.read(ctx, c)
	if err != nil {
		return leader.Record{}, err
	}
	if rec.Holder != "" {
		t, err := e.epochs.Current(ctx, e.name)
		if err != nil {
			return leader.Record{}, err
		}
		if t.Holder == rec.Holder {
			rec.Term, rec.AcquiredAt = t.Number, t.AcquiredAt
		}
	}
	e.observe(rec)
	return rec, nil
}

// read lists the candidates in queue order and the leader key's lease.
func (e *Elector) read(ctx context.Context, c *clientv3.Client) (leader.Record, error) {
	resp, err := c.Get(ctx, e.pfx, clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend))
	if err != nil {
		return leader.Record{}, fmt.Errorf("read etcd election %q: %w", e.name, err)
	}
	now := time.Now()
	rec := leader.Record{Election: e.name, Backend: Backend, Now: now}
	if len(resp.Kvs) == 0 {
		return rec, nil
	}
	rec.Candidates = make([]string, len(resp.Kvs))
	for i, kv := range resp.Kvs {
		rec.Candidates[i] = string(kv.Value)
	}
	first := resp.Kvs[0]
	rec.Holder = string(first.Value)
	rec.Token = token(first.CreateRevision)
	rec.ExpiresAt = now.Add(e.cfg.TTL)
	if ttl, err := c.TimeToLive(ctx, clientv3.LeaseID(first.Lease)); err == nil && ttl.TTL >= 0 {
		rec.ExpiresAt = now.Add(time.Duration(ttl.TTL) * time.Second)
	}
	return rec, nil
}

func token(rev int64) string { return fmt.Sprintf("etcd revision %d", rev) }

// ForceRelease deletes the leader's key whoever holds it, then ends its term
// in the epoch (so its fenced writes fail at once): the leader's term
// context ends when its watch sees the deletion, and the next candidate in
// the queue wins. It returns the leader as it was before.
func (e *Elector) ForceRelease(ctx context.Context) (leader.Record, error) {
	c, err := e.conn()
	if err != nil {
		return leader.Record{}, err
	}
	before, err := e.Leader(ctx)
	if err != nil || before.Holder == "" {
		return before, err
	}
	ctx, cancel := context.WithTimeout(ctx, e.cfg.OpTimeout)
	defer cancel()
	resp, err := c.Get(ctx, e.pfx, clientv3.WithFirstCreate()...)
	if err != nil {
		return leader.Record{}, fmt.Errorf("force release etcd election %q: %w", e.name, err)
	}
	if len(resp.Kvs) == 0 {
		return before, nil
	}
	kv := resp.Kvs[0]
	key := string(kv.Key)
	if _, err := c.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", kv.CreateRevision)).
		Then(clientv3.OpDelete(key)).Commit(); err != nil {
		return leader.Record{}, fmt.Errorf("force release etcd election %q: delete %s: %w", e.name, key, err)
	}
	e.log.Info("leader key force-released", "holder", string(kv.Value), "token", token(kv.CreateRevision))
	if before.Term != 0 {
		t := leader.Term{Election: e.name, Holder: before.Holder, Number: before.Term}
		if err := e.epochs.End(leader.WithEndReason(ctx, leader.EndForceReleased), t); err != nil {
			return before, fmt.Errorf("force release etcd election %q: the key is deleted, but %w", e.name, err)
		}
	}
	return before, nil
}

// Timings derived from the TTL (see the package doc).
func (e *Elector) keepAliveEvery() time.Duration { return e.cfg.TTL / 6 }
func (e *Elector) renewDeadline() time.Duration  { return e.cfg.TTL * 2 / 3 }
func (e *Elector) validFor() time.Duration       { return e.cfg.TTL * 5 / 6 }

// Campaign grants a session lease, queues this candidate's key under the
// election prefix and waits, on a watch, until every older key is gone; then
// it confirms the lease with a keep-alive, mints the term and returns. Errors
// are retried after TTL/6 with jitter; only ctx ends a campaign early, with
// its cause.
func (e *Elector) Campaign(ctx context.Context) (leader.Leadership, error) {
	c, err := e.conn()
	if err != nil {
		return nil, err
	}
	for {
		l, err := e.attempt(ctx, c)
		if err == nil {
			e.trouble.Over()
			return l, nil
		}
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		e.trouble.Fail(err)
		wait := leader.Jittered(e.keepAliveEvery(), 0.2)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, context.Cause(ctx)
		case <-t.C:
		}
	}
}

// attempt is one campaign: a fresh session, the queue, the win, the mint.
// Whatever fails, the session's lease is revoked (so its key leaves the
// queue at once) before it returns.
func (e *Elector) attempt(ctx context.Context, c *clientv3.Client) (*term, error) {
	grantCtx, cancel := context.WithTimeout(ctx, e.cfg.OpTimeout)
	grant, err := c.Grant(grantCtx, int64(e.cfg.TTL/time.Second))
	cancel()
	if err != nil {
		return nil, fmt.Errorf("grant etcd session lease: %w", err)
	}
	// The session keeps the lease alive while this candidate waits in the
	// queue; the term's own keep-alives (term.run) decide how long it leads.
	sessCtx, endSession := context.WithCancel(ctx)
	s, err := concurrency.NewSession(c, concurrency.WithLease(grant.ID), concurrency.WithContext(sessCtx))
	if err != nil {
		endSession()
		_ = e.revoke(context.Background(), c, grant.ID)
		return nil, fmt.Errorf("etcd session: %w", err)
	}
	fail := func(err error) (*term, error) {
		endSession()
		<-s.Done()
		_ = e.revoke(context.Background(), c, grant.ID)
		return nil, err
	}
	key, rev, err := e.queue(ctx, c, s)
	if err != nil {
		return fail(err)
	}
	// Won: count the term from a keep-alive sent now, after the win.
	sent := time.Now()
	if err := e.keepAlive(ctx, c, grant.ID, e.cfg.OpTimeout); err != nil {
		return fail(err)
	}
	t, err := e.epochs.Mint(ctx, e.name, e.identity, token(rev))
	if err != nil {
		return fail(fmt.Errorf("mint term after winning etcd election %q: %w", e.name, err))
	}
	if time.Since(sent) >= e.renewDeadline() {
		return fail(fmt.Errorf("etcd election %q: minting term %d took past the renew deadline", e.name, t.Number))
	}
	e.observe(leader.Record{Election: e.name, Holder: e.identity, Term: t.Number, AcquiredAt: t.AcquiredAt,
		Now: time.Now(), ExpiresAt: sent.Add(e.cfg.TTL), Backend: Backend, Token: token(rev)})
	e.log.Info("leader elected", "term", t.Number, "token", token(rev))
	return e.lead(ctx, c, s, endSession, grant.ID, key, rev, t, sent), nil
}

// queue is concurrency.Election.Campaign's recipe (the same keys
// Prefix/<lease id in hex> and the same wait), written out so that every
// request is bounded by ctx: the library's clean-up after a cancelled
// campaign resigns on the client's context, which blocks while etcd is
// unreachable. It returns the candidate's key and its create revision once
// no older key is left, observing the leader on the way.
func (e *Elector) queue(ctx context.Context, c *clientv3.Client, s *concurrency.Session) (string, int64, error) {
	key := fmt.Sprintf("%s%x", e.pfx, s.Lease())
	opCtx, cancel := context.WithTimeout(ctx, e.cfg.OpTimeout)
	resp, err := c.Txn(opCtx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, e.identity, clientv3.WithLease(s.Lease()))).
		Else(clientv3.OpGet(key)).Commit()
	cancel()
	if err != nil {
		return "", 0, fmt.Errorf("queue in etcd election %q: %w", e.name, err)
	}
	rev := resp.Header.Revision
	if !resp.Succeeded {
		rev = resp.Responses[0].GetResponseRange().Kvs[0].CreateRevision
	}
	for {
		opCtx, cancel := context.WithTimeout(ctx, e.cfg.OpTimeout)
		rec, rerr := e.read(opCtx, c)
		older, err := c.Get(opCtx, e.pfx, append(clientv3.WithLastCreate(), clientv3.WithMaxCreateRev(rev-1))...)
		cancel()
		if err == nil {
			err = rerr
		}
		if err != nil {
			return "", 0, fmt.Errorf("wait in etcd election %q: %w", e.name, err)
		}
		e.observe(rec)
		if len(older.Kvs) == 0 {
			return key, rev, nil
		}
		if err := e.waitDelete(ctx, c, string(older.Kvs[0].Key), older.Header.Revision); err != nil {
			return "", 0, err
		}
	}
}

// waitDelete watches key from rev until it is deleted.
func (e *Elector) waitDelete(ctx context.Context, c *clientv3.Client, key string, rev int64) error {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	for wr := range c.Watch(wctx, key, clientv3.WithRev(rev)) {
		if err := wr.Err(); err != nil {
			return fmt.Errorf("watch etcd election %q: %w", e.name, err)
		}
		for _, ev := range wr.Events {
			if ev.Type == mvccpb.DELETE {
				return nil
			}
		}
	}
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return fmt.Errorf("watch etcd election %q: the watch ended", e.name)
}

// keepAlive sends one keep-alive of lease, bounded by timeout; a lease etcd
// no longer knows is leader.ErrLeaseLost.
func (e *Elector) keepAlive(ctx context.Context, c *clientv3.Client, id clientv3.LeaseID, timeout time.Duration) error {
	opCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := c.KeepAliveOnce(opCtx, id)
	switch {
	case errors.Is(err, rpctypes.ErrLeaseNotFound):
		return fmt.Errorf("%w: etcd session lease %x expired or was revoked", leader.ErrLeaseLost, id)
	case err != nil:
		return fmt.Errorf("keep etcd session lease %x alive: %w", id, err)
	case resp.TTL <= 0:
		return fmt.Errorf("%w: etcd session lease %x expired", leader.ErrLeaseLost, id)
	}
	return nil
}

// revoke ends lease id, and with it the candidate's key, bounded by
// ctx and OpTimeout. A lease already gone is fine.
func (e *Elector) revoke(ctx context.Context, c *clientv3.Client, id clientv3.LeaseID) error {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.OpTimeout)
	defer cancel()
	if _, err := c.Revoke(ctx, id); err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return fmt.Errorf("revoke etcd session lease %x: %w", id, err)
	}
	return nil
}
