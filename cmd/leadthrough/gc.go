package main

import (
	"log/slog"
	"os"
	"runtime/debug"
	"strconv"
)

// ingestGCPercent is the GOGC of an ingest process: a worker allocates a lot and keeps little (at most two
// batches), so with Go's default of 100 the collector runs every few tens of megabytes and takes a fifth of the
// worker's CPU; at 400 it runs a quarter as often. The soft memory limit (ingestMemoryLimit) keeps the heap within
// the worker's budget all the same: the collector works harder when the heap nears it.
const ingestGCPercent = 400

// ingestMemoryLimit is the soft memory limit of an ingest process: 200 MiB, or more for batches larger than the
// default (about 16 bytes of heap per byte of message value a batch may hold, for every batch held at once).
func ingestMemoryLimit(batchBytes, writers int) int64 {
	return max(200<<20, 16*int64(batchBytes)*int64(writers+1))
}

// tuneIngestGC applies ingestGCPercent and ingestMemoryLimit, each unless the environment sets its own (GOGC,
// GOMEMLIMIT: the Kubernetes base sets GOMEMLIMIT from the container's limit).
func tuneIngestGC(batchBytes, writers int, log *slog.Logger) {
	gogc := os.Getenv("GOGC")
	if gogc == "" {
		debug.SetGCPercent(ingestGCPercent)
		gogc = strconv.Itoa(ingestGCPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(ingestMemoryLimit(batchBytes, writers))
	}
	// SetMemoryLimit(-1) reads the limit without changing it.
	log.Debug("garbage collector", "gogc", gogc, "memory_limit_bytes", debug.SetMemoryLimit(-1))
}
