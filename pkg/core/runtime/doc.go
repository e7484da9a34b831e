// Package runtime runs Admin's components, the leader-only ones under one
// leader election per process.
package runtime
