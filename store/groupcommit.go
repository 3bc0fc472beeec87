package store

import (
	"context"
	"slices"
	"sync"
)

// groupCommit lets concurrent callers share transactions: each queues its
// item, the one holding the turn commits what is queued, and each returns
// once a commit has taken its item. On either backend a commit per call,
// not the statements, bounds how many small calls a second get through.
// It starts no goroutine: the callers take turns doing the work.
type groupCommit[T any] struct {
	// max bounds the weight of one commit's items (a single heavier item
	// still goes whole).
	max    int
	weigh  func(T) int
	commit func(ctx context.Context, items []T) error

	turn    chan struct{} // capacity 1: held by the caller committing
	mu      sync.Mutex
	waiting []*groupItem[T]
}

type groupItem[T any] struct {
	item T
	err  error
	done chan struct{} // closed once err is set
}

func newGroupCommit[T any](max int, weigh func(T) int, commit func(ctx context.Context, items []T) error) *groupCommit[T] {
	return &groupCommit[T]{max: max, weigh: weigh, commit: commit, turn: make(chan struct{}, 1)}
}

// do queues item and returns the error of the commit that took it. It
// returns ctx.Err() if ctx ends while item is still queued; once a commit
// has taken it, that commit's answer stands. The turn's holder commits
// group after group until its own item is in.
func (g *groupCommit[T]) do(ctx context.Context, item T) error {
	it := &groupItem[T]{item: item, done: make(chan struct{})}
	g.mu.Lock()
	g.waiting = append(g.waiting, it)
	g.mu.Unlock()
	select {
	case <-it.done:
		return it.err
	case g.turn <- struct{}{}:
	case <-ctx.Done():
		g.mu.Lock()
		if i := slices.Index(g.waiting, it); i >= 0 {
			g.waiting = slices.Delete(g.waiting, i, i+1)
			g.mu.Unlock()
			return ctx.Err()
		}
		g.mu.Unlock()
		<-it.done
		return it.err
	}
	defer func() { <-g.turn }()
	for {
		select {
		case <-it.done:
			return it.err
		default:
		}
		group := g.next()
		items := make([]T, len(group))
		for i, w := range group {
			items[i] = w.item
		}
		// The commit is everyone's in the group: this caller's
		// cancellation must not fail the others.
		err := g.commit(context.WithoutCancel(ctx), items)
		for _, w := range group {
			w.err = err
			close(w.done)
		}
	}
}

// next takes the oldest queued items, up to max weight.
func (g *groupCommit[T]) next() []*groupItem[T] {
	g.mu.Lock()
	defer g.mu.Unlock()
	n, weight := 0, 0
	for n < len(g.waiting) && (n == 0 || weight+g.weigh(g.waiting[n].item) <= g.max) {
		weight += g.weigh(g.waiting[n].item)
		n++
	}
	group := g.waiting[:n]
	g.waiting = slices.Clone(g.waiting[n:])
	return group
}
