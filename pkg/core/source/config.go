package source

import (
	"fmt"
	"time"
)

// Config chooses and paces the source of one component (Discovery's
// registry, Engine's runtime).
type Config struct {
	// URL picks the source by scheme: file://DIR, zookeeper://host:port,
	// kubernetes, ... (see Registry).
	URL string `json:"url"`
	// Resync is the period of the full relist; 0 disables it.
	Resync time.Duration `json:"resync"`
}

// Validate checks the config against the registry of sources.
func (c Config) Validate(reg Registry) error {
	if c.Resync < 0 {
		return fmt.Errorf("resync %s must not be negative", c.Resync)
	}
	if _, _, err := reg.Resolve(c.URL); err != nil {
		return err
	}
	return nil
}
