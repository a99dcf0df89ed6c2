package exporter

import "github.com/prometheus/client_golang/prometheus"

const namespace = "ipacct"

// The descriptors, built once. Label order is the order of the values that
// Collect sends.
var (
	tagBytesDesc = prometheus.NewDesc(
		prometheus.BuildFQName(namespace, "tag", "bytes_total"),
		"Bytes counted by the kernel in the netfilter rules and named counters whose comment carries the tag, summed per tag, direction and family.",
		[]string{"tag", "direction", "family"}, nil)
	tagPacketsDesc = prometheus.NewDesc(
		prometheus.BuildFQName(namespace, "tag", "packets_total"),
		"Packets counted by the kernel in the netfilter rules and named counters whose comment carries the tag, summed per tag, direction and family.",
		[]string{"tag", "direction", "family"}, nil)
	tagRulesDesc = prometheus.NewDesc(
		prometheus.BuildFQName(namespace, "tag", "rules"),
		"Number of kernel counters (rules and named counters) summed into the tag's series.",
		[]string{"tag", "direction", "family"}, nil)
	tagInfoDesc = prometheus.NewDesc(
		prometheus.BuildFQName(namespace, "tag", "info"),
		"The tag's description: the first non-empty one in ruleset order. Always 1.",
		[]string{"tag", "description"}, nil)
	invalidCommentsDesc = prometheus.NewDesc(
		prometheus.BuildFQName(namespace, "", "invalid_tag_comments"),
		"Rules whose comment opens a tag token that does not parse, or whose tagged rule has no counter; they are not counted.",
		[]string{"collector"}, nil)
	successDesc = prometheus.NewDesc(
		prometheus.BuildFQName(namespace, "collector", "success"),
		"1 if the collector read its counters in this scrape, 0 if it failed.",
		[]string{"collector"}, nil)
	durationDesc = prometheus.NewDesc(
		prometheus.BuildFQName(namespace, "collector", "duration_seconds"),
		"Time the collector took to read its counters in this scrape.",
		[]string{"collector"}, nil)
)
