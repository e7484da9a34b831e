package discovery

import (
	"fmt"
	"time"

	"github.com/apache/dubbo-admin/pkg/core/source"
)

// Defaults of Config.
const (
	DefaultURL    = "file://examples/registry"
	DefaultResync = 5 * time.Minute
)

// Config chooses and paces Discovery's source.
type Config struct {
	// URL picks the source by scheme: file://DIR, zookeeper://host:port,...
	URL string `json:"url"`
	// Resync is the period of the full relist; 0 disables it.
	Resync time.Duration `json:"resync"`
}

// DefaultConfig is the embedded default: the example instance files.
func DefaultConfig() Config { return Config{URL: DefaultURL, Resync: DefaultResync} }

// Validate checks the config against the registry of sources.
func (c Config) Validate(reg source.Registry) error {
	if c.Resync < 0 {
		return fmt.Errorf("discovery: resync %s must not be negative", c.Resync)
	}
	if _, _, err := reg.Resolve(c.URL); err != nil {
		return fmt.Errorf("discovery: %w", err)
	}
	return nil
}

// Sources returns a registry with the sources built into this package
// (file); register more, e.g. zookeeper.Register(reg).
func Sources() source.Registry {
	return source.Registry{"file": FileOpener}
}
