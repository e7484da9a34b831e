package membership

import "time"

// Member is one replica as it records itself.
type Member struct {
	// Identity is the replica's holder name in the election.
	Identity string `json:"identity"`
	// Address is where its HTTP API listens (host:port).
	Address string `json:"address"`
	Version string `json:"version"`
	Host    string `json:"host"`
	PID     int    `json:"pid"`
	// Role is the runtime's role: Candidate, Leading, Draining...
	Role string `json:"role"`
	// Term is the term it leads while Leading or Draining, else 0.
	Term int64 `json:"term,omitempty"`
	// Error is its last election error ("" while it can take part).
	Error string `json:"error,omitempty"`
}

// Replica is a row of the table as a reader sees it.
type Replica struct {
	Member
	// StartedAt is the database's clock at the replica's first write, and
	// SeenAt at its last one.
	StartedAt time.Time `json:"startedAt"`
	SeenAt    time.Time `json:"seenAt"`
	// AgeMs is how long it has run and SeenAgoMs how long ago it last
	// wrote, both by the database's clock at the read, in milliseconds.
	AgeMs     int64 `json:"ageMs"`
	SeenAgoMs int64 `json:"seenAgoMs"`
	// Gone is true when it was not seen for longer than GoneAfter.
	Gone bool `json:"gone"`
}

// Age is AgeMs as a duration.
func (r Replica) Age() time.Duration { return time.Duration(r.AgeMs) * time.Millisecond }

// SeenAgo is SeenAgoMs as a duration.
func (r Replica) SeenAgo() time.Duration { return time.Duration(r.SeenAgoMs) * time.Millisecond }

// View is every replica of an election at one instant of the database's
// clock.
type View struct {
	Election string `json:"election"`
	// Now is the database's clock at the read.
	Now time.Time `json:"databaseNow"`
	// GoneAfterMs is the silence after which a replica counts as gone.
	GoneAfterMs int64     `json:"goneAfterMs"`
	Replicas    []Replica `json:"replicas"`
}

// Alive counts the replicas that are not gone.
func (v View) Alive() int {
	n := 0
	for _, r := range v.Replicas {
		if !r.Gone {
			n++
		}
	}
	return n
}

// row is the scan target of List.
type row struct {
	Identity  string
	Address   string
	Version   string
	Host      string
	PID       int `gorm:"column:pid"`
	Role      string
	Term      int64
	Error     string
	StartedAt int64
	SeenAt    int64
	NowMs     int64
}

func (r row) replica(goneAfter time.Duration) Replica {
	return Replica{
		Member: Member{Identity: r.Identity, Address: r.Address, Version: r.Version, Host: r.Host,
			PID: r.PID, Role: r.Role, Term: r.Term, Error: r.Error},
		StartedAt: time.UnixMilli(r.StartedAt).UTC(),
		SeenAt:    time.UnixMilli(r.SeenAt).UTC(),
		AgeMs:     max(r.NowMs-r.StartedAt, 0),
		SeenAgoMs: max(r.NowMs-r.SeenAt, 0),
		Gone:      r.NowMs-r.SeenAt > goneAfter.Milliseconds(),
	}
}
