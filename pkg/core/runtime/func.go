package runtime

import "context"

// FuncComponent is a Component made of functions, so that tests and small
// components need no new type. A nil InitFunc does nothing.
type FuncComponent struct {
	ComponentName string
	InitFunc      func(ctx context.Context) error
	StartFunc     func(ctx context.Context) error
	// LeaderOnly makes it a leader component (NeedLeaderElection).
	LeaderOnly bool
	// Rank is its Order.
	Rank int
}

var (
	_ Component              = (*FuncComponent)(nil)
	_ LeaderElectionRunnable = (*FuncComponent)(nil)
	_ Orderer                = (*FuncComponent)(nil)
)

// ComponentFunc returns a component named name that runs start on every
// replica.
func ComponentFunc(name string, start func(ctx context.Context) error) *FuncComponent {
	return &FuncComponent{ComponentName: name, StartFunc: start}
}

// LeaderComponentFunc returns a component named name that runs start on the
// leader only, with the term context.
func LeaderComponentFunc(name string, start func(ctx context.Context) error) *FuncComponent {
	return &FuncComponent{ComponentName: name, StartFunc: start, LeaderOnly: true}
}

// Name implements Component.
func (f *FuncComponent) Name() string { return f.ComponentName }

// Init implements Component.
func (f *FuncComponent) Init(ctx context.Context) error {
	if f.InitFunc == nil {
		return nil
	}
	return f.InitFunc(ctx)
}

// Start implements Component.
func (f *FuncComponent) Start(ctx context.Context) error { return f.StartFunc(ctx) }

// NeedLeaderElection implements LeaderElectionRunnable.
func (f *FuncComponent) NeedLeaderElection() bool { return f.LeaderOnly }

// Order implements Orderer.
func (f *FuncComponent) Order() int { return f.Rank }
