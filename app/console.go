package app

import (
	"cmp"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	neturl "net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/dubbo-admin/pkg/core/leader"
	"github.com/apache/dubbo-admin/pkg/core/membership"
	"github.com/apache/dubbo-admin/pkg/core/store"
)

// The console: the cluster page every replica serves at / and /cluster
// (app/web, embedded: plain HTML, CSS and one script, no build step, no
// external fonts or scripts), and the three endpoints only it needs:
//
//   - /api/v1/terms: the term log (leader.Epochs.History), newest first.
//   - /api/v1/counts: the store's resources per kind (store.Counter).
//   - /api/v1/cluster: every replica the membership table lists, each with
//     its own /api/v1/status, which this replica fetches from it.
//
// The page stays live from the leader stream (/api/v1/leader?watch=true):
// each event re-reads the endpoints above once; it never polls.

//go:embed web
var webFiles embed.FS

// Console serves the cluster page and its endpoints on an API's mux.
type Console struct {
	// Election is the election whose terms /api/v1/terms lists.
	Election string
	// Terms reads the term log.
	Terms TermLog
	// Counts counts the store's resources per kind.
	Counts store.Counter
	// Peers lists the other replicas; nil lists this replica only.
	Peers PeerLister
	// PeerTimeout bounds the read of one peer's status; 0 means
	// DefaultPeerTimeout.
	PeerTimeout time.Duration
	// Client reads the peers' status; nil means http.DefaultClient.
	Client *http.Client
}

// TermLog is what the console reads of the term log (*leader.Epochs).
type TermLog interface {
	History(ctx context.Context, election string, limit int) ([]leader.TermRecord, error)
}

var _ TermLog = (*leader.Epochs)(nil)

// Peer is a replica as the membership table lists it.
type Peer struct {
	Identity string
	// Address is its HTTP base URL, e.g. http://10.0.0.2:8080.
	Address string
	// Gone: it was not seen for longer than the lease; its status is not
	// read.
	Gone bool
}

// PeerLister lists the replicas of the membership table.
type PeerLister func(ctx context.Context) ([]Peer, error)

// DefaultPeerTimeout bounds the read of one peer's status.
const DefaultPeerTimeout = 500 * time.Millisecond

// DefaultTermsLimit is how many terms /api/v1/terms lists without ?limit=.
const DefaultTermsLimit = 50

// mount adds the console's routes to the API's mux; a nil console mounts
// none.
func (c *Console) mount(mux *http.ServeMux, a *API) {
	if c == nil {
		return
	}
	web, err := fs.Sub(webFiles, "web")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	page := get(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeFileFS(w, r, web, "index.html")
	})
	mux.Handle("/{$}", page)
	mux.Handle("/cluster", page)
	mux.Handle("/console/", get(http.StripPrefix("/console/", http.FileServerFS(web)).ServeHTTP))
	mux.Handle("/api/v1/terms", get(c.terms))
	mux.Handle("/api/v1/counts", get(c.counts))
	mux.Handle("/api/v1/cluster", get(func(w http.ResponseWriter, r *http.Request) { c.cluster(w, r, a) }))
}

// TermsInfo is the body of /api/v1/terms.
type TermsInfo struct {
	Election string `json:"election"`
	// Terms are the latest terms, newest first; an open term has no
	// endedAt.
	Terms []leader.TermRecord `json:"terms"`
}

func (c *Console) terms(w http.ResponseWriter, r *http.Request) {
	limit := DefaultTermsLimit
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > leader.HistoryLimit {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("limit %q: must be a number 1..%d", s, leader.HistoryLimit))
			return
		}
		limit = n
	}
	ts, err := c.Terms.History(r.Context(), c.Election, limit)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	if ts == nil {
		ts = []leader.TermRecord{}
	}
	writeJSON(w, http.StatusOK, TermsInfo{Election: c.Election, Terms: ts})
}

// CountsInfo is the body of /api/v1/counts.
type CountsInfo struct {
	// Kinds are the kinds that hold resources, by name.
	Kinds []KindCount `json:"kinds"`
	Total int64       `json:"total"`
}

// KindCount is one kind in a CountsInfo.
type KindCount struct {
	Kind  string `json:"kind"`
	Count int64  `json:"count"`
}

func (c *Console) counts(w http.ResponseWriter, r *http.Request) {
	m, err := c.Counts.Counts(r.Context())
	if err != nil {
		storeError(w, err)
		return
	}
	info := CountsInfo{Kinds: []KindCount{}}
	for k, n := range m {
		info.Kinds = append(info.Kinds, KindCount{Kind: k, Count: n})
		info.Total += n
	}
	slices.SortFunc(info.Kinds, func(a, b KindCount) int { return cmp.Compare(a.Kind, b.Kind) })
	writeJSON(w, http.StatusOK, info)
}

// ClusterInfo is the body of /api/v1/cluster.
type ClusterInfo struct {
	// Replicas are this replica first, then the membership table's others
	// by identity.
	Replicas []ReplicaStatus `json:"replicas"`
	// Error says why the membership table could not be read (the list then
	// holds this replica only).
	Error string `json:"error,omitempty"`
}

// ReplicaStatus is one replica's /api/v1/status as this replica read it.
type ReplicaStatus struct {
	Identity string `json:"identity"`
	Address  string `json:"address,omitempty"`
	Self     bool   `json:"self,omitempty"`
	// Gone: the membership table has not seen it within the lease.
	Gone bool `json:"gone,omitempty"`
	// Status is the replica's /api/v1/status body; absent when it could
	// not be read, and Error says why.
	Status json.RawMessage `json:"status,omitempty"`
	Error  string          `json:"error,omitempty"`
}

func (c *Console) cluster(w http.ResponseWriter, r *http.Request, a *API) {
	self := a.Lease.Identity()
	info := ClusterInfo{Replicas: []ReplicaStatus{{Identity: self, Self: true}}}
	if st, err := json.Marshal(a.Status()); err == nil {
		info.Replicas[0].Status = st
	} else {
		info.Replicas[0].Error = err.Error()
	}
	var peers []Peer
	if c.Peers != nil {
		var err error
		if peers, err = c.Peers(r.Context()); err != nil {
			info.Error = fmt.Sprintf("read the membership table: %v", err)
		}
	}
	peers = slices.DeleteFunc(slices.Clone(peers), func(p Peer) bool { return p.Identity == self })
	slices.SortFunc(peers, func(x, y Peer) int { return cmp.Compare(x.Identity, y.Identity) })
	others := make([]ReplicaStatus, len(peers))
	var wg sync.WaitGroup
	for i, p := range peers {
		wg.Go(func() { others[i] = c.peerStatus(r.Context(), p) })
	}
	wg.Wait()
	info.Replicas = append(info.Replicas, others...)
	writeJSON(w, http.StatusOK, info)
}

// peerStatus reads p's /api/v1/status within the peer timeout.
func (c *Console) peerStatus(ctx context.Context, p Peer) ReplicaStatus {
	out := ReplicaStatus{Identity: p.Identity, Address: p.Address, Gone: p.Gone}
	if p.Gone {
		out.Error = "gone: not seen within the lease duration"
		return out
	}
	body, err := c.readPeer(ctx, p.Address+"/api/v1/status")
	if err != nil {
		out.Error = err.Error()
		return out
	}
	out.Status = body
	return out
}

// maxPeerBody bounds what the console reads of one peer's status.
const maxPeerBody = 1 << 20

func (c *Console) readPeer(ctx context.Context, url string) (json.RawMessage, error) {
	ctx, cancel := context.WithTimeout(ctx, cmp.Or(c.PeerTimeout, DefaultPeerTimeout))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", url, err)
	}
	client := c.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		if ue := (*neturl.Error)(nil); errors.As(err, &ue) {
			err = ue.Err // it names the URL again
		}
		return nil, fmt.Errorf("read %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPeerBody))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("read %s: %s", url, resp.Status)
	}
	if !json.Valid(body) {
		return nil, fmt.Errorf("read %s: the body is not JSON", url)
	}
	return body, nil
}

func newConsole(cfg Config, epochs *leader.Epochs, st store.ResourceStore, members *membership.Table) (*Console, error) {
	counts, ok := st.(store.Counter)
	if !ok {
		return nil, fmt.Errorf("console: the %T store cannot count its resources", st)
	}
	return &Console{Election: cfg.Election.Name, Terms: epochs, Counts: counts,
		Peers: membershipPeers(membershipReader(cfg, members), cfg.Election.OpTimeout.D())}, nil
}

// membershipPeers lists the replicas of the membership table (gone: not
// seen within the lease duration), each statement within timeout.
func membershipPeers(read MembershipReader, timeout time.Duration) PeerLister {
	return func(ctx context.Context) ([]Peer, error) {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		v, err := read(ctx)
		if err != nil {
			return nil, err
		}
		peers := make([]Peer, 0, len(v.Replicas))
		for _, r := range v.Replicas {
			addr := r.Address
			if addr != "" && !strings.Contains(addr, "://") {
				addr = "http://" + addr
			}
			peers = append(peers, Peer{Identity: r.Identity, Address: addr, Gone: r.Gone})
		}
		return peers, nil
	}
}
