package store

import (
	"context"
	"fmt"
)

// Counter is implemented by the stores that count their resources per kind
// without reading them (both backends): the console's resource counts.
type Counter interface {
	// Counts returns how many resources each kind holds; kinds without
	// resources are absent.
	Counts(ctx context.Context) (map[string]int64, error)
}

var (
	_ Counter = (*GORM)(nil)
	_ Counter = (*Memory)(nil)
)

// Counts is one grouped COUNT over table resources.
func (s *GORM) Counts(ctx context.Context) (map[string]int64, error) {
	var rows []struct {
		Kind string
		N    int64
	}
	if err := s.db.WithContext(ctx).Raw(`SELECT kind, COUNT(*) AS n FROM resources GROUP BY kind`).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("count resources per kind: %w", err)
	}
	out := make(map[string]int64, len(rows))
	for _, r := range rows {
		out[r.Kind] = r.N
	}
	return out, nil
}

// Counts counts the kinds' maps.
func (m *Memory) Counts(ctx context.Context) (map[string]int64, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("count resources per kind: %w", err)
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make(map[string]int64, len(m.kinds))
	for kind, rows := range m.kinds {
		if len(rows) > 0 {
			out[kind] = int64(len(rows))
		}
	}
	return out, nil
}
