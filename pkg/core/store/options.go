package store

import (
	"time"

	"gorm.io/gorm"
)

// Operations reported to a TxHook.
const (
	OpAdd    = "add"
	OpUpdate = "update"
	OpDelete = "delete"
)

// TxHook is called inside a GORM write transaction, after the fence and
// after the statement that wrote r, once per resource added, updated or
// deleted (op is OpAdd, OpUpdate or OpDelete). An error rolls its
// transaction back (for a Replace in several chunks, that chunk's: the
// earlier ones stay) and is returned by the write. It exists for audit and
// for tests that need a database-ordered write log; production code
// normally leaves it unset.
type TxHook func(tx *gorm.DB, op string, r Resource) error

// Option configures a store.
type Option func(*options)

// Defaults and bounds of the options.
const (
	// DefaultBatchSize is how many rows one batched statement of Replace
	// carries on MySQL and PostgreSQL: 500 rows of 8 columns is 4000 bind
	// variables, far below PostgreSQL's 65535 and MySQL's 65535.
	DefaultBatchSize = 500
	// DefaultSQLiteBatchSize is the default on SQLite. Its statements cost
	// no round trip, and the driver binds arguments in time quadratic in
	// their number per statement, so smaller batches are faster there.
	DefaultSQLiteBatchSize = 100
	// MaxBatchSize keeps a batch under SQLite's bind variable limit.
	MaxBatchSize = 4000
	// DefaultEventBuffer is how many undelivered events one subscription
	// holds before it is ended (see Subscribe).
	DefaultEventBuffer = 4096
	// maxBatchBytes bounds the payload of one batched statement, well under
	// MySQL's default max_allowed_packet.
	maxBatchBytes = 4 << 20
)

type options struct {
	txHook      TxHook
	batchSize   int
	eventBuffer int
	chunkRows   int           // WithReplaceChunk
	chunkTime   time.Duration // WithReplaceChunk
}

func buildOptions(opts []Option) options {
	o := options{eventBuffer: DefaultEventBuffer}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if o.batchSize != 0 {
		o.batchSize = min(max(o.batchSize, 1), MaxBatchSize)
	}
	o.eventBuffer = max(o.eventBuffer, 1)
	return o
}

// WithTxHook sets a hook called inside every GORM write transaction (see
// TxHook). The memory backend has no transaction and ignores it.
func WithTxHook(h TxHook) Option { return func(o *options) { o.txHook = h } }

// WithBatchSize sets the rows per batched statement of Replace, clamped to
// 1..MaxBatchSize; 0 keeps the dialect's default.
func WithBatchSize(n int) Option { return func(o *options) { o.batchSize = n } }

// WithEventBuffer sets how many undelivered events a subscription holds
// (at least 1).
func WithEventBuffer(n int) Option { return func(o *options) { o.eventBuffer = n } }
