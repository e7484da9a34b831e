package leader

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// The term log: table leader_terms keeps one row per minted term (election,
// term, holder, token, started, ended, how), the last HistoryLimit per
// election, for operators' history of leadership. It is written in the
// transactions that mint and end terms, so it is as exact as the epoch.

// HistoryLimit is how many terms per election the term log keeps (up to
// pruneEvery more between two cuts).
const HistoryLimit = 1000

const pruneEvery = 100

// How a term ended, as the term log records it.
const (
	EndReleased      = "released"       // its holder resigned (graceful stop)
	EndForceReleased = "force-released" // an operator ran `leader release --force`
	EndFenced        = "fenced"         // a write of the term was fenced; the holder resigned
	EndDeadline      = "deadline"       // the holder could not renew within its deadline
	EndLost          = "lost"           // the backend took the lease away (taken or released elsewhere)
	EndClockJump     = "clock-jump"     // the database clock leapt ahead; the holder stepped down
	EndLock          = "lock"           // the session lock was lost, or not confirmed within its window
	EndExpired       = "expired"        // a successor was minted while the term had not ended: crash, hang or cut-off
)

// TermRecord is one row of the term log. Times are the database's clock;
// EndedAt is zero and How empty while the term has not ended.
type TermRecord struct {
	Election  string    `json:"election"`
	Term      int64     `json:"term"`
	Holder    string    `json:"holder"`
	Token     string    `json:"token,omitempty"`
	StartedAt time.Time `json:"startedAt"`
	EndedAt   time.Time `json:"endedAt,omitzero"`
	How       string    `json:"how,omitempty"`
}

type endReasonKey struct{}

// WithEndReason returns a context whose Resign or End records how as the
// way the term ended (one of the End... constants); without it, a Resign
// records EndReleased.
func WithEndReason(ctx context.Context, how string) context.Context {
	return context.WithValue(ctx, endReasonKey{}, how)
}

func endReason(ctx context.Context) string {
	if ctx != nil {
		if how, ok := ctx.Value(endReasonKey{}).(string); ok && how != "" {
			return how
		}
	}
	return EndReleased
}

// endReasonOf names a term context's cause of ending for the term log.
func endReasonOf(cause error) string {
	switch {
	case errors.Is(cause, ErrDeadlinePassed):
		return EndDeadline
	case errors.Is(cause, ErrLeaseLost):
		return EndLost
	case errors.Is(cause, ErrClockJump):
		return EndClockJump
	case errors.Is(cause, ErrLockLost), errors.Is(cause, ErrLockCheckDeadline):
		return EndLock
	}
	return EndReleased
}

func (e *Epochs) migrateTerms(ctx context.Context) error {
	return migrate(ctx, e.db, "leader_terms", e.d.createTable("leader_terms", `
	election VARCHAR(128) NOT NULL,
	term BIGINT NOT NULL,
	holder VARCHAR(255) NOT NULL DEFAULT '',
	token VARCHAR(255) NOT NULL DEFAULT '',
	started_at BIGINT NOT NULL DEFAULT 0,
	ended_at BIGINT NOT NULL DEFAULT 0,
	ended_how VARCHAR(32) NOT NULL DEFAULT '',
	PRIMARY KEY (election, term)
`))
}

// logMint records term t in tx: earlier terms still open are closed as
// EndExpired, and the log is cut to HistoryLimit terms.
func (e *Epochs) logMint(tx *gorm.DB, t Term, token string, nowMs int64) error {
	if err := tx.Exec(`UPDATE leader_terms SET ended_at = ?, ended_how = ? WHERE election = ? AND ended_at = 0 AND term < ?`,
		nowMs, EndExpired, t.Election, t.Number).Error; err != nil {
		return err
	}
	if err := tx.Exec(`INSERT INTO leader_terms (election, term, holder, token, started_at) VALUES (?, ?, ?, ?, ?)`,
		t.Election, t.Number, t.Holder, token, nowMs).Error; err != nil {
		return err
	}
	if t.Number%pruneEvery != 0 {
		return nil // cut the log now and then, not on every acquisition
	}
	return tx.Exec(`DELETE FROM leader_terms WHERE election = ? AND term <= ?`, t.Election, t.Number-HistoryLimit).Error
}

// logEnd records in tx that t ended, how.
func (e *Epochs) logEnd(tx *gorm.DB, t Term, how string) error {
	return tx.Exec(`UPDATE leader_terms SET ended_at = `+e.d.nowMillis+`, ended_how = ? WHERE election = ? AND term = ? AND ended_at = 0`,
		how, t.Election, t.Number).Error
}

// History returns the latest terms of election from the term log, newest
// first, at most limit (HistoryLimit when limit <= 0).
func (e *Epochs) History(ctx context.Context, election string, limit int) ([]TermRecord, error) {
	if limit <= 0 || limit > HistoryLimit {
		limit = HistoryLimit
	}
	var rows []struct {
		Election, Holder, Token, EndedHow string
		Term, StartedAt, EndedAt          int64
	}
	err := e.db.WithContext(ctx).Raw(`SELECT election, term, holder, token, started_at, ended_at, ended_how FROM leader_terms WHERE election = ? ORDER BY term DESC LIMIT ?`,
		election, limit).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("read term log of %q: %w", election, err)
	}
	out := make([]TermRecord, len(rows))
	for i, r := range rows {
		out[i] = TermRecord{Election: r.Election, Term: r.Term, Holder: r.Holder, Token: r.Token,
			StartedAt: fromMillis(r.StartedAt), EndedAt: fromMillis(r.EndedAt), How: r.EndedHow}
	}
	return out, nil
}
