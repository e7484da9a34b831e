package app

import (
	"errors"
	"sync"
	"time"

	"github.com/apache/dubbo-admin/pkg/core/leader"
)

// ElectionState is how this replica's campaign attempts go, in
// /api/v1/status (as "election", only while they fail) and the membership
// table.
type ElectionState struct {
	// LastError is the cause of the latest failed campaign attempt: not
	// "someone else leads" but "this replica could not even ask" (the
	// database refuses writes, the lease table is broken...).
	LastError   string    `json:"lastError"`
	LastErrorAt time.Time `json:"lastErrorAt"`
	// FailingSince is the first of the failed attempts in a row, and
	// FailedAttempts how many there were.
	FailingSince   time.Time `json:"failingSince"`
	FailedAttempts int       `json:"failedAttempts"`
}

// Failing reports whether the latest campaign attempt failed.
func (s ElectionState) Failing() bool { return s.LastError != "" }

// campaignTrouble remembers the failed campaign attempts in a row; a won
// attempt, or one that found another holder, ends the row. The elector logs
// the lines (once per change of cause); this is what the API, readiness and
// the membership table read.
type campaignTrouble struct {
	mu sync.Mutex
	st ElectionState
}

func (t *campaignTrouble) observe(err error, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err == nil || errors.Is(err, leader.ErrHeld) {
		t.st = ElectionState{}
		return
	}
	if t.st.FailedAttempts == 0 {
		t.st.FailingSince = now
	}
	t.st.FailedAttempts++
	t.st.LastError, t.st.LastErrorAt = err.Error(), now
}

func (t *campaignTrouble) state() ElectionState {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.st
}
