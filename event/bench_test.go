package event

import (
	"encoding/json"
	"testing"
	"time"
)

// BenchmarkDecode measures strict decoding against a baseline measured in the same run: json.Unmarshal of the same
// message into a generic map, which validates nothing. The reported x_baseline is Decode's time per message over the
// baseline's.
func BenchmarkDecode(b *testing.B) {
	msg := []byte(valid)
	baseline := perOp(func() {
		{
			var m map[string]any
			if err := json.Unmarshal(msg, &m); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := Decode(msg); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(baseline.Nanoseconds()), "x_baseline")
}

// perOp times f over enough runs to take about 200ms and returns the mean duration of one run. Benchmarks use it for
// a baseline measured in the same run (testing.Benchmark cannot be nested in a benchmark).
func perOp(f func()) time.Duration {
	n, start := 0, time.Now()
	for time.Since(start) < 200*time.Millisecond || n < 3 {
		f()
		n++
	}
	return time.Since(start) / time.Duration(n)
}

// BenchmarkDecodeStd is the encoding/json decoder Decode replaced (decodeStd), on the same message, for the record
// in docs/benchmarks.md.
func BenchmarkDecodeStd(b *testing.B) {
	msg := []byte(valid)
	b.ReportAllocs()
	for range b.N {
		if _, err := decodeStd(msg); err != nil {
			b.Fatal(err)
		}
	}
}
