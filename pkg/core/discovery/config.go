package discovery

import (
	"time"

	"github.com/apache/dubbo-admin/pkg/core/source"
)

// Defaults of Config.
const (
	DefaultURL    = "file://examples/registry"
	DefaultResync = 5 * time.Minute
)

// Config chooses and paces Discovery's source.
type Config = source.Config

// DefaultConfig is the embedded default: the example instance files.
func DefaultConfig() Config { return Config{URL: DefaultURL, Resync: DefaultResync} }

// Sources returns a registry with the sources built into this package
// (file); register more, e.g. zookeeper.Register(reg).
func Sources() source.Registry {
	return source.Registry{"file": FileOpener}
}
