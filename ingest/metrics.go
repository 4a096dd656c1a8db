package ingest

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the worker's Prometheus metrics; Metrics is itself a prometheus.Collector of all of them. Labels are bounded: topics come from the configuration, types from
// the event contract, reasons from event.Reason; nothing per deal or per rep.
type Metrics struct {
	messages              *prometheus.CounterVec
	events                *prometheus.CounterVec
	deadLetters           *prometheus.CounterVec
	batches               prometheus.Counter
	writeErrors           prometheus.Counter
	deadLetterWriteErrors prometheus.Counter
	commitErrors          prometheus.Counter
	rereads               prometheus.Counter
	batchWriteDuration    prometheus.Histogram
	lastCommit            prometheus.Gauge
	batchBytes            prometheus.Histogram
	stageSecondsVec       *prometheus.CounterVec
	stageSeconds          struct{ fetch, decode, deadLetter, write, commit prometheus.Counter }
	backpressureSeconds   prometheus.Counter
}

// NewMetrics creates the worker's metrics and registers them on reg; a nil reg keeps them unregistered. It panics
// if they are already registered on reg, like prometheus.MustRegister. One Metrics may be shared by several
// workers of one process.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "leadthrough_ingest_messages_total",
			Help: "Kafka messages consumed, by topic, including redeliveries and messages that were dead-lettered.",
		}, []string{"topic"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "leadthrough_ingest_events_total",
			Help: "Canonical events written to the sink, by event type. Redelivered events count again.",
		}, []string{"type"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "leadthrough_ingest_dead_letters_total",
			Help: "Messages written to a dead-letter topic, by original topic and rejection reason.",
		}, []string{"topic", "reason"}),
		batches: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "leadthrough_ingest_batches_total",
			Help: "Batches of events written to the sink successfully.",
		}),
		writeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "leadthrough_ingest_write_errors_total",
			Help: "Failed sink writes; nothing is committed past a failure. A batch written on its own is retried as it is; " +
				"a failed insert of streamed batches is read again from Kafka (leadthrough_ingest_rereads_total).",
		}),
		deadLetterWriteErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "leadthrough_ingest_dead_letter_write_errors_total",
			Help: "Failed dead-letter topic writes; each failure is retried and nothing is committed past it.",
		}),
		commitErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "leadthrough_ingest_commit_errors_total",
			Help: "Failed offset commits after a successful write; retried, the batch may be redelivered.",
		}),
		rereads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "leadthrough_ingest_rereads_total",
			Help: "Times the worker left its consumer group and read everything uncommitted again, after an insert " +
				"of streamed batches failed.",
		}),
		batchWriteDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "leadthrough_ingest_batch_write_duration_seconds",
			Help:    "Duration of each sink write attempt, successful or not.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14), // 5ms … 41s
		}),
		lastCommit: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "leadthrough_ingest_last_commit_timestamp_seconds",
			Help: "Unix time of the last successful offset commit.",
		}),
		batchBytes: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "leadthrough_ingest_batch_bytes",
			Help:    "Size of each batch handed to the sink, in bytes of Kafka message values (see --batch-bytes).",
			Buckets: prometheus.ExponentialBuckets(1024, 4, 10), // 1 KiB … 256 MiB
		}),
		stageSecondsVec: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "leadthrough_ingest_stage_seconds_total",
			Help: "Time spent in each pipeline stage: fetch (waiting for Kafka), decode (decoding and validating, " +
				"summed over the decoding goroutines), dead_letter, write (the sink, including retries) and commit. " +
				"rate() of it is how busy each stage is.",
		}, []string{"stage"}),
		backpressureSeconds: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "leadthrough_ingest_backpressure_seconds_total",
			Help: "Time the input stage waited for the pipeline to take a run of fetched messages: when it grows at " +
				"about 1 s/s, the sink (or decoding) is the bottleneck, not Kafka.",
		}),
	}
	m.stageSeconds.fetch = m.stageSecondsVec.WithLabelValues("fetch")
	m.stageSeconds.decode = m.stageSecondsVec.WithLabelValues("decode")
	m.stageSeconds.deadLetter = m.stageSecondsVec.WithLabelValues("dead_letter")
	m.stageSeconds.write = m.stageSecondsVec.WithLabelValues("write")
	m.stageSeconds.commit = m.stageSecondsVec.WithLabelValues("commit")
	if reg != nil {
		reg.MustRegister(m)
	}
	return m
}

func (m *Metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.messages, m.events, m.deadLetters, m.batches, m.writeErrors,
		m.deadLetterWriteErrors, m.commitErrors, m.rereads, m.batchWriteDuration, m.lastCommit, m.batchBytes, m.stageSecondsVec,
		m.backpressureSeconds}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.collectors() {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.collectors() {
		c.Collect(ch)
	}
}

// StageSeconds is the counter of seconds spent in one stage of leadthrough_ingest_stage_seconds_total (fetch,
// decode, dead_letter, write or commit), for tests and for programs that embed the worker.
func (m *Metrics) StageSeconds(stage string) prometheus.Counter {
	return m.stageSecondsVec.WithLabelValues(stage)
}
