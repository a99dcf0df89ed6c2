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
		"The tag's description: the first non-empty one of its rules, counters and sets, in ruleset order. Always 1.",
		[]string{"tag", "description"}, nil)
	invalidCommentsDesc = prometheus.NewDesc(
		prometheus.BuildFQName(namespace, "", "invalid_tag_comments"),
		"Rules, counters and sets whose comment opens a tag token that does not parse, or that cannot count (a tagged rule without a counter, a tagged set that is not of addresses); they are not counted.",
		[]string{"collector"}, nil)
	ipBytesDesc = prometheus.NewDesc(
		prometheus.BuildFQName(namespace, "ip", "bytes_total"),
		"Bytes counted by the kernel per address in the sets whose comment carries the tag: out is traffic from the address, in traffic to it.",
		[]string{"tag", "ip", "direction"}, nil)
	ipPacketsDesc = prometheus.NewDesc(
		prometheus.BuildFQName(namespace, "ip", "packets_total"),
		"Packets counted by the kernel per address in the sets whose comment carries the tag: out is traffic from the address, in traffic to it.",
		[]string{"tag", "ip", "direction"}, nil)
	ipAddressesDesc = prometheus.NewDesc(
		prometheus.BuildFQName(namespace, "ip", "addresses"),
		"Addresses now in the tag's sets.",
		[]string{"tag", "family", "direction"}, nil)
	ipCapacityDesc = prometheus.NewDesc(
		prometheus.BuildFQName(namespace, "ip", "capacity"),
		"Size limit of the tag's sets: when the addresses reach it, new addresses are not counted. Absent for sets without a limit.",
		[]string{"tag", "family", "direction"}, nil)
	ipOverflowBytesDesc = prometheus.NewDesc(
		prometheus.BuildFQName(namespace, "ip", "overflow_bytes_total"),
		"Bytes of addresses the tag's full sets could not take, so not counted per address (from the set's overflow rule).",
		[]string{"tag", "family", "direction"}, nil)
	ipOverflowPacketsDesc = prometheus.NewDesc(
		prometheus.BuildFQName(namespace, "ip", "overflow_packets_total"),
		"Packets of addresses the tag's full sets could not take, so not counted per address (from the set's overflow rule).",
		[]string{"tag", "family", "direction"}, nil)
	successDesc = prometheus.NewDesc(
		prometheus.BuildFQName(namespace, "collector", "success"),
		"1 if the collector read its counters in this scrape, 0 if it failed.",
		[]string{"collector"}, nil)
	durationDesc = prometheus.NewDesc(
		prometheus.BuildFQName(namespace, "collector", "duration_seconds"),
		"Time the collector took to read its counters in this scrape.",
		[]string{"collector"}, nil)
)
