#!/bin/sh
# Regenerates the JSON Schemas in this folder, which dashboards_test.go
# validates the dashboards with, from Grafana's own TypeScript types:
#   @grafana/schema (Grafana's dashboard and panel plugin schemas, made from
#   its CUE kinds) and @grafana/grafana-foundation-sdk (the Prometheus
#   query), both Apache-2.0, turned into JSON Schema (draft-07) by
#   ts-json-schema-generator. Interfaces become "additionalProperties":
#   false, so a misspelt or unknown field is an error.
# Needs node and npm; installs into a temporary folder. Bump a version here,
# run it, and review the diff.
set -eu
cd "$(dirname "$0")"
here=$(pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp types.ts tsconfig.json "$tmp/"
cd "$tmp"
npm init -y >/dev/null
npm install --silent --no-audit --no-fund \
	ts-json-schema-generator@2.9.0 typescript@5.9.3 \
	@grafana/schema@13.2.3 @grafana/grafana-foundation-sdk@0.0.21
for pair in \
	GrafanaDashboard:dashboard \
	TimeseriesOptions:timeseries-options \
	TimeseriesFieldConfig:timeseries-fieldconfig \
	StatOptions:stat-options \
	TableOptions:table-options \
	TableFieldConfig:table-fieldconfig \
	PrometheusQuery:prometheus-query; do
	type=${pair%%:*}
	file=${pair#*:}.schema.json
	./node_modules/.bin/ts-json-schema-generator --path types.ts --tsconfig tsconfig.json \
		--type "$type" --no-type-check --out "$here/$file"
	echo "wrote $file"
done
