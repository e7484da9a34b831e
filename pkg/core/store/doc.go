// Package store keeps Admin's resources: the contract (ResourceStore), a
// memory backend for a single replica and a GORM backend shared by replicas.
package store
