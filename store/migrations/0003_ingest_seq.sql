-- The order in which copies of an event arrived. A later copy of an event (same source and id) replaces the earlier
-- one, whatever changed, its time included. `events` keeps the last inserted copy by itself (ReplacingMergeTree);
-- the tables derived from it are ordered by event time, where two copies with different times are two rows, so
-- their queries keep the copy with the highest ingest_seq. Rows stored before this column existed have 0, and the
-- next migration copies only their latest version.
ALTER TABLE events ADD COLUMN ingest_seq UInt64 DEFAULT 0;
