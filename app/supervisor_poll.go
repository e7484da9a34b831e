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
// changes, or, when none of them leads, the lease's holder they see (a
// replica of another supervisor or machine). A replica that does not answer
// counts as not leading. It returns when ctx ends.
func (s *Supervisor) pollLeadership(ctx context.Context) {
	client := &http.Client{Timeout: max(s.Poll, time.Second)}
	defer client.CloseIdleConnections()
	t := time.NewTicker(s.Poll)
	defer t.Stop()
	last := "none"
	ours := map[string]bool{} // identities of this supervisor's replicas, past ones included
	for {
		view := s.leadingView(ctx, client, s.current(), ours)
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
// "replica 1 (pid 4242, http://127.0.0.1:8081) leads term 7", the holder
// of the lease when it is none of them, or "none".
func (s *Supervisor) leadingView(ctx context.Context, client *http.Client, children []*child, ours map[string]bool) string {
	var leaders []string
	var foreign LeaderInfo
	for _, c := range children {
		if c.exited.Load() {
			continue
		}
		info, err := fetchLeader(ctx, client, c.url)
		if err != nil {
			continue
		}
		ours[info.Self.Identity] = true
		if info.Held && !info.Stale {
			foreign = info
		}
		if info.Self.Leading {
			leaders = append(leaders, fmt.Sprintf("replica %d (pid %d, %s) leads term %d", c.index, c.cmd.Process.Pid, c.url, info.Self.Term))
		}
	}
	if len(leaders) == 0 && foreign.Held && !ours[foreign.Holder] {
		return fmt.Sprintf("%s leads term %d, and it is not one of this supervisor's replicas (another process shares the database; `dubbo-admin leader status` lists them)",
			foreign.Holder, foreign.Term)
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
