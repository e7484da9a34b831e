package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// pollLeadership asks every live replica for /api/v1/leader each Poll and
// prints a line whenever the set of leading replicas (and their terms)
// changes. A replica that does not answer counts as not leading. It
// returns when ctx ends.
func (s *Supervisor) pollLeadership(ctx context.Context, children []*child) {
	client := &http.Client{Timeout: max(s.Poll, time.Second)}
	defer client.CloseIdleConnections()
	t := time.NewTicker(s.Poll)
	defer t.Stop()
	last := "none"
	for {
		view := s.leadingView(ctx, client, children)
		if view != last && ctx.Err() == nil {
			if view == "none" {
				s.printf("leader: none (was %s)", last)
			} else {
				s.printf("leader: %s", view)
			}
			last = view
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// leadingView describes the replicas that report leading, e.g.
// "replica 1 (pid 4242, http://127.0.0.1:8081) leads term 7", or "none".
func (s *Supervisor) leadingView(ctx context.Context, client *http.Client, children []*child) string {
	var leaders []string
	for _, c := range children {
		if c.exited.Load() {
			continue
		}
		info, err := fetchLeader(ctx, client, c.url)
		if err != nil || !info.Self.Leading {
			continue
		}
		leaders = append(leaders, fmt.Sprintf("replica %d (pid %d, %s) leads term %d", c.index, c.cmd.Process.Pid, c.url, info.Self.Term))
	}
	if len(leaders) == 0 {
		return "none"
	}
	slices.Sort(leaders)
	return strings.Join(leaders, "; ")
}

func fetchLeader(ctx context.Context, client *http.Client, base string) (LeaderInfo, error) {
	var info LeaderInfo
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/leader", nil)
	if err != nil {
		return info, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return info, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return info, fmt.Errorf("GET %s/api/v1/leader: %s", base, resp.Status)
	}
	return info, json.NewDecoder(resp.Body).Decode(&info)
}
