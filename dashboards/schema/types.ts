// The Grafana types that dashboards_test.go checks the dashboards against,
// as JSON Schemas made by generate.sh. Each exported name is one schema.
import type * as dashboard from '@grafana/schema/dist/types/raw/dashboard/x/types.gen';
import type * as timeseries from '@grafana/schema/dist/types/raw/composable/timeseries/panelcfg/x/types.gen';
import type * as stat from '@grafana/schema/dist/types/raw/composable/stat/panelcfg/x/types.gen';
import type * as table from '@grafana/schema/dist/types/raw/composable/table/panelcfg/x/types.gen';
import type * as prometheus from '@grafana/grafana-foundation-sdk/dist/prometheus/types.gen';

// The dashboard JSON model, its panels, variables and field config.
export type GrafanaDashboard = dashboard.Dashboard;
// A panel's options and fieldConfig.defaults.custom, per panel plugin.
export type TimeseriesOptions = timeseries.Options;
export type TimeseriesFieldConfig = timeseries.FieldConfig;
export type StatOptions = stat.Options;
export type TableOptions = table.Options;
export type TableFieldConfig = table.FieldConfig;
// A panel target of the Prometheus data source. The method is the SDK's
// marker, not a JSON field.
export type PrometheusQuery = Omit<prometheus.Dataquery, '_implementsDataqueryVariant'>;
