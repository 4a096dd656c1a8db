// Package ingest is the worker that moves CRM events from Kafka into storage: a consumer group reads the topics,
// each message is decoded and validated into canonical events, events are written to a Sink in batches, and a
// message's offset is committed only after its events were written (the Sink deduplicates by (source, id)). Bad
// input is data, not an error: it goes to the topic's dead-letter topic with the reason and the original
// topic/partition/offset in headers, is counted, and never stops or blocks a partition.
//
// The stages are seams in the manner of Benthos: the input (a kafka-go consumer group and a connection per
// assigned partition, whose ack is the offset commit), the processor (a Decoder per topic, then event.Validate), and the outputs (the Sink for events,
// a kafka-go writer for dead letters).
//
// Delivery is at least once for events and dead letters alike: a batch that was not committed (a crash, a stop, a
// rebalance: a worker reads one generation of the group, and stops with it) is read again. It must never commit an offset whose events and dead letters are not safely written,
// never skip a batch the Sink rejected, and never log per message. It knows nothing of ClickHouse: the Sink is implemented elsewhere.
package ingest

import (
	"context"

	"github.com/leadthrough/leadthrough/event"
)

// Record is one decoded event with where it came from.
type Record struct {
	Event     event.Event
	Topic     string
	Partition int
	Offset    int64
}

// Sink stores a batch durably. A nil error means the batch is safe and its offsets may be committed. Must be
// idempotent by (source, id): batches can be redelivered.
//
// A failed Write is retried with the very same batch until it succeeds or the worker stops, so an error should
// mean "nothing or only part of it is stored". Write must not modify batch or keep it after returning: the worker
// reuses its memory for the next batch. Write is never called with an empty batch. With Config.Writers above 1,
// Write is called for several batches at once, and they may finish in any order; a sink for which the order of
// batches matters implements PreparingSink.
type Sink interface {
	Write(ctx context.Context, batch []Record) error
}

// PreparingSink is a Sink that builds each batch in its own form while the worker fills it, so that the worker
// holds no batch as Records: the records of a chunk of messages are added and dropped as soon as it is decoded
// (ClickHouse: straight into the insert's columns). Prepare starts a batch; Add is called with consecutive runs of
// its records, in order, from the goroutine that fills batches; Seal is called once the batch is cut, from one
// goroutine in the order batches were cut, and does what must follow that order (ClickHouse: number the rows'
// copies). Sends of sealed batches then run concurrently (Config.Writers). A failed Send is retried on the same
// Prepared until it succeeds or the worker stops. Close releases a Prepared after its last Send, or one that is
// dropped unsent when the worker stops. Add must not keep the records slice (the events' strings it may keep).
type PreparingSink interface {
	Sink
	Prepare() Prepared
}

// Prepared is a batch a PreparingSink builds and sends.
type Prepared interface {
	Add(records []Record)
	Seal()
	Send(ctx context.Context) error
	Close()
}

// StreamingSink is a PreparingSink that can also write many batches as one unit (ClickHouse: one insert of many
// blocks, stored as a few large parts instead of one small part per batch). The worker streams batches into a
// unit while it reads (with Config.Writers 1) and commits their offsets when the unit is closed. A unit that fails
// is not retried from memory: the worker drops everything it has not committed and reads it again from the
// committed offsets, so a unit may be as large as the sink likes without the worker holding it.
type StreamingSink interface {
	PreparingSink
	// OpenStream starts a unit. ok is false when the sink cannot stream at the moment; the worker then writes
	// batch by batch (Prepared.Send).
	OpenStream(ctx context.Context) (st Stream, ok bool, err error)
}

// Stream is one unit of a StreamingSink.
type Stream interface {
	// Write adds a sealed batch to the unit; the worker may close and reuse p once it returns. Nothing written is
	// certain to be stored before Close returns nil.
	Write(p Prepared) error
	// Close ends the unit: nil means every event written to it is stored.
	Close() error
	// Abort gives the unit up; some of it may be stored (the sink deduplicates by (source, id)).
	Abort()
}

// Decoder turns one message value into zero or more canonical events (a vendor payload may fan out), or an error
// (any error is dead-lettered; use event.ReasonOf for the reason label, "decode_error" if none).
//
// The worker validates every returned event with event.Validate, so a decoder that emits an event breaking the
// contract dead-letters its message instead of storing it. Name goes into the leadthrough-decoder header of dead
// letters. Decode is called from several goroutines at once (Config.DecodeWorkers), so it must be safe for
// concurrent use. value is the message's own memory, never reused or modified by the worker: the events may refer
// to it (event.Decode's strings do) instead of copying it.
type Decoder interface {
	Name() string
	Decode(value []byte) ([]event.Event, error)
}

// CloudEvents is the default Decoder: one structured-mode CloudEvents 1.0 JSON event per message (event.Decode).
var CloudEvents Decoder = cloudEvents{}

type cloudEvents struct{}

func (cloudEvents) Name() string { return "cloudevents" }

func (cloudEvents) Decode(value []byte) ([]event.Event, error) {
	ev, err := event.Decode(value)
	if err != nil {
		return nil, err
	}
	return []event.Event{ev}, nil
}

// ReasonDecodeError is the dead-letter reason of a Decoder error that carries no event.Reason.
const ReasonDecodeError event.Reason = "decode_error"

// reasonOf is the bounded label for a rejected message.
func reasonOf(err error) event.Reason {
	if r := event.ReasonOf(err); r != "" {
		return r
	}
	return ReasonDecodeError
}
