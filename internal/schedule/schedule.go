// Package schedule runs the periodic loops of leadthrough's long-running components (the indicator refresher, the
// monthly table, the report page) one way. It must never know what the loops do.
package schedule

import (
	"context"
	"time"
)

// Every calls fn at once and then every interval until ctx is done, and returns nil then. A call that runs longer
// than interval delays the next one rather than overlapping it. fn reports its own failures: the next tick tries
// again.
func Every(ctx context.Context, interval time.Duration, fn func(context.Context)) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		fn(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
