package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/apache/dubbo-admin/pkg/core/engine"
	"github.com/apache/dubbo-admin/pkg/core/store"
)

// Source is a directory of Engine runtime-instance files that a test
// controls: the Engine component of every replica reads it through
// engine.FileOpener (URL), and Diff compares the store with it.
type Source struct {
	dir string
	mu  sync.Mutex // serialises writes to the directory
}

// NewSource creates dir (if needed) and returns the source over it.
func NewSource(dir string) (*Source, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("harness: source directory: %w", err)
	}
	return &Source{dir: dir}, nil
}

// Dir is the directory.
func (s *Source) Dir() string { return s.dir }

// URL is the engine.url of the directory.
func (s *Source) URL() string { return "file://" + s.dir }

// Instances returns n running instances named prefix-0.. in namespace ns.
func Instances(ns, prefix string, n int) []engine.RuntimeInstance {
	out := make([]engine.RuntimeInstance, n)
	for i := range out {
		out[i] = engine.RuntimeInstance{
			Name: fmt.Sprintf("%s-%d", prefix, i), Namespace: ns, Node: "node-1",
			PodIP: fmt.Sprintf("10.0.%d.%d", i/250, i%250+1), Phase: "Running", Ready: true,
			Application: prefix, Labels: map[string]string{"app": prefix},
		}
	}
	return out
}

// Put writes file (a base name ending in .yaml) with the instances,
// atomically: a temporary dot-file renamed into place, so the watcher never
// reads half a file.
func (s *Source) Put(file string, instances ...engine.RuntimeInstance) error {
	data, err := yaml.Marshal(engine.File{Instances: instances})
	if err != nil {
		return fmt.Errorf("harness: encode %s: %w", file, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	tmp := filepath.Join(s.dir, "."+file+".tmp")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("harness: write %s: %w", file, err)
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, file)); err != nil {
		return fmt.Errorf("harness: write %s: %w", file, err)
	}
	return nil
}

// Remove deletes file; a missing file is not an error.
func (s *Source) Remove(file string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.Remove(filepath.Join(s.dir, file)); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("harness: remove %s: %w", file, err)
	}
	return nil
}

// Expected decodes the directory as Engine does and returns the specs by key.
func (s *Source) Expected() (map[string]json.RawMessage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("harness: read source: %w", err)
	}
	out := map[string]json.RawMessage{}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || strings.HasPrefix(name, ".") || !strings.HasSuffix(name, ".yaml") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(s.dir, name))
		if err != nil {
			return nil, fmt.Errorf("harness: read %s: %w", name, err)
		}
		items, err := engine.DecodeFile(name, data)
		if err != nil {
			return nil, fmt.Errorf("harness: %w", err)
		}
		for _, r := range items {
			out[r.Key] = r.Spec
		}
	}
	return out, nil
}

// Diff compares the RuntimeInstance resources of st with the directory and
// describes every difference: a key missing from the store (lost), a key
// the source does not have (resurrected or never deleted), or a different
// spec. It returns "" when they are equal.
func (s *Source) Diff(ctx context.Context, st store.ResourceStore) (string, error) {
	want, err := s.Expected()
	if err != nil {
		return "", err
	}
	page, err := st.List(ctx, engine.KindRuntimeInstance, store.ListOptions{})
	if err != nil {
		return "", fmt.Errorf("harness: list store: %w", err)
	}
	var diffs []string
	got := map[string]bool{}
	for _, r := range page.Items {
		got[r.Key] = true
		spec, ok := want[r.Key]
		switch {
		case !ok:
			diffs = append(diffs, "in store but not in source (term "+fmt.Sprint(r.Term)+"): "+r.Key)
		case !sameJSON(spec, r.Spec):
			diffs = append(diffs, fmt.Sprintf("spec differs for %s: store %s, source %s", r.Key, r.Spec, spec))
		}
	}
	for k := range want {
		if !got[k] {
			diffs = append(diffs, "in source but not in store: "+k)
		}
	}
	slices.Sort(diffs)
	if len(diffs) > 10 {
		diffs = append(diffs[:10], fmt.Sprintf("... and %d more", len(diffs)-10))
	}
	return strings.Join(diffs, "; "), nil
}

func sameJSON(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

// Churn rewrites file every period with one instance whose label counts up,
// so that the leader writes continuously, until the returned stop is
// called; stop waits for the goroutine and reports the first write error.
func (s *Source) Churn(file string, period time.Duration) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		t := time.NewTicker(period)
		defer t.Stop()
		for n := 0; ; n++ {
			in := Instances("churn", strings.TrimSuffix(file, ".yaml"), 1)
			in[0].Labels["generation"] = fmt.Sprint(n)
			if err := s.Put(file, in...); err != nil {
				done <- err
				return
			}
			select {
			case <-ctx.Done():
				done <- nil
				return
			case <-t.C:
			}
		}
	}()
	return func() error {
		cancel()
		return <-done
	}
}
