package schedule

import (
	"context"
	"testing"
	"time"
)

func TestEveryRunsAtOnceThenOnEachTickUntilCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	err := Every(ctx, time.Millisecond, func(context.Context) {
		if calls++; calls == 3 {
			cancel()
		}
	})
	if err != nil || calls != 3 {
		t.Fatalf("Every returned %v after %d calls, want nil after 3 (the third cancelled)", err, calls)
	}
}
