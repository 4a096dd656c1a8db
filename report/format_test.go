package report

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestFormatWritesEachKindAndNull(t *testing.T) {
	for _, tc := range []struct {
		k    kind
		v    *float64
		want string
	}{
		{ratio, f(0.739), "73.9%"},
		{ratio, f(0), "0.0%"},
		{ratio, f(1), "100.0%"},
		{ratio, nil, "–"},
		{ratio, f(math.NaN()), "–"},
		{growth, f(1.626), "+162.6%"},
		{growth, f(-0.25), "-25.0%"},
		{growth, nil, "–"},
		{count, f(13), "13"},
		{count, f(0), "0"},
	} {
		if got := format(tc.k, tc.v); got != tc.want {
			t.Errorf("format(%d, %v) = %q, want %q", tc.k, tc.v, got, tc.want)
		}
	}
}

func TestAmountGroupsThousands(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 999: "999", 1000: "1,000", 123400: "123,400", 1234567.6: "1,234,568",
		-4800: "-4,800"} {
		if got := amount(v); got != want {
			t.Errorf("amount(%v) = %q, want %q", v, got, want)
		}
	}
}

func TestLengthUsesTheLargestExactUnit(t *testing.T) {
	for d, want := range map[time.Duration]string{30 * 24 * time.Hour: "30 days", 24 * time.Hour: "1 day",
		36 * time.Hour: "36 hours", time.Minute: "1 minute", 5 * time.Minute: "5 minutes", 90 * time.Second: "90 seconds",
		1500 * time.Millisecond: "1.5s"} {
		if got := length(d); got != want {
			t.Errorf("length(%s) = %q, want %q", d, got, want)
		}
	}
}

func months(n int) []time.Time {
	var out []time.Time
	for i := range n {
		out = append(out, time.Date(2026, time.Month(1+i), 1, 0, 0, 0, 0, time.UTC))
	}
	return out
}

// TestSparklineLeavesGapsForMonthsWithoutValue: a month without a value breaks the line, a month alone between
// gaps is a dot, the latest value has a dot of its own, and the accessible name lists every month.
func TestSparklineLeavesGapsForMonthsWithoutValue(t *testing.T) {
	svg := string(sparkline("Takeover rate", months(6), []*float64{f(0.1), f(0.2), nil, f(0.5), nil, f(1)}, ratio,
		scale{0, 1}))
	for _, want := range []string{
		`role="img"`,
		`aria-label="Takeover rate by month. Jan 2026: 10.0%, Feb 2026: 20.0%, Mar 2026: –, Apr 2026: 50.0%, May 2026: –, Jun 2026: 100.0%"`,
		`<polyline points="3.0,24.6 19.4,22.2"/>`,             // Jan–Feb
		`<circle class="point" cx="52.2" cy="15.0" r="1.6"/>`, // Apr, alone
		`<circle class="last" cx="85.0" cy="3.0" r="2.4"/>`,   // Jun, at the top: 100%
	} {
		if !strings.Contains(svg, want) {
			t.Errorf("sparkline lacks %s:\n%s", want, svg)
		}
	}
	if n := strings.Count(svg, `class="point"`); n != 1 {
		t.Errorf("%d lone dots, want 1: the latest value has its own", n)
	}
	if n := strings.Count(svg, "<polyline"); n != 1 {
		t.Errorf("%d polylines, want 1 (the only run of two months or more)", n)
	}
}

func TestSparklineWithoutValuesIsAnEmptyBaseline(t *testing.T) {
	svg := string(sparkline("Rep growth", months(3), []*float64{nil, nil, nil}, growth, scaleFor(growth, nil)))
	if strings.Contains(svg, "<polyline") || strings.Contains(svg, "<circle") {
		t.Errorf("a sparkline without values draws something:\n%s", svg)
	}
	if !strings.Contains(svg, `class="base"`) {
		t.Errorf("no baseline:\n%s", svg)
	}
}

func TestScaleIncludesZeroAndIsFixedForRatios(t *testing.T) {
	for _, tc := range []struct {
		k      kind
		values []*float64
		want   scale
	}{
		{ratio, []*float64{f(0.2), f(0.3)}, scale{0, 1}},
		{count, []*float64{f(3), nil, f(12)}, scale{0, 12}},
		{growth, []*float64{f(-0.5), f(2)}, scale{-0.5, 2}},
		{growth, []*float64{f(0.4)}, scale{0, 0.4}},
		{count, []*float64{f(0)}, scale{0, 1}}, // a flat line still has a range
		{count, nil, scale{0, 1}},
	} {
		if got := scaleFor(tc.k, tc.values); got != tc.want {
			t.Errorf("scaleFor(%d, …) = %+v, want %+v", tc.k, got, tc.want)
		}
	}
}
