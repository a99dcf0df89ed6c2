package exporter

import "github.com/prometheus/client_golang/prometheus"

const namespace = "ipacct"

// netnsLabel names the network namespace a series was read in. It is added
// to every series, last, only by an exporter that reads several namespaces:
// one that reads only its own keeps the labels its users' queries expect.
const netnsLabel = "netns"

// The per-address counters are built without descriptors (addresses.go);
// their label names, in name order, are direction, ip, [netns,] tag.
var (
	ipBytesName    = prometheus.BuildFQName(namespace, "ip", "bytes_total")
	ipBytesHelp    = "Bytes counted by the kernel per address in the sets whose comment carries the tag: out is traffic from the address, in traffic to it."
	ipPacketsName  = prometheus.BuildFQName(namespace, "ip", "packets_total")
	ipPacketsHelp  = "Packets counted by the kernel per address in the sets whose comment carries the tag: out is traffic from the address, in traffic to it."
	addressLabels  = []string{"direction", "ip", "tag"}
	addressLabelsN = []string{"direction", "ip", netnsLabel, "tag"}
)

// descs are the exporter's descriptors, built once per exporter. Label order
// is the order of the values that Collect sends.
type descs struct {
	tagBytes, tagPackets, tagRules, tagInfo, invalidComments *prometheus.Desc
	ipAddresses, ipCapacity                                  *prometheus.Desc
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
			"The tag's description: the first non-empty one of its rules, counters and sets, in ruleset order, else the tag. Always 1.",
			"tag", "description"),
		invalidComments: desc("", "invalid_tag_comments",
			"Rules, counters and sets whose comment opens a tag token that does not parse, or that cannot count (a tagged rule without a counter, a tagged set that is not of addresses); they are not counted.",
			"collector"),
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

// all are the descriptors of the const metrics: every family but the
// per-address counters, which addresses.go builds directly.
func (d *descs) all() []*prometheus.Desc {
	return []*prometheus.Desc{d.tagBytes, d.tagPackets, d.tagRules, d.tagInfo, d.invalidComments,
		d.ipAddresses, d.ipCapacity, d.ipOverflowBytes, d.ipOverflowPackets, d.success, d.duration}
}
