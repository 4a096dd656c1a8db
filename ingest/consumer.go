package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/segmentio/kafka-go"
)

// The consumer is kafka-go's ConsumerGroup (joining, heartbeats, assignments, commits) and one connection per
// assigned partition, read batch by batch. kafka-go's Reader does the same underneath, but hands its messages over
// one at a time through a channel, with a deadline, a clock reading and statistics per message: for a backlog that
// cost more CPU than decoding (2.6 s per million messages against 0.9 s read this way, measured side by side).
//
// One generation of the group is read by one worker: when the group rebalances, the worker stops, and what it had
// not committed is read again by whoever is assigned the partition next.

// readBatchTimeout bounds how long the rest of a fetched batch may take to arrive once it started, reset after each
// run handed to the pipeline (kafka-go's Reader uses the same 10s, reset after each message).
const readBatchTimeout = 10 * time.Second

// run is a stretch of one partition's messages in offset order, at most chunkSize of them, from one fetch, or no
// message at all: news of the partition's lag only.
type run struct {
	topic     string
	partition int
	msgs      []kafka.Message
	// lagging: the broker had more of the partition than this run ends with, when it was fetched. A partition's
	// first run is an empty one that says it is lagging; an empty run that says it is not comes when a fetch found
	// nothing more.
	lagging bool
}

// consumer reads one consumer group's partitions for a worker.
type consumer struct {
	cfg    Config
	dialer *kafka.Dialer
	log    *slog.Logger
}

func (c *consumer) groupConfig() kafka.ConsumerGroupConfig {
	return kafka.ConsumerGroupConfig{
		ID:                    c.cfg.GroupID,
		Brokers:               c.cfg.Brokers,
		Dialer:                c.dialer,
		Topics:                c.cfg.topicNames(),
		WatchPartitionChanges: true,
		StartOffset:           kafka.FirstOffset,
		// The first join on a fresh cluster fails while the broker creates __consumer_offsets; kafka-go would
		// then idle 5s.
		JoinGroupBackoff: time.Second,
		// Group timeouts: see Config.SessionTimeout and Config.RebalanceTimeout.
		SessionTimeout:    c.cfg.SessionTimeout,
		RebalanceTimeout:  c.cfg.RebalanceTimeout,
		HeartbeatInterval: c.cfg.heartbeatInterval(),
		ErrorLogger: kafka.LoggerFunc(func(msg string, args ...any) {
			c.log.Warn(fmt.Sprintf(msg, args...), "source", "kafka-go consumer group")
		}),
	}
}

// generation is the input of one worker: the partitions one generation of the group assigned to it.
type generation struct {
	c   *consumer
	gen *kafka.Generation
}

// read starts reading every assigned partition: each sends its messages to out in runs, in offset order, until the
// generation ends. They outlive the worker that stops first (leaving the group, or at a rebalance): the generation
// ends as soon as one of its functions returns, and the worker's last commit still needs it.
func (g generation) read(out chan<- run) {
	for topic, partitions := range g.gen.Assignments {
		for _, p := range partitions {
			g.gen.Start(func(ctx context.Context) {
				r := partitionReader{c: g.c, topic: topic, partition: p.ID, offset: p.Offset, out: out}
				r.read(ctx)
			})
		}
	}
}

// CommitMessages commits, per partition, the offset after the given message: what the group starts from next.
func (g generation) CommitMessages(ctx context.Context, msgs ...kafka.Message) error {
	offsets := make(map[string]map[int]int64)
	for _, m := range msgs {
		if offsets[m.Topic] == nil {
			offsets[m.Topic] = make(map[int]int64)
		}
		offsets[m.Topic][m.Partition] = max(offsets[m.Topic][m.Partition], m.Offset+1)
	}
	done := make(chan error, 1)
	go func() { done <- g.gen.CommitOffsets(offsets) }() // bounded by the group's network timeout, not by ctx
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// partitionReader reads one assigned partition for a worker.
type partitionReader struct {
	c         *consumer
	topic     string
	partition int
	offset    int64 // the next to read: an absolute offset, or kafka.FirstOffset when the group has none committed
	lagging   bool  // what the last run sent said
	out       chan<- run
}

// read reads the partition until ctx ends. Every failure is logged and retried on a new connection, with backoff,
// as kafka-go's Reader does: a moved leader, a restarted broker, a dropped connection.
func (r *partitionReader) read(ctx context.Context) {
	if !r.send(ctx, nil, true) {
		return
	}
	for attempt := 0; ; attempt++ {
		if attempt > 0 && !sleep(ctx, backoff(attempt)) {
			return
		}
		conn, err := r.c.dialLeader(ctx, r.topic, r.partition)
		if err == nil {
			// A fetch waits on the socket, not on ctx: end the wait when ctx ends, so that a rebalance or a stop
			// need not wait for the broker to answer.
			stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
			if r.offset, err = seek(conn, r.offset); err == nil {
				var progressed bool
				progressed, err = r.readFrom(ctx, conn)
				if progressed {
					attempt = 0
				}
			}
			stop()
			conn.Close()
		}
		if ctx.Err() != nil {
			return
		}
		level := slog.LevelWarn
		if attempt < 2 && retriable(err) { // a leader moving or a broker restarting takes a moment
			level = slog.LevelDebug
		}
		r.c.log.Log(ctx, level, "reading a partition failed; retrying", "topic", r.topic, "partition", r.partition,
			"offset", r.offset, "attempt", attempt+1, "err", err)
	}
}

// send hands a run to the pipeline; false when ctx ended first.
func (r *partitionReader) send(ctx context.Context, msgs []kafka.Message, lagging bool) bool {
	select {
	case r.out <- run{topic: r.topic, partition: r.partition, msgs: msgs, lagging: lagging}:
		r.lagging = lagging
		if len(msgs) > 0 {
			r.offset = msgs[len(msgs)-1].Offset + 1
		}
		return true
	case <-ctx.Done():
		return false
	}
}

func (c *consumer) dialLeader(ctx context.Context, topic string, partition int) (*kafka.Conn, error) {
	var errs []error
	for _, addr := range c.cfg.Brokers {
		conn, err := c.dialer.DialLeader(ctx, "tcp", addr, topic, partition)
		if err == nil {
			return conn, nil
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("connect to the leader of partition %d of %s: %w", partition, topic, errors.Join(errs...))
}

// seek positions conn at offset: the first offset the partition still has when offset is kafka.FirstOffset or
// before it (removed by retention meanwhile), as kafka-go's Reader does.
func seek(conn *kafka.Conn, offset int64) (int64, error) {
	first, last, err := conn.ReadOffsets()
	if err != nil {
		return offset, fmt.Errorf("read the partition's offsets: %w", err)
	}
	switch {
	case offset < first: // kafka.FirstOffset, or removed by retention
		offset = first
	case offset > last:
		return offset, fmt.Errorf("offset %d is past the partition's end %d: %w", offset, last, kafka.OffsetOutOfRange)
	}
	if _, err := conn.Seek(offset, kafka.SeekAbsolute|kafka.SeekDontCheck); err != nil {
		return offset, err
	}
	return offset, nil
}

// readFrom fetches batch after batch from conn and sends their messages on in runs. It returns the error that
// ended it; progressed reports whether a message was read.
func (r *partitionReader) readFrom(ctx context.Context, conn *kafka.Conn) (progressed bool, err error) {
	maxBytes := 2 * max(r.c.cfg.MaxMessageBytes, DefaultMaxMessageBytes)
	send := func(msgs []kafka.Message, lagging bool) bool {
		if !r.send(ctx, msgs, lagging) {
			return false
		}
		progressed = true
		// The rest of the batch waited in the socket meanwhile: give it a fresh timeout.
		conn.SetReadDeadline(time.Now().Add(readBatchTimeout))
		return true
	}
	for {
		conn.SetReadDeadline(time.Now().Add(fetchMaxWait))
		b := conn.ReadBatchWith(kafka.ReadBatchConfig{
			MinBytes: 1,
			// At least one whole message of the allowed size per fetch; brokers still return a larger first record
			// batch (KIP-74), which is then dead-lettered as oversized.
			MaxBytes:       maxBytes,
			IsolationLevel: kafka.ReadCommitted,
		})
		hwm := b.HighWaterMark()
		conn.SetReadDeadline(time.Now().Add(readBatchTimeout))
		msgs := make([]kafka.Message, 0, chunkSize)
		for {
			m, err := b.ReadMessage()
			if err != nil {
				break
			}
			if msgs = append(msgs, m); len(msgs) == chunkSize {
				if !send(msgs, m.Offset+1 < hwm) {
					b.Close()
					return progressed, ctx.Err()
				}
				msgs = make([]kafka.Message, 0, chunkSize)
			}
		}
		err := b.Close()
		if len(msgs) > 0 && !send(msgs, msgs[len(msgs)-1].Offset+1 < hwm) {
			return progressed, ctx.Err()
		}
		switch {
		case err == nil, errors.Is(err, io.EOF), errors.Is(err, kafka.RequestTimedOut):
			// The end of a fetch, or an idle partition: fetch again. One that found nothing more says so once.
			if len(msgs) == 0 && r.lagging && r.offset >= hwm && !r.send(ctx, nil, false) {
				return progressed, ctx.Err()
			}
		default:
			return progressed, err
		}
		if ctx.Err() != nil {
			return progressed, ctx.Err()
		}
	}
}

// retriable reports whether err is one that a new connection usually cures at once.
func retriable(err error) bool {
	return errors.Is(err, kafka.NotLeaderForPartition) || errors.Is(err, kafka.UnknownTopicOrPartition) ||
		errors.Is(err, kafka.LeaderNotAvailable) || errors.Is(err, io.ErrNoProgress) || errors.Is(err, io.ErrUnexpectedEOF)
}
