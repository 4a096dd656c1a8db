package store

// ClickHouse 18.16 deadlocks when an ALTER of a table waits for a running query that reads the table, and that
// query asks for the table's lock a second time: a JOIN whose right side reads the table does (once to analyse the
// subquery, once to run it). The second request queues behind the ALTER, which waits for the first, and neither
// ever returns, nor can be killed. The indicator queries read deal_attribution on the right of a JOIN, and pruning
// drops its partitions (ALTER TABLE … DROP PARTITION), so two components of one process that attribute at the same
// time (serve's refresher and its report page) would hang both, and every later statement on the table with them.
//
// Within a process the store keeps them apart: statements on deal_attribution hold attributionMu shared, a DROP
// PARTITION of it holds it exclusively. Other processes are not covered; on 18.16, run one process that attributes
// per database (one serve), and expect a drill-down that Grafana runs at the very moment of a prune to wait for it.
// Current ClickHouse releases take the lock once per query and are not affected.

// readingAttribution takes the shared side of the lock for statements on deal_attribution; call the function it
// returns when the statement and its rows are done. Never nest it with droppingAttribution.
func (s *Store) readingAttribution() (unlock func()) {
	s.attributionMu.RLock()
	return s.attributionMu.RUnlock
}

// droppingAttribution takes the exclusive side of the lock, for ALTER TABLE deal_attribution DROP PARTITION.
func (s *Store) droppingAttribution() (unlock func()) {
	s.attributionMu.Lock()
	return s.attributionMu.Unlock
}
