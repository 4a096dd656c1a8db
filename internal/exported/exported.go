// Package exported lists the Prometheus metrics leadthrough really exports, read from the collectors themselves
// (leadthrough serve's refresher and monthly refresh, and the ingest worker), so that alert rules and dashboards are
// checked against the code rather than against a copy of the names. Tests only.
package exported

import (
	"context"
	"regexp"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/leadthrough/leadthrough/indicator"
	"github.com/leadthrough/leadthrough/ingest"
	"github.com/leadthrough/leadthrough/metrics"
)

// Metric is one exported metric family.
type Metric struct {
	Name      string
	Histogram bool
}

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

// Metrics returns every metric family leadthrough's own collectors describe, sorted by name.
func Metrics() ([]Metric, error) {
	reg := prometheus.NewPedanticRegistry()
	ingestMetrics := ingest.NewMetrics(reg)
	refresher, err := metrics.NewRefresher(metrics.RefresherConfig{Source: metrics.SourceFunc(
		func(context.Context, indicator.Params) ([]indicator.Row, error) { return nil, nil })}, reg)
	if err != nil {
		return nil, err
	}
	monthly, err := metrics.NewMonthly(metrics.MonthlyConfig{Store: noMonths{}}, reg)
	if err != nil {
		return nil, err
	}
	histograms := map[string]bool{}
	if mfs, err := reg.Gather(); err == nil {
		for _, mf := range mfs {
			if mf.GetType().String() == "HISTOGRAM" {
				histograms[mf.GetName()] = true
			}
		}
	}
	var out []Metric
	for _, c := range []prometheus.Collector{ingestMetrics, refresher, monthly} {
		ch := make(chan *prometheus.Desc)
		go func() { c.Describe(ch); close(ch) }()
		for d := range ch {
			if m := fqName.FindStringSubmatch(d.String()); m != nil {
				out = append(out, Metric{Name: m[1], Histogram: histograms[m[1]]})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// noMonths is a metrics.MonthlyStore that is never called: Metrics only describes.
type noMonths struct{}

func (noMonths) MonthlyIndicators(context.Context, time.Time, time.Time, []string) ([]indicator.PeriodRow, error) {
	return nil, nil
}

func (noMonths) SaveMonthly(context.Context, []indicator.PeriodRow) error { return nil }

// Names returns the names of Metrics.
func Names() ([]string, error) {
	ms, err := Metrics()
	if err != nil {
		return nil, err
	}
	names := make([]string, len(ms))
	for i, m := range ms {
		names[i] = m.Name
	}
	return names, nil
}
