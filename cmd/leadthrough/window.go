package main

import (
	"fmt"
	"time"
)

// humanWindow prints a window the way --window accepts it: 30d rather than 720h0m0s.
func humanWindow(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}
