package exporter

import "github.com/prometheus/client_golang/prometheus"

const namespace = "ipacct"

// netnsLabel names the network namespace a series was read in. It is added
// to every series, last, only by an exporter that reads several namespaces:
// one that reads only its own keeps the labels its users' queries expect.
const netnsLabel = "netns"

// descs are the exporter's descriptors, built once per exporter. Label order
// is the order of the values that Collect sends.
type descs struct {
	tagBytes, tagPackets, tagRules, tagInfo, invalidComments *prometheus.Desc
	ipBytes, ipPackets, ipAddresses, ipCapacity              *prometheus.Desc
	ipOverflowBytes, ipOverflowPackets                       *prometheus.Desc
	success, duration                                        *prometheus.Desc
}

func newDescs(withNetNS bool) *descs {
	desc := func(subsystem, name, help string, labels ...string) *prometheus.Desc {
		if withNetNS {
			labels = append(labels, netnsLabel)
		}
		return prometheus.NewDesc(prometheus.BuildFQName(namespace, subsystem, name), help, labels, nil)
	}
	return &descs{
		tagBytes: desc("tag", "bytes_total",
			"Bytes counted by the kernel in the netfilter rules and named counters whose comment carries the tag, summed per tag, direction and family.",
			"tag", "direction", "family"),
		tagPackets: desc("tag", "packets_total",
			"Packets counted by the kernel in the netfilter rules and named counters whose comment carries the tag, summed per tag, direction and family.",
			"tag", "direction", "family"),
		tagRules: desc("tag", "rules",
			"Number of kernel counters (rules and named counters) summed into the tag's series.",
			"tag", "direction", "family"),
		tagInfo: desc("tag", "info",
			"The tag's description: the first non-empty one of its rules, counters and sets, in ruleset order. Always 1.",
			"tag", "description"),
		invalidComments: desc("", "invalid_tag_comments",
			"Rules, counters and sets whose comment opens a tag token that does not parse, or that cannot count (a tagged rule without a counter, a tagged set that is not of addresses); they are not counted.",
			"collector"),
		ipBytes: desc("ip", "bytes_total",
			"Bytes counted by the kernel per address in the sets whose comment carries the tag: out is traffic from the address, in traffic to it.",
			"tag", "ip", "direction"),
		ipPackets: desc("ip", "packets_total",
			"Packets counted by the kernel per address in the sets whose comment carries the tag: out is traffic from the address, in traffic to it.",
			"tag", "ip", "direction"),
		ipAddresses: desc("ip", "addresses",
			"Addresses now in the tag's sets.",
			"tag", "family", "direction"),
		ipCapacity: desc("ip", "capacity",
			"Size limit of the tag's sets: when the addresses reach it, new addresses are not counted. Absent for sets without a limit.",
			"tag", "family", "direction"),
		ipOverflowBytes: desc("ip", "overflow_bytes_total",
			"Bytes of addresses the tag's full sets could not take, so not counted per address (from the set's overflow rule).",
			"tag", "family", "direction"),
		ipOverflowPackets: desc("ip", "overflow_packets_total",
			"Packets of addresses the tag's full sets could not take, so not counted per address (from the set's overflow rule).",
			"tag", "family", "direction"),
		success: desc("collector", "success",
			"1 if the collector read its counters in this scrape, 0 if it failed.",
			"collector"),
		duration: desc("collector", "duration_seconds",
			"Time the collector took to read its counters in this scrape.",
			"collector"),
	}
}

func (d *descs) all() []*prometheus.Desc {
	return []*prometheus.Desc{d.tagBytes, d.tagPackets, d.tagRules, d.tagInfo, d.invalidComments,
		d.ipBytes, d.ipPackets, d.ipAddresses, d.ipCapacity, d.ipOverflowBytes, d.ipOverflowPackets, d.success, d.duration}
}
