package report

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"strings"
	"time"
)

// The size of a sparkline in CSS pixels, and the margin kept free around its line.
const (
	sparkWidth  = 88
	sparkHeight = 30
	sparkMargin = 3
)

// scale is the range of values a sparkline spans from its bottom to its top.
type scale struct{ lo, hi float64 }

// scaleFor is the range of an indicator's sparklines, the same for every manager so that lines compare: ratios
// from 0 to 100%, counts from 0 to their largest value, growth from its lowest to its highest value, 0 always
// included.
func scaleFor(k kind, values []*float64) scale {
	if k == ratio {
		return scale{0, 1}
	}
	s := scale{0, 0}
	for _, v := range values {
		if v != nil && !math.IsNaN(*v) && !math.IsInf(*v, 0) {
			s.lo, s.hi = math.Min(s.lo, *v), math.Max(s.hi, *v)
		}
	}
	if s.hi-s.lo < 1e-9 {
		s.hi = s.lo + 1
	}
	return s
}

// sparkline draws one manager's monthly values of an indicator as an inline SVG: a line through the months that
// have a value (a month without one leaves a gap), a dot on the latest value, and a baseline at 0. Its accessible
// name and tooltip list every month's value, so the picture hides nothing from a screen reader.
func sparkline(label string, months []time.Time, values []*float64, k kind, s scale) template.HTML {
	n := len(values)
	x := func(i int) float64 {
		if n < 2 {
			return sparkWidth / 2
		}
		return sparkMargin + float64(i)*(sparkWidth-2*sparkMargin)/float64(n-1)
	}
	y := func(v float64) float64 {
		f := math.Max(0, math.Min(1, (v-s.lo)/(s.hi-s.lo)))
		return sparkHeight - sparkMargin - f*(sparkHeight-2*sparkMargin)
	}

	desc := make([]string, n)
	for i, v := range values {
		desc[i] = monthLabel(months[i]) + ": " + format(k, v)
	}
	name := html.EscapeString(label + " by month. " + strings.Join(desc, ", "))

	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="spark" role="img" aria-label="%s" viewBox="0 0 %d %d" width="%d" height="%d">`,
		name, sparkWidth, sparkHeight, sparkWidth, sparkHeight)
	fmt.Fprintf(&b, `<title>%s</title>`, name)
	fmt.Fprintf(&b, `<line class="base" x1="0" x2="%d" y1="%.1f" y2="%.1f"/>`, sparkWidth, y(0), y(0))

	var seg []string // the points of the line being drawn
	flush := func() {
		if len(seg) > 1 {
			fmt.Fprintf(&b, `<polyline points="%s"/>`, strings.Join(seg, " "))
		}
		seg = seg[:0]
	}
	has := func(i int) bool { return i >= 0 && i < n && values[i] != nil && !math.IsNaN(*values[i]) }
	last := -1
	for i := range values {
		if has(i) {
			last = i
		}
	}
	for i, v := range values {
		if !has(i) {
			flush()
			continue
		}
		if !has(i-1) && !has(i+1) && i != last { // a month between two gaps has no line to be on: a dot shows it
			fmt.Fprintf(&b, `<circle class="point" cx="%.1f" cy="%.1f" r="1.6"/>`, x(i), y(*v))
		}
		seg = append(seg, fmt.Sprintf("%.1f,%.1f", x(i), y(*v)))
	}
	flush()
	if last >= 0 {
		fmt.Fprintf(&b, `<circle class="last" cx="%.1f" cy="%.1f" r="2.4"/>`, x(last), y(*values[last]))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // numbers and escaped text only
}
