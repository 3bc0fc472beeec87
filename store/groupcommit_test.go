package store

import (
	"context"
	"errors"
	"slices"
	"testing"
)

// Ensure the caller holding the turn commits the queued items oldest
// first, in groups of at most max weight, until its own is in, and that
// every item of a group gets that commit's error.
func TestGroupCommitGroups(t *testing.T) {
	var groups [][]string
	failing := errors.New("commit failed")
	g := newGroupCommit(2, func(string) int { return 1 }, func(_ context.Context, items []string) error {
		groups = append(groups, slices.Clone(items))
		if items[0] == "c" {
			return failing
		}
		return nil
	})
	// Queued by callers who are waiting for the turn.
	var queued []*groupItem[string]
	for _, s := range []string{"a", "b", "c"} {
		it := &groupItem[string]{item: s, done: make(chan struct{})}
		queued = append(queued, it)
		g.waiting = append(g.waiting, it)
	}
	if err := g.do(context.Background(), "d"); !errors.Is(err, failing) {
		t.Fatalf("do(d) = %v, want the error of the commit that took it", err)
	}
	if want := [][]string{{"a", "b"}, {"c", "d"}}; !slices.EqualFunc(groups, want, slices.Equal) {
		t.Fatalf("commits %v, want %v", groups, want)
	}
	for i, it := range queued {
		<-it.done
		if wantErr := i == 2; (it.err != nil) != wantErr {
			t.Errorf("%s: err %v", it.item, it.err)
		}
	}
	if len(g.turn) != 0 || len(g.waiting) != 0 {
		t.Fatalf("turn held %d, %d waiting after the commits", len(g.turn), len(g.waiting))
	}
}

// Ensure a caller whose context ends while its item is still queued leaves
// the queue with ctx.Err(), and its item is never committed.
func TestGroupCommitCancelledWhileQueued(t *testing.T) {
	g := newGroupCommit(10, func(int) int { return 1 }, func(context.Context, []int) error {
		t.Error("committed an item whose caller gave up")
		return nil
	})
	g.turn <- struct{}{} // another caller is committing
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := g.do(ctx, 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("do = %v, want context.Canceled", err)
	}
	if len(g.waiting) != 0 {
		t.Fatalf("%d items still queued", len(g.waiting))
	}
}
