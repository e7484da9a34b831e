package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"gorm.io/gorm"

	"github.com/apache/dubbo-admin/pkg/core/leader"
	"github.com/apache/dubbo-admin/pkg/core/leader/etcd"
	klease "github.com/apache/dubbo-admin/pkg/core/leader/kubernetes"
	"github.com/apache/dubbo-admin/pkg/core/membership"
)

// ErrNoDatabase: the leader commands found no SQLite file to read.
var ErrNoDatabase = errors.New("no database")

func (c CLI) leaderCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "leader",
		Short: "Inspect or clear the leader lease in Admin's database",
	}
	cmd.AddCommand(c.leaderStatusCommand(), c.leaderReleaseCommand())
	return cmd
}

// LeaseStatus is the output of `leader status -o json`.
type LeaseStatus struct {
	Election string `json:"election"`
	Database string `json:"database"`
	// State is "held", "expired", "free" or "none" (no lease row yet).
	State       string    `json:"state"`
	Holder      string    `json:"holder,omitempty"`
	Term        int64     `json:"term"`
	AcquiredAt  time.Time `json:"acquiredAt,omitzero"`
	RenewedAt   time.Time `json:"renewedAt,omitzero"`
	ExpiresAt   time.Time `json:"expiresAt,omitzero"`
	Remaining   Duration  `json:"remaining"`
	Transitions int64     `json:"transitions"`
	// DatabaseNow is the database's clock when the row was read.
	DatabaseNow time.Time `json:"databaseNow,omitzero"`
	// Backend is election.backend; Lease and Token are the Kubernetes
	// backend's Lease (namespace/name) and its resourceVersion, or Etcd,
	// Token and Candidates the etcd backend's endpoints, leader key
	// revision and queue (leader first).
	Backend    string   `json:"backend"`
	Lease      string   `json:"lease,omitempty"`
	Etcd       string   `json:"etcd,omitempty"`
	Token      string   `json:"token,omitempty"`
	Candidates []string `json:"candidates,omitempty"`
	// Path, PathReason and LockWindowMs are the SQL lease's failover path
	// (see LeaderInfo).
	Path         string `json:"path,omitempty"`
	PathReason   string `json:"pathReason,omitempty"`
	LockWindowMs int64  `json:"lockWindowMs,omitempty"`
	// Elections lists the elections held in this database when this one
	// never was (a mistyped --election-name).
	Elections []string `json:"elections,omitempty"`
	// Warning is set when the lease expires implausibly far ahead (see
	// LeaderInfo.Warning).
	Warning string `json:"warning,omitempty"`
	// Replicas is the membership table of Admin's database, whatever the
	// backend, the lease holder's row marked; ReplicasError says why it
	// could not be read.
	Replicas      []ReplicaInfo `json:"replicas"`
	ReplicasError string        `json:"replicasError,omitempty"`
}

// leaseStatus is the status of the election's leader rec, as any backend
// read it; exists is false when the backend has no lease at all (no row,
// no Lease object, no leader key): its state is "none".
func leaseStatus(cfg Config, rec leader.Record, exists bool) LeaseStatus {
	st := LeaseStatus{
		Election: cfg.Election.Name, Database: cfg.Database.String(), Holder: rec.Holder, Term: rec.Term,
		AcquiredAt: rec.AcquiredAt, RenewedAt: rec.RenewedAt, ExpiresAt: rec.ExpiresAt,
		Remaining: Duration(rec.Remaining()), Transitions: rec.Transitions, DatabaseNow: rec.Now,
		Backend: rec.Backend, Token: rec.Token, Candidates: rec.Candidates,
		Path: rec.Path, PathReason: rec.PathReason, LockWindowMs: rec.LockWindow.Milliseconds(),
	}
	switch {
	case !exists || (rec.Term == 0 && rec.Holder == ""):
		st.State = "none"
	case rec.Held():
		st.State = "held"
	case rec.Holder != "":
		st.State = "expired"
	default:
		st.State = "free"
	}
	return st
}

func (c CLI) leaderStatusCommand() *cobra.Command {
	var (
		output string
		watch  bool
	)
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show who holds the leader lease, its term and when it expires, and every replica",
		Long: `Show who holds the leader lease, its term and when it expires, and every
replica of the membership table: its role, the term it leads, how long it has
run and when it was last seen (by the database's clock). A replica not seen for
longer than the lease duration is listed as gone. The lease holder's row is
marked with "*". The exit status is non-zero when the lease cannot be read.

With --watch it reads them again every retry period and prints one line per
change (leader, a replica joining, changing role, going or leaving), or, on a
terminal, redraws the whole view in place, until interrupted.`,
		Args: cobra.NoArgs,
	}
	flags := BindFlags(cmd.Flags(), scopeAll)
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "print every change until interrupted (a line per event; redrawn in place on a terminal)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if output != "text" && output != "json" {
			return fmt.Errorf("--output %q: must be text or json", output)
		}
		cfg, err := flags.Load(c.lookupEnv)
		if err != nil {
			return err
		}
		if watch {
			return c.watchStatus(cmd, cfg, output)
		}
		ctx, cancel := withTimeout(cmd.Context(), cfg)
		defer cancel()
		st, err := readStatus(ctx, cfg)
		if err != nil {
			return err
		}
		if output == "json" {
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(st)
		}
		return printLeaseStatus(cmd.OutOrStdout(), st)
	}
	return cmd
}

// readStatus reads the election of cfg's backend, and the membership table
// of Admin's database.
func readStatus(ctx context.Context, cfg Config) (LeaseStatus, error) {
	var st LeaseStatus
	err := withElector(ctx, cfg, func(el election) error {
		var err error
		st, err = readElectionStatus(ctx, cfg, el)
		return err
	})
	return st, err
}

// readElectionStatus is readStatus on an election already prepared.
func readElectionStatus(ctx context.Context, cfg Config, el election) (LeaseStatus, error) {
	st, rec, err := electionStatus(ctx, cfg, el)
	if err != nil {
		return st, err
	}
	readReplicas(ctx, cfg, el.db, rec, &st)
	return st, nil
}

// electionStatus reads the leader of the election el, with what its
// backend adds: the Kubernetes Lease, the etcd endpoints.
func electionStatus(ctx context.Context, cfg Config, el election) (LeaseStatus, leader.Record, error) {
	if _, ok := el.Elector.(*leader.LeaseElector); ok {
		return sqlLeaseStatus(ctx, cfg, el)
	}
	rec, err := el.Leader(ctx)
	if err != nil {
		return LeaseStatus{}, rec, err
	}
	var st LeaseStatus
	switch e := el.Elector.(type) {
	case *klease.Elector:
		st = leaseStatus(cfg, rec, rec.Token != "")
		kc := e.Config()
		st.Lease = kc.Namespace + "/" + kc.LeaseName
	case *etcd.Elector:
		st = leaseStatus(cfg, rec, rec.Holder != "")
		st.Etcd = strings.Join(e.Config().Redacted().Endpoints, ",")
	}
	return st, rec, nil
}

// sqlLeaseStatus reads the lease of the SQL backend. A lease that cannot be
// read is an error: so is a lease table that was gone before this command
// although the election was held (its terms are in leader_epochs).
func sqlLeaseStatus(ctx context.Context, cfg Config, el election) (LeaseStatus, leader.Record, error) {
	db := el.db.WithContext(ctx)
	if !el.leaseTable {
		var terms int64
		if err := db.Raw(`SELECT term FROM leader_epochs WHERE name = ?`, cfg.Election.Name).Scan(&terms).Error; err != nil {
			return LeaseStatus{}, leader.Record{}, fmt.Errorf("table leader_epochs in %s: %w", cfg.Database, err)
		}
		if terms > 0 {
			return LeaseStatus{}, leader.Record{}, fmt.Errorf("table leader_leases was missing from %s, yet election %q has had %d terms: it was dropped (re-created now, empty); a running replica takes the lease at its next attempt", cfg.Database, cfg.Election.Name, terms)
		}
	}
	rec, err := el.Leader(ctx)
	if err != nil {
		return LeaseStatus{}, rec, fmt.Errorf("table leader_leases in %s: %w", cfg.Database, err)
	}
	st := leaseStatus(cfg, rec, el.leaseTable)
	st.Warning = implausibleLease(rec, cfg.Election.LeaseDuration.D())
	if st.State == "none" {
		if err := db.Raw(`SELECT name FROM leader_leases WHERE term > 0 ORDER BY name`).Scan(&st.Elections).Error; err != nil {
			return LeaseStatus{}, rec, fmt.Errorf("table leader_leases in %s: %w", cfg.Database, err)
		}
	}
	return st, rec, nil
}

func printLeaseStatus(w io.Writer, st LeaseStatus) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, v) }
	row("election", st.Election)
	row("backend", st.Backend)
	if st.Lease != "" {
		row("lease", st.Lease)
	}
	if st.Etcd != "" {
		row("etcd", st.Etcd)
	}
	row("database", st.Database)
	switch {
	case st.State != "none":
		row("state", st.State)
	case len(st.Elections) > 0:
		row("state", fmt.Sprintf("none: election %q has never been held in this database (held here: %s; see --election-name)",
			st.Election, strings.Join(st.Elections, ", ")))
	default:
		row("state", fmt.Sprintf("none: election %q has never been held in this database", st.Election))
	}
	if st.State != "none" {
		row("holder", orDash(st.Holder))
		row("term", fmt.Sprint(st.Term))
		row("acquired", stamp(st.AcquiredAt))
		row("renewed", stamp(st.RenewedAt))
		expires := stamp(st.ExpiresAt)
		if st.State == "held" {
			expires += fmt.Sprintf(" (in %v)", st.Remaining.D().Round(time.Millisecond))
		}
		row("expires", expires)
		row("transitions", fmt.Sprint(st.Transitions))
		if f := failoverPath(st); f != "" {
			row("failover", f)
		}
		if st.Token != "" {
			row("token", st.Token)
			if len(st.Candidates) > 0 {
				row("candidates", strings.Join(st.Candidates, ", "))
			}
		}
	}
	if st.Warning != "" {
		row("WARNING", st.Warning)
	}
	switch {
	case st.ReplicasError != "":
		row("replicas", "unknown: "+st.ReplicasError)
	case st.Replicas == nil:
		row("replicas", "none recorded (no replica has run with this version)")
	default:
		gone := 0
		for _, r := range st.Replicas {
			if r.Gone {
				gone++
			}
		}
		row("replicas", fmt.Sprintf("%d alive, %d gone", len(st.Replicas)-gone, gone))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return printReplicas(w, st.Replicas)
}

// printReplicas is the membership table, the lease holder's row marked
// with "*": identity, address, role (or "gone"), the term it leads, how
// long it has run, when it was last seen (database clock), version, error.
func printReplicas(w io.Writer, rs []ReplicaInfo) error {
	if len(rs) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  IDENTITY\tADDRESS\tROLE\tTERM\tAGE\tSEEN\tVERSION\tERROR")
	for _, r := range rs {
		mark, role, term := " ", r.Role, "-"
		if r.Leader {
			mark = "*"
		}
		if r.Gone {
			role = "gone (was " + r.Role + ")"
		}
		if r.Term > 0 {
			term = fmt.Sprint(r.Term)
		}
		fmt.Fprintf(tw, "%s %s\t%s\t%s\t%s\t%s\t%s ago\t%s\t%s\n", mark, r.Identity, orDash(r.Address), role, term,
			roundAge(r.Age()), roundAge(r.SeenAgo()), orDash(r.Version), orDash(r.Error))
	}
	return tw.Flush()
}

// roundAge shows a duration to a tenth of a second below a minute, to the
// second above.
func roundAge(d time.Duration) string {
	if d < time.Minute {
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// readReplicas fills st's replicas from the membership table of db, the
// holder of rec marked.
func readReplicas(ctx context.Context, cfg Config, db *gorm.DB, rec leader.Record, st *LeaseStatus) {
	t, err := membership.NewTable(db)
	if err != nil {
		st.ReplicasError = err.Error()
		return
	}
	if !t.Exists(ctx) {
		return
	}
	view, err := membershipReader(cfg, t)(ctx)
	if err != nil {
		st.ReplicasError = err.Error()
		return
	}
	st.Replicas = replicasInfo(view, rec).Replicas
}

func (c CLI) leaderReleaseCommand() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "release --force",
		Short: "Free the leader lease whoever holds it",
		Long: `Free the leader lease whoever holds it, so that a replica takes it within
one retry period. The old holder, if it still runs, stops leading at its next
renew, and its fenced writes fail from now on. Requires --force.`,
		Args: cobra.NoArgs,
	}
	flags := BindFlags(cmd.Flags(), scopeAll)
	cmd.Flags().BoolVar(&force, "force", false, "really free the lease")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if !force {
			return errors.New("leader release frees the lease whoever holds it: re-run with --force to do it")
		}
		cfg, err := flags.Load(c.lookupEnv)
		if err != nil {
			return err
		}
		ctx, cancel := withTimeout(cmd.Context(), cfg)
		defer cancel()
		return withElector(ctx, cfg, func(el election) error {
			if el.release == nil {
				return fmt.Errorf("election.backend %q: its leader cannot be released by force", cfg.Election.Backend)
			}
			before, err := el.release.ForceRelease(ctx)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), releasedLine(cfg, el, before))
			return err
		})
	}
	return cmd
}

// releasedLine says what `leader release --force` did to the leader
// before, in the words of the election's backend.
func releasedLine(cfg Config, el election, before leader.Record) string {
	name := cfg.Election.Name
	switch e := el.Elector.(type) {
	case *klease.Elector:
		kc := e.Config()
		if before.Holder == "" {
			return fmt.Sprintf("lease %s/%s has no holder: nothing to release", kc.Namespace, kc.LeaseName)
		}
		return fmt.Sprintf("released lease %s/%s held by %s (term %d); a replica takes it within one retry period",
			kc.Namespace, kc.LeaseName, before.Holder, before.Term)
	case *etcd.Elector:
		if before.Holder == "" {
			return fmt.Sprintf("etcd election %q has no leader: nothing to release", name)
		}
		return fmt.Sprintf("deleted the etcd leader key of %q held by %s (term %d, %s); the next candidate leads at once",
			name, before.Holder, before.Term, before.Token)
	}
	switch {
	case before.Term == 0 && before.Holder == "":
		return fmt.Sprintf("no lease %q in %s: nothing to release", name, cfg.Database)
	case before.Held():
		return fmt.Sprintf("released lease %q held by %s (term %d); a replica takes it within one retry period",
			name, before.Holder, before.Term)
	case before.Holder != "":
		return fmt.Sprintf("released lease %q: it had expired (last holder %s, term %d)", name, before.Holder, before.Term)
	default:
		return fmt.Sprintf("lease %q was already free (term %d)", name, before.Term)
	}
}

// sqliteFile is the file of an SQLite DSN (a path or a file: URI).
func sqliteFile(dsn string) string {
	s := dsn
	if len(s) > 5 && s[:5] == "file:" {
		s = s[5:]
	}
	for i := 0; i < len(s); i++ {
		if s[i] == '?' {
			return s[:i]
		}
	}
	return s
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(stampLayout)
}

// stampLayout is RFC 3339 with milliseconds, the resolution of the lease's
// times, trailing zeros kept so that columns line up.
const stampLayout = "2006-01-02T15:04:05.000Z07:00"

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// failoverPath says how a crashed holder of the SQL lease would be
// replaced: through the session lock, about its window after the crash,
// or when the lease expires (and why); "" for other backends.
func failoverPath(st LeaseStatus) string {
	switch st.Path {
	case leader.PathLockFenced:
		if st.LockWindowMs == 0 {
			return "lock-fenced: a crashed holder is replaced as soon as its process is gone"
		}
		return fmt.Sprintf("lock-fenced (lock window %v): a crashed holder is replaced about that long after the crash", time.Duration(st.LockWindowMs)*time.Millisecond)
	case leader.PathLeaseOnly:
		return "lease-only (" + orDash(st.PathReason) + "): a crashed holder is replaced when its lease expires"
	}
	return ""
}
