package exporter

const namespace = "ipacct"

// netnsLabel names the network namespace a series was read in. It is added
// to every series, in its place in name order, only by an exporter that
// reads several namespaces: one that reads only its own keeps the labels
// its users' queries expect.
const netnsLabel = "netns"

// The exporter's families. Their series are written straight into the
// exposition (exposition.go), so label names are listed here in name
// order, as the registry would order them, without netns.
const (
	tagBytesName = namespace + "_tag_bytes_total"
	tagBytesHelp = "Bytes counted by the kernel in the netfilter rules and named counters whose comment carries the tag, summed per tag, direction and table family."

	tagPacketsName = namespace + "_tag_packets_total"
	tagPacketsHelp = "Packets counted by the kernel in the netfilter rules and named counters whose comment carries the tag, summed per tag, direction and table family."

	tagRulesName = namespace + "_tag_rules"
	tagRulesHelp = "Number of kernel counters (rules and named counters) summed into the tag's series."

	tagInfoName = namespace + "_tag_info"
	tagInfoHelp = "The tag's description: the first non-empty one of its rules, counters and sets, in ruleset order, else the tag. Always 1."

	invalidCommentsName = namespace + "_invalid_tag_comments"
	invalidCommentsHelp = "Rules, counters and sets whose comment opens a tag token that does not parse, or that cannot count (a tagged rule without a counter, a tagged set that is not of addresses); they are not counted."

	ipBytesName = namespace + "_ip_bytes_total"
	ipBytesHelp = "Bytes counted by the kernel per address in the sets whose comment carries the tag: out is traffic from the address, in traffic to it."

	ipPacketsName = namespace + "_ip_packets_total"
	ipPacketsHelp = "Packets counted by the kernel per address in the sets whose comment carries the tag: out is traffic from the address, in traffic to it."

	ipAddressesName = namespace + "_ip_addresses"
	ipAddressesHelp = "Addresses now in the tag's sets."

	ipCapacityName = namespace + "_ip_capacity"
	ipCapacityHelp = "Size limit of the tag's sets: when the addresses reach it, new addresses are not counted. Absent for sets without a limit."

	ipOverflowBytesName = namespace + "_ip_overflow_bytes_total"
	ipOverflowBytesHelp = "Bytes of addresses the tag's full sets could not take, so not counted per address (from the set's overflow rule)."

	ipOverflowPacketsName = namespace + "_ip_overflow_packets_total"
	ipOverflowPacketsHelp = "Packets of addresses the tag's full sets could not take, so not counted per address (from the set's overflow rule)."

	successName = namespace + "_collector_success"
	successHelp = "1 if the collector read its counters in this scrape, 0 if it failed."

	durationName = namespace + "_collector_duration_seconds"
	durationHelp = "Time the collector took to read its counters in this scrape."
)

// The families' label names, in name order, without netns (labelNames
// puts it in its place). table_family is the family of the netfilter
// table a tag's counters are in (ip, ip6, inet, …); family is the address
// family (ipv4, ipv6).
var (
	// collectorLabels label success, duration and invalid comments.
	collectorLabels = []string{"collector"}
	// tagLabels label the tag series.
	tagLabels = []string{"direction", "table_family", "tag"}
	// infoLabels label ipacct_tag_info.
	infoLabels = []string{"description", "tag"}
	// setGroupLabels label the sets' gauges and overflow counters.
	setGroupLabels = []string{"direction", "family", "tag"}
	// addressLabels label the per-address counters.
	addressLabels = []string{"direction", "family", "ip", "tag"}
)
