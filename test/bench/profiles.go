package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// The Discovery replicas serve /debug/pprof/ (http.pprof): the bench takes
// the leader's heap profile when its first sync completed and a CPU profile
// in the middle of the churn, keeps them under BENCH_PROFILES (default: the
// bench's temporary directory) and notes the top functions of each, so that
// an unmet goal comes with the bottleneck measured in the same run.

// profileDir is where the profiles go.
func (b *bench) profileDir() string {
	if d := os.Getenv("BENCH_PROFILES"); d != "" {
		return d
	}
	return filepath.Join(b.tmp, "profiles")
}

// captureProfile fetches a profile from a replica's /debug/pprof/ (path
// with its query, e.g. "heap?gc=1" or "profile?seconds=10") into the
// profile directory and notes its top functions under title.
func (b *bench) captureProfile(ctx context.Context, url, path, file, title string) {
	if err := b.profile(ctx, url, path, file, title); err != nil {
		b.note("%s: no profile: %v", title, err)
	}
}

func (b *bench) profile(ctx context.Context, url, path, file, title string) error {
	dir := b.profileDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/debug/pprof/"+path, nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/debug/pprof/%s: %s", path, resp.Status)
	}
	dst := filepath.Join(dir, file)
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	top, err := pprofTop(ctx, dst, 8)
	if err != nil {
		return err
	}
	b.note("%s (`go tool pprof -top %s`): %s", title, dst, top)
	return nil
}

// pprofTop is the first n lines of `go tool pprof -top` for a profile, as
// "flat% function" pairs, with the profile's total.
func pprofTop(ctx context.Context, path string, n int) (string, error) {
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-nodecount="+fmt.Sprint(n), path)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go tool pprof: %w: %s", err, strings.TrimSpace(out.String()))
	}
	var total string
	var top []string
	header := true
	for line := range strings.Lines(out.String()) {
		line = strings.TrimSpace(line)
		switch {
		case strings.Contains(line, " total"):
			total = line // "Showing nodes accounting for X, Y% of Z total"
		case strings.HasPrefix(line, "flat "):
			header = false
		case !header && line != "":
			// flat flat% sum% cum cum% name...
			f := strings.Fields(line)
			if len(f) >= 6 {
				top = append(top, fmt.Sprintf("%s %s (%s)", f[1], strings.Join(f[5:], " "), f[0]))
			}
		}
	}
	if len(top) == 0 {
		return "", fmt.Errorf("go tool pprof: no functions in %s", path)
	}
	return total + "; " + strings.Join(top, "; "), nil
}
