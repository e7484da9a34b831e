package file

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/fsnotify/fsnotify"
	"github.com/go-logr/logr"

	"github.com/apache/dubbo-admin/pkg/core/source"
	"github.com/apache/dubbo-admin/pkg/core/store"
)

// Decoder turns one file's content into resources. name is the file's base
// name, so decoders can derive stable keys from it.
type Decoder func(name string, data []byte) ([]store.Resource, error)

// Opener returns the source.Opener of file URLs whose files decode.
func Opener(decode Decoder) source.Opener {
	return func(_ context.Context, u *url.URL, log logr.Logger) (source.Source, error) {
		dir, err := source.Dir(u)
		if err != nil {
			return nil, err
		}
		return New(dir, decode, log)
	}
}

// Source watches one directory. Create it with New.
type Source struct {
	dir    string
	decode Decoder
	log    logr.Logger

	stopOnce sync.Once
	done     chan struct{}  // closed by Stop
	wg       sync.WaitGroup // the watch goroutine
	mu       sync.Mutex
	err      error // why the watch ended early
	watcher  *fsnotify.Watcher
}

// New returns a source over dir, which must be a directory.
func New(dir string, decode Decoder, log logr.Logger) (*Source, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("file source: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("file source: %s is not a directory", dir)
	}
	return &Source{dir: dir, decode: decode, log: log.WithValues("dir", dir), done: make(chan struct{})}, nil
}

// List reads every file of the directory.
func (s *Source) List(context.Context) ([]store.Resource, error) {
	files, err := s.scan()
	if err != nil {
		return nil, err
	}
	var out []store.Resource
	for _, name := range sortedKeys(files) {
		out = append(out, files[name]...)
	}
	return out, nil
}

// Watch starts watching the directory. It may be called once.
func (s *Source) Watch(ctx context.Context) (<-chan source.Change, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("file source: %w", err)
	}
	if err := w.Add(s.dir); err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("file source: watch %s: %w", s.dir, err)
	}
	// The state the changes are diffed against: read after the watch is in
	// place, so an edit in between is both read here and seen as an event.
	known, err := s.scan()
	if err != nil {
		_ = w.Close()
		return nil, err
	}
	s.watcher = w
	out := make(chan source.Change)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(out)
		if err := s.run(ctx, w, known, out); err != nil {
			s.mu.Lock()
			s.err = err
			s.mu.Unlock()
		}
	}()
	return out, nil
}

// Stop ends the watch and waits for it.
func (s *Source) Stop() error {
	s.stopOnce.Do(func() { close(s.done) })
	s.wg.Wait()
	if s.watcher != nil {
		_ = s.watcher.Close()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// run turns file events into changes until ctx ends or Stop.
func (s *Source) run(ctx context.Context, w *fsnotify.Watcher, known map[string][]store.Resource, out chan<- source.Change) error {
	emit := func(cs []source.Change) bool {
		for _, c := range cs {
			select {
			case out <- c:
			case <-ctx.Done():
				return false
			case <-s.done:
				return false
			}
		}
		return true
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.done:
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return errors.New("file source: fsnotify closed its event channel")
			}
			name := filepath.Base(ev.Name)
			if filepath.Clean(ev.Name) == filepath.Clean(s.dir) {
				if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
					return fmt.Errorf("file source: directory %s was removed", s.dir)
				}
				continue
			}
			if !wanted(name) {
				continue
			}
			items := s.read(name)
			if !emit(diff(known[name], items)) {
				return nil
			}
			if len(items) == 0 {
				delete(known, name)
			} else {
				known[name] = items
			}
		case err, ok := <-w.Errors:
			if !ok {
				return errors.New("file source: fsnotify closed its error channel")
			}
			// Events were lost (e.g. a queue overflow): diff everything.
			s.log.Info("file watch error; rescanning the directory", "error", err.Error())
			files, serr := s.scan()
			if serr != nil {
				return serr
			}
			for _, name := range unionKeys(known, files) {
				if !emit(diff(known[name], files[name])) {
					return nil
				}
			}
			known = files
		}
	}
}

// scan reads every wanted file of the directory.
func (s *Source) scan() (map[string][]store.Resource, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("file source: %w", err)
	}
	files := make(map[string][]store.Resource)
	for _, e := range entries {
		if e.IsDir() || !wanted(e.Name()) {
			continue
		}
		if items := s.read(e.Name()); len(items) > 0 {
			files[e.Name()] = items
		}
	}
	return files, nil
}

// read decodes one file; a missing file has no items, a bad one is logged.
func (s *Source) read(name string) []store.Resource {
	data, err := os.ReadFile(filepath.Join(s.dir, name))
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			s.log.Info("skipping unreadable file", "file", name, "error", err.Error())
		}
		return nil
	}
	items, err := s.decode(name, data)
	if err != nil {
		s.log.Info("skipping malformed file", "file", name, "error", err.Error())
		return nil
	}
	return items
}

func wanted(name string) bool {
	if strings.HasPrefix(name, ".") {
		return false
	}
	switch strings.ToLower(filepath.Ext(name)) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return false
}

func sortedKeys(m map[string][]store.Resource) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func unionKeys(a, b map[string][]store.Resource) []string {
	u := make(map[string][]store.Resource, len(a)+len(b))
	for k := range a {
		u[k] = nil
	}
	for k := range b {
		u[k] = nil
	}
	return sortedKeys(u)
}
