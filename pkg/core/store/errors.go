package store

import (
	"errors"

	"github.com/apache/dubbo-admin/pkg/core/leader"
)

// Errors of the store. Every error a method returns wraps at most one of
// these with %w and the context a reader needs (operation, kind, key);
// callers test them with errors.Is.
var (
	// ErrNotFound: Get or Delete of a resource that does not exist.
	ErrNotFound = errors.New("resource not found")
	// ErrInvalid: bad input (empty or oversized kind or key, a spec that is
	// not JSON, oversized labels, a bad continue token, ...). The wrapping
	// error names the field and the rule that is broken. Nothing was written.
	ErrInvalid = errors.New("invalid input")
	// ErrFenced: a write carrying a leader.Term was refused because that
	// term is no longer the live lease. Nothing of the write was committed.
	// It is leader.ErrFenced itself, so either name matches.
	ErrFenced = leader.ErrFenced
	// ErrNoTerm: a write whose context carries neither a leader.Term nor the
	// Unfenced permission. Nothing was written.
	ErrNoTerm = errors.New("write refused: context carries no leader term and is not Unfenced")
)
