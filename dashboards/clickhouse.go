package dashboards

import (
	"reflect"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
)

// clickhousePlugin is the plugin id of Grafana's ClickHouse data source, provisioned by deploy/grafana.
const clickhousePlugin = "grafana-clickhouse-datasource"

// clickhouseQuery is a raw-SQL query of the ClickHouse data source plugin (v4), which grafana-foundation-sdk has no
// type for. Its JSON is the plugin's CHSqlQuery.
type clickhouseQuery struct {
	RefID      string                `json:"refId"`
	Datasource *common.DataSourceRef `json:"datasource,omitempty"`
	EditorType string                `json:"editorType"` // "sql": the raw SQL editor, not the query builder
	QueryType  string                `json:"queryType"`  // "table" or "timeseries"
	Format     int                   `json:"format"`     // the plugin's Format enum: 1 is a table, 0 a time series
	RawSQL     string                `json:"rawSql"`
}

var _ variants.Dataquery = clickhouseQuery{}

func (clickhouseQuery) ImplementsDataqueryVariant() {}
func (clickhouseQuery) DataqueryType() string       { return clickhousePlugin }
func (clickhouseQuery) Validate() error             { return nil }

func (q clickhouseQuery) Equals(other variants.Dataquery) bool {
	o, ok := other.(clickhouseQuery)
	return ok && reflect.DeepEqual(q, o)
}

// clickhouseTable is a builder of a table query in raw SQL on the dashboard's ClickHouse data source variable.
type clickhouseTable struct{ q clickhouseQuery }

var _ cog.Builder[variants.Dataquery] = clickhouseTable{}

func newClickhouseTable(refID, sql string) clickhouseTable {
	ds := clickhouseRef
	return clickhouseTable{clickhouseQuery{RefID: refID, Datasource: &ds, EditorType: "sql", QueryType: "table", Format: 1,
		RawSQL: sql}}
}

func (b clickhouseTable) Build() (variants.Dataquery, error) { return b.q, nil }

// clickhouseTimeSeries is a builder of a time-series query in raw SQL on the dashboard's ClickHouse data source
// variable. The plugin wants the time column first, named time, in ascending order; every string column after it
// is a label and every numeric column a value, so one query gives one series per value column and label set (the
// plugin's backend turns such a "long" result into "wide" series, which fails unless time ascends).
type clickhouseTimeSeries struct{ q clickhouseQuery }

var _ cog.Builder[variants.Dataquery] = clickhouseTimeSeries{}

func newClickhouseTimeSeries(refID, sql string) clickhouseTimeSeries {
	ds := clickhouseRef
	return clickhouseTimeSeries{clickhouseQuery{RefID: refID, Datasource: &ds, EditorType: "sql", QueryType: "timeseries",
		Format: 0, RawSQL: sql}}
}

func (b clickhouseTimeSeries) Build() (variants.Dataquery, error) { return b.q, nil }
