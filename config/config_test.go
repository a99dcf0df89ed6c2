package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/ipacct/ipacct_exporter/family"
	"github.com/ipacct/ipacct_exporter/tag"
)

// TestInvalid loads each testdata/invalid-*.yaml, one a failure mode, and
// checks the whole message. Every file there must be listed.
func TestInvalid(t *testing.T) {
	tests := map[string]string{
		"accounting-empty": "2: accounting: no entries",
		"addresses-tag-twice": "4: addresses[0].tag: web is already the tag of the accounting entry at line 2; a tag counts by rules or per address, not both\n" +
			"8: addresses[2].tag: tenants is already the tag of the address entry at line 6",
		"addresses-overlap": "7: addresses[1].networks[1]: 192.168.31.7 overlaps 192.168.31.0/24 of addresses[0].networks[0]; an address is counted by one entry",
		"addresses-size": "4: addresses[0].size: \"100000000\" is not a set size: a number of addresses from 1 to 16777216\n" +
			"7: addresses[1].size: \"many\" is not a set size: a number of addresses from 1 to 16777216",
		"addresses-timeout": "4: addresses[0].timeout: \"30 days\" is not a timeout such as 30m, 12h or 7d\n" +
			"7: addresses[1].timeout: 400d is out of range: from 1s to 365d",
		"addresses-networks": "2: addresses[0].networks: missing; an address entry counts the addresses of its networks\n" +
			"4: addresses[1].networks: empty list; an address entry counts the addresses of its networks\n" +
			"6: addresses[2].networks[0]: 192.168.33.1/24: host bits set, did you mean 192.168.33.0/24?\n" +
			"8: addresses[3].networks: expected a list, got \"192.168.34.0/24\"; write [192.168.34.0/24]",
		"addresses-hooks": "5: addresses[0].hooks: direction out is counted at output or forward, and hooks has neither\n" +
			"8: addresses[1].hooks[0]: \"prerouting\" is not a hook; use input, output or forward",
		"addresses-unknown-key": "2: addresses[0].networks: missing; an address entry counts the addresses of its networks\n" +
			"3: addresses[0].network: unknown key; did you mean networks?",
		"addresses-empty": "1: addresses: no entries",
		"null-list": "3: accounting[0].local: no value; leave local out to match any address\n" +
			"6: accounting[1].ports: no value; leave ports out to count every port\n" +
			"8: accounting[2].remote: no value; leave remote out to match any address\n" +
			"9: accounting[2].remote_except: no value; write a list, or leave the key out\n" +
			"10: accounting[2].hooks: no value; write a list, or leave the key out\n" +
			"13: addresses[0].networks: no value; an address entry counts the addresses of its networks\n" +
			"17: flow.routers[0].input_interfaces: no value; leave input_interfaces out to count flows of any input interface\n" +
			"18: flow.routers[0].output_interfaces: no value; leave output_interfaces out to count flows of any output interface",
		"null-value": "2: table: no value; write one\n" +
			"3: count: no value; write one\n" +
			"5: accounting[0].tag: no value; write one\n" +
			"6: accounting[0].description: no value; write one\n" +
			"7: accounting[0].source: no value; write one\n" +
			"8: accounting[0].direction: no value; write one\n" +
			"9: accounting[0].family: no value; write one\n" +
			"10: accounting[0].interface: no value; write one\n" +
			"11: accounting[0].match: no value; write one\n" +
			"15: addresses[0].direction: no value; write one\n" +
			"16: addresses[0].size: no value; write one\n" +
			"17: addresses[0].timeout: no value; write one\n" +
			"20: flow.routers[0].address: no value; write one",
		"null-section": "1: accounting: no value; write a list, or leave the key out\n" +
			"2: addresses: no value; write a list, or leave the key out\n" +
			"4: flow.routers: no value; write a list, or leave the key out",
		"null-flow":         "1: flow: no value; write routers, or leave flow out",
		"bad-cidr":          "4: accounting[0].local[0]: \"192.0.2.0/33\" is not an IP network such as 192.0.2.0/24\n5: accounting[0].local[1]: \"192.0.2.300\" is not an IP address or network",
		"control-character": "3: the character U+0001 is not allowed in YAML",
		"comment-too-long":  "3: accounting[0].description: with the tag, the rule comment is 129 bytes and nft allows 128: shorten the description to 81 bytes",
		"flow-addresses": "5: addresses[0].hooks: hooks are where the kernel counts, and a flow entry has none; leave hooks out\n" +
			"11: addresses[2].networks[0]: 192.168.31.0/24 overlaps 192.168.31.0/24 of addresses[0].networks[0]; an address is counted by one entry\n" +
			"13: addresses[3].networks[0]: 192.168.31.192/26 overlaps 192.168.31.0/24 of addresses[0].networks[0]; an address is counted by one entry",
		"flow-entry": "3: accounting[0].local: missing; a flow entry needs local to tell traffic in (to it) from traffic out (from it)\n" +
			"5: accounting[0].hooks: hooks are where the kernel counts, and a flow entry has none; leave hooks out\n" +
			"6: accounting[0].interface: flow records name interfaces by index, not by name; filter them per router under flow.routers\n" +
			"7: accounting[0].match: an nft match reads packets in the kernel; a flow entry matches local, remote, protocol and ports only\n" +
			"8: accounting[1].local: missing; a flow entry needs local to tell traffic in (to it) from traffic out (from it)",
		"flow-routers": "4: flow.routers[0].input_interfaces[2]: 2 is listed twice, also as input_interfaces[0]\n" +
			"5: flow.routers[1].address: 192.0.2.254 is listed twice, also as flow.routers[0]\n" +
			"6: flow.routers[1].output_interfaces[0]: \"eth0\" is not an interface index: a number from 0 to 4294967295, as in the router's SNMP ifIndex\n" +
			"7: flow.routers[2].address: \"192.0.2.0/24\" is not an IP address; a router is the source address of its datagrams\n" +
			"8: flow.routers[3].address: missing; a router is the source address of its datagrams\n" +
			"9: flow.routers[4].address: ::ffff:192.0.2.1 is IPv4-mapped; write 192.0.2.1\n" +
			"10: flow.routers[4].outputs: unknown key",
		"flow-routers-empty": "2: flow.routers: no entries; leave routers out to count the flows of any router",
		"flow-not-mapping":   "1: flow: expected a mapping with the key routers, got a list",
		"flow-tag-sources":   "5: accounting[1].tag: web has source kernel at line 2; a tag has one source",
		"source": "3: accounting[0].source: \"netflow\" is not a source; use kernel or flow\n" +
			"6: addresses[0].source: \"sflow\" is not a source; use kernel or flow",
		"forward-no-side":      "3: accounting[0].hooks: at forward, direction both needs local or interface to tell traffic in from traffic out; set one, or set direction",
		"count":                `1: count: "dropped" is not a count; use accepted or all`,
		"description-quote":    `3: accounting[0].description: "The \"web\" traffic" has a '"', which an nft comment cannot hold`,
		"description-too-long": "3: accounting[0].description: 129 bytes long, at most 128 are allowed",
		"direction":            `3: accounting[0].direction: "up" is not a direction; use in, out or both`,
		"duplicate-address":    "3: accounting[0].local[1]: 192.0.2.1 is listed twice, also as local[0]",
		"duplicate-key":        "4: accounting[0].tag: given twice, first at line 2",
		"duplicate-tag":        "8: accounting[2].tag: web4 already counts direction in at line 2 and direction out at line 5",
		"empty":                " no accounting or addresses entries",
		"empty-list":           "3: accounting[0].local: empty list; leave local out to match any address",
		"entry-not-mapping":    `2: accounting[0]: expected a mapping with at least a tag, got "web4"`,
		"families-disjoint": "3: accounting[0].local: only IPv4 addresses, but remote has IPv6 ones, and no IPv6 packet matches local; split the entry by family\n" +
			"4: accounting[0].remote: only IPv6 addresses, but local has IPv4 ones, and no IPv4 packet matches remote; split the entry by family",
		"family":                       `3: accounting[0].family: "inet" is not a family; use ipv4, ipv6 or both`,
		"family-both-one-family":       "4: accounting[0].local: only IPv4 addresses, but family is both; set family: ipv4",
		"family-contradicts-addresses": "4: accounting[0].local[1]: 2001:db8::1 is an IPv6 address, but family is ipv4",
		"hook":                         `3: accounting[0].hooks[1]: "prerouting" is not a hook; use input, output or forward`,
		"hook-twice":                   "3: accounting[0].hooks[1]: input is listed twice, also as hooks[0]",
		"hooks-direction":              "4: accounting[0].hooks: direction in is counted at input or forward, and hooks has neither",
		"hooks-direction-both":         "3: accounting[0].hooks: direction out is counted at output or forward, and hooks has neither; set direction: in",
		"hooks-empty":                  "3: accounting[0].hooks: empty list; leave hooks out for [input, output]",
		"host-bits":                    "3: accounting[0].local[0]: 192.0.2.1/24: host bits set, did you mean 192.0.2.0/24?",
		"icmp-both":                    "3: accounting[0].protocol: icmp is IPv4 only, but the entry counts IPv4 and IPv6; set family: ipv4",
		"icmp-ipv6":                    "4: accounting[0].protocol: icmp is IPv4 only, but the addresses are IPv6",
		"icmpv6-family-ipv4":           "4: accounting[0].protocol: icmpv6 is IPv6 only, but family is ipv4",
		"interface":                    `3: accounting[0].interface: "eth0/1" has the character '/', which an interface name cannot hold`,
		"interface-star":               `3: accounting[0].interface: "*" alone matches every interface; leave interface out`,
		"interface-too-long":           `3: accounting[0].interface: "enp0s31f6-uplink0" is 17 characters long, at most 15 are allowed`,
		"ipv4-mapped":                  "3: accounting[0].local[0]: ::ffff:192.0.2.1 is IPv4-mapped; write 192.0.2.1",
		"mapping-for-list":             "2: accounting: expected a list, got a mapping",
		"match": "3: accounting[0].match: column 10: \"establishd\" is not a ct state; expected one of new, established, related, invalid, untracked (match takes a subset of nft: https://pkg.go.dev/github.com/ipacct/ipacct_exporter/nftmatch)\n" +
			"6: accounting[1].match: matches IPv4 packets only, but family is both\n" +
			"9: accounting[2].match: matches IPv6 packets only, but the addresses are IPv4\n" +
			"11: accounting[3].match: column 11: \"meta mark set\" is a statement; a match only selects packets (match takes a subset of nft: https://pkg.go.dev/github.com/ipacct/ipacct_exporter/nftmatch)",
		"merge-key":              `4: accounting[1]."<<": merge keys are not supported; write the keys out`,
		"not-a-mapping":          "1: expected a mapping with the key accounting, got a list",
		"overlap":                "6: accounting[0].remote[2]: 10.1.0.0/16 overlaps 10.0.0.0/8 at remote[0]",
		"port-not-a-number":      `4: accounting[0].ports[0]: "http" is not a port or a range of ports such as 8000-8080`,
		"port-out-of-range":      "4: accounting[0].ports[1]: 70000 is out of range 1-65535",
		"port-overlap":           "4: accounting[0].ports[2]: 8080 overlaps 8000-8080 at ports[0]",
		"port-range-reversed":    "4: accounting[0].ports[0]: 443-80: the low port is above the high one; did you mean 80-443?",
		"port-zero":              "4: accounting[0].ports[0]: 0 is out of range 1-65535",
		"ports-with-icmp":        "5: accounting[0].ports: ports need protocol tcp or udp; icmp has no ports",
		"ports-without-protocol": "3: accounting[0].ports: ports need protocol tcp or udp",
		"protocol":               `3: accounting[0].protocol: "sctp" is not a protocol; use tcp, udp, icmp, icmpv6 or any`,
		"protocol-any-combined":  "3: accounting[0].protocol[1]: any cannot be combined with other protocols",
		"scalar-for-list":        `3: accounting[0].local: expected a list, got "192.0.2.1"; write [192.0.2.1]`,
		"second-document":        "3: a second YAML document; a rules file holds one",
		"several": "5: accounting[0].local[0]: 192.0.2.1/24: host bits set, did you mean 192.0.2.0/24?\n" +
			`10: accounting[1].direction: "sideways" is not a direction; use in, out or both` + "\n" +
			`11: accounting[2].tag: "mail_out" ends in _out, a direction suffix, which the exporter adds; use direction: out instead` + "\n" +
			"13: accounting[2].local[0]: 192.0.2.25 is an IPv4 address, but family is ipv6\n" +
			"14: unknown: unknown key",
		"syntax":         "3: syntax error: did not find expected ',' or ']'",
		"syntax-indent":  "3: syntax error: did not find expected '-' indicator",
		"table":          `1: table: "my table" is not a table name: 1 to 32 letters, digits, '_' and '-', starting with a letter or '_'`,
		"table-digit":    `1: table: "1st" is not a table name: 1 to 32 letters, digits, '_' and '-', starting with a letter or '_'`,
		"tag-characters": `2: accounting[0].tag: "web 4" has the character ' '; a tag is letters, digits, '_', '.' and '-'`,
		"tag-direction-suffix": `2: accounting[0].tag: "web4_down" ends in _down, a direction suffix, which the exporter adds; use direction: in instead` + "\n" +
			`3: accounting[1].tag: "WEB_Up" ends in _Up, a direction suffix, which the exporter adds; use direction: out instead`,
		"tag-missing":    "2: accounting[0].tag: missing; every entry needs a tag",
		"tag-too-long":   `2: accounting[0].tag: "a123456789b123456789c123456789d123456789e123456789f123456789x" is 61 characters long, at most 60 are allowed (the exporter adds _in or _out)`,
		"too-many-rules": "2: accounting[0]: expands to 1100 rules per direction and hook (11 local × 10 remote × 1 protocols × 10 ports), at most 1000 are allowed; split it",
		"unknown-anchor": "3: syntax error: unknown anchor 'servers' referenced",
		"unknown-key":    "1: tables: unknown key; did you mean table?",
		// The typo first, then what it leaves missing.
		"unknown-key-addresses": "1: adresses: unknown key; did you mean addresses?\n" +
			" no accounting or addresses entries",
		"unknown-nested-key": "4: accounting[0].port: unknown key; did you mean ports?",
	}
	files, err := filepath.Glob("testdata/invalid-*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range files {
		name := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(path), "invalid-"), ".yaml")
		if _, ok := tests[name]; !ok {
			t.Errorf("%s has no expected error", path)
		}
	}
	for name, want := range tests {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join("testdata", "invalid-"+name+".yaml")
			// Each line of want is "LINE: message", or " message" for the
			// file as a whole.
			var lines []string
			for l := range strings.SplitSeq(want, "\n") {
				lines = append(lines, path+":"+l)
			}
			f, err := Load(path)
			if err == nil {
				t.Fatalf("Load(%s) = %+v, want an error", path, f)
			}
			if f != nil {
				t.Errorf("Load(%s) returned a File with its error", path)
			}
			if got, want := err.Error(), strings.Join(lines, "\n"); got != want {
				t.Errorf("Load(%s) error:\n%s\nwant:\n%s", path, got, want)
			}
		})
	}
}

func mustParse(t *testing.T, doc string) *File {
	t.Helper()
	f, err := Parse("test.yaml", []byte(doc))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return f
}

func prefixes(s ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(s))
	for i, v := range s {
		p, err := parsePrefix(v)
		if err != nil {
			panic(err)
		}
		out[i] = p
	}
	return out
}

func TestDefaults(t *testing.T) {
	f := mustParse(t, "accounting:\n  - tag: all\n")
	want := &File{
		Path:  "test.yaml",
		Table: "ipacct",
		Count: "accepted",
		Accounting: []Entry{{
			Tag:       "all",
			Source:    "kernel",
			Direction: "both",
			Family:    "both",
			Hooks:     []Hook{"input", "output"},
			Line:      2,
		}},
	}
	if !reflect.DeepEqual(f, want) {
		t.Errorf("got  %+v\nwant %+v", f, want)
	}
	e := f.Accounting[0]
	if got := e.Directions(); !slices.Equal(got, []tag.Direction{tag.In, tag.Out}) {
		t.Errorf("Directions() = %v", got)
	}
	if got := e.Families(); !slices.Equal(got, family.Addresses) {
		t.Errorf("Families() = %v", got)
	}
}

func TestValid(t *testing.T) {
	f := mustParse(t, `# A comment.
table: acct_2
count: all
accounting:
  - tag: web4
    description: "Web, IPv4"
    direction: in
    hooks: [forward, input]
    local: [192.0.2.1, 192.0.2.128/25]
    remote: [0.0.0.0/0]
    protocol: tcp
    ports: [80, "443", 8000-8080, 1-1]
    interface: eth*
  - tag: web6
    direction: out
    local: [2001:db8::/64]
    remote_except: ["2001:db8:1::/48"]
    protocol: [tcp, udp]
  - tag: web4
    direction: out
    protocol: any
  - tag: mixed
    local: [192.0.2.1, 2001:db8::1]
    protocol: [any]
  - tag: only-except
    remote_except: [10.0.0.0/8]
    protocol: icmp
  - tag: ping6
    family: ipv6
    protocol: [icmpv6]
  - tag: ping
    protocol: [icmp, icmpv6]
  - tag: 2024
`)
	want := []Entry{{
		Tag:         "web4",
		Source:      "kernel",
		Description: "Web, IPv4",
		Direction:   "in",
		Family:      "ipv4",
		Hooks:       []Hook{"forward", "input"},
		Local:       prefixes("192.0.2.1", "192.0.2.128/25"),
		Remote:      prefixes("0.0.0.0/0"),
		Protocol:    []Protocol{"tcp"},
		Ports:       []PortRange{{80, 80}, {443, 443}, {8000, 8080}, {1, 1}},
		Interface:   "eth*",
		Line:        5,
	}, {
		Tag:          "web6",
		Source:       "kernel",
		Direction:    "out",
		Family:       "ipv6",
		Hooks:        []Hook{"input", "output"},
		Local:        prefixes("2001:db8::/64"),
		RemoteExcept: prefixes("2001:db8:1::/48"),
		Protocol:     []Protocol{"tcp", "udp"},
		Line:         14,
	}, {
		Tag:       "web4",
		Source:    "kernel",
		Direction: "out",
		Family:    "both",
		Hooks:     []Hook{"input", "output"},
		Line:      19,
	}, {
		Tag:       "mixed",
		Source:    "kernel",
		Direction: "both",
		Family:    "both",
		Hooks:     []Hook{"input", "output"},
		Local:     prefixes("192.0.2.1", "2001:db8::1"),
		Line:      22,
	}, {
		Tag:          "only-except",
		Source:       "kernel",
		Direction:    "both",
		Family:       "ipv4",
		Hooks:        []Hook{"input", "output"},
		RemoteExcept: prefixes("10.0.0.0/8"),
		Protocol:     []Protocol{"icmp"},
		Line:         25,
	}, {
		Tag:       "ping6",
		Source:    "kernel",
		Direction: "both",
		Family:    "ipv6",
		Hooks:     []Hook{"input", "output"},
		Protocol:  []Protocol{"icmpv6"},
		Line:      28,
	}, {
		// Each ICMP in its family.
		Tag:       "ping",
		Source:    "kernel",
		Direction: "both",
		Family:    "both",
		Hooks:     []Hook{"input", "output"},
		Protocol:  []Protocol{"icmp", "icmpv6"},
		Line:      31,
	}, {
		Tag:       "2024",
		Source:    "kernel",
		Direction: "both",
		Family:    "both",
		Hooks:     []Hook{"input", "output"},
		Line:      33,
	}}
	if f.Table != "acct_2" || f.Count != "all" {
		t.Errorf("table %q, count %q", f.Table, f.Count)
	}
	if len(f.Accounting) != len(want) {
		t.Fatalf("%d entries, want %d", len(f.Accounting), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(f.Accounting[i], want[i]) {
			t.Errorf("entry %d:\ngot  %+v\nwant %+v", i, f.Accounting[i], want[i])
		}
	}
	if got := f.Accounting[0].Directions(); !slices.Equal(got, []tag.Direction{tag.In}) {
		t.Errorf("Directions() = %v", got)
	}
	if got := f.Accounting[1].Directions(); !slices.Equal(got, []tag.Direction{tag.Out}) {
		t.Errorf("Directions() = %v", got)
	}
	if got := f.Accounting[0].Families(); !slices.Equal(got, []family.Address{family.IPv4}) {
		t.Errorf("Families() = %v", got)
	}
	if got := f.Accounting[1].Families(); !slices.Equal(got, []family.Address{family.IPv6}) {
		t.Errorf("Families() = %v", got)
	}
	if got := fmt.Sprint(f.Accounting[0].Ports); got != "[80 443 8000-8080 1]" {
		t.Errorf("ports print as %s", got)
	}
}

// TestAliases: anchors and aliases work, and their expansion is bounded.
func TestAliases(t *testing.T) {
	f := mustParse(t, `accounting:
  - tag: a
    local: &servers [192.0.2.1, 192.0.2.2]
  - tag: b
    remote: *servers
`)
	if got := f.Accounting[1].Remote; !reflect.DeepEqual(got, prefixes("192.0.2.1", "192.0.2.2")) {
		t.Errorf("remote = %v", got)
	}

	// The file: 28 KB, one anchor of 1,000 IPv6 addresses used in
	// 500 entries, a million rules. It took 4 s and 650 MB to check.
	var b strings.Builder
	b.WriteString("accounting:\n  - {tag: t0, local: &a [")
	for i := range 1000 {
		fmt.Fprintf(&b, "2001:db8::%x:%x,", i/256, i%256)
	}
	b.WriteString("]}\n")
	for i := 1; i < 500; i++ {
		fmt.Fprintf(&b, "  - {tag: t%d, local: *a}\n", i)
	}
	if n := b.Len(); n < 28000 || n > 29000 {
		t.Fatalf("the file has %d bytes, the issue's 28 KB", n)
	}
	want := "alias.yaml:27: accounting[25]: with this entry the table has 52000 rules, at most 50000 are allowed\n" +
		"alias.yaml:102: accounting[100].local: aliases repeat more than 100000 values by this one, at most 100000 are allowed: each use of an alias copies all the values of its anchor"
	if _, err := Parse("alias.yaml", []byte(b.String())); err == nil || err.Error() != want {
		t.Errorf("aliases of a long list:\n%v\nwant\n%s", err, want)
	}
}

// TestFileRules: the rules of the whole table are bounded, those of
// accounting and address entries together, and the entry that passes the
// bound is named.
func TestFileRules(t *testing.T) {
	var b strings.Builder
	b.WriteString("accounting:\n")
	// Each: 100 local × 10 ports, in both directions: 2,000 rules.
	for i := range 20 {
		fmt.Fprintf(&b, "  - {tag: t%d, protocol: tcp, ports: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], local: [", i)
		for j := range 100 {
			fmt.Fprintf(&b, "10.%d.%d.1,", i, j)
		}
		b.WriteString("]}\n")
	}
	b.WriteString("addresses:\n")
	// Each: 1,000 networks, a rule each at input, output and twice at
	// forward: 4,000 rules.
	for i := range 3 {
		fmt.Fprintf(&b, "  - {tag: a%d, networks: [", i)
		for j := range 1000 {
			fmt.Fprintf(&b, "172.%d.%d.%d,", 16+i, j/256, j%256)
		}
		b.WriteString("]}\n")
	}
	want := "rules.yaml:25: addresses[2]: with this entry the table has 52000 rules, at most 50000 are allowed"
	if _, err := Parse("rules.yaml", []byte(b.String())); err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
}

func TestLimits(t *testing.T) {
	big := make([]byte, maxFileSize+1)
	if _, err := Parse("big.yaml", big); err == nil || err.Error() != "big.yaml: file is larger than 4 MiB (4194304 bytes)" {
		t.Errorf("large file: %v", err)
	}

	var b strings.Builder
	b.WriteString("accounting:\n")
	for i := range maxEntries + 1 {
		fmt.Fprintf(&b, "- tag: t%d\n", i)
	}
	if _, err := Parse("many.yaml", []byte(b.String())); err == nil || err.Error() != "many.yaml:2: accounting: 10001 entries, at most 10000 are allowed" {
		t.Errorf("many entries: %v", err)
	}

	b.Reset()
	b.WriteString("accounting:\n- tag: t\n  local: [")
	for i := range maxRules + 1 {
		fmt.Fprintf(&b, "10.0.%d.%d,", i/256, i%256)
	}
	b.WriteString("]\n")
	if _, err := Parse("long.yaml", []byte(b.String())); err == nil || err.Error() != "long.yaml:3: accounting[0].local: 1001 items, but an entry may expand to at most 1000 rules per direction and hook" {
		t.Errorf("long list: %v", err)
	}
}

func TestMessages(t *testing.T) {
	for _, tc := range []struct{ name, doc, want string }{{
		// Lines count as the parser counts them, CR LF too.
		"crlf", "accounting:\r\n  - tag: a\r\n    local: [192.0.2.1/8]\r\n",
		"m.yaml:3: accounting[0].local[0]: 192.0.2.1/8: host bits set, did you mean 192.0.0.0/8?",
	}, {
		"invalid utf-8", "accounting:\n  - tag: \xff\n",
		"m.yaml:2: not valid UTF-8; a rules file is UTF-8 text",
	}, {
		// An item that does not decode keeps the others' indexes.
		"indexes", "accounting:\n  - tag: a\n    local: [x, 192.0.2.1, 192.0.2.1]\n",
		"m.yaml:3: accounting[0].local[0]: \"x\" is not an IP address or network\n" +
			"m.yaml:3: accounting[0].local[2]: 192.0.2.1 is listed twice, also as local[1]",
	}, {
		"null accounting", "accounting:\n",
		"m.yaml:1: accounting: no value; write a list, or leave the key out",
	}, {
		"empty string", "table: ''\naccounting:\n  - tag: a\n    interface: ''\n",
		"m.yaml:1: table: empty; leave the key out for the default\n" +
			"m.yaml:4: accounting[0].interface: empty; leave the key out for the default",
	}, {
		"entry twice", "accounting:\n  - &a {tag: a}\n  - *a\n",
		"m.yaml:2: accounting[1].tag: a already counts directions in and out at line 2",
	}, {
		// Both ICMPs count each in its family; icmpv6 still does not fit
		// IPv4 addresses.
		"icmp and icmpv6, IPv4 addresses", "accounting:\n  - tag: a\n    local: [192.0.2.1]\n    protocol: [icmp, icmpv6]\n",
		"m.yaml:4: accounting[0].protocol[1]: icmpv6 is IPv6 only, but the addresses are IPv4",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("m.yaml", []byte(tc.doc))
			if err == nil || err.Error() != tc.want {
				t.Errorf("got  %v\nwant %s", err, tc.want)
			}
		})
	}

	var b strings.Builder
	b.WriteString("accounting:\n  - tag: a\n    remote_except:\n")
	for i := range maxExcept + 1 {
		fmt.Fprintf(&b, "      - 10.0.%d.0/24\n", i)
	}
	want := "m.yaml:4: accounting[0].remote_except: 33 items, at most 32 are allowed: each is a match in every rule of the entry, and the kernel allows 128 expressions a rule"
	if _, err := Parse("m.yaml", []byte(b.String())); err == nil || err.Error() != want {
		t.Errorf("long remote_except: %v", err)
	}

	b.Reset()
	b.WriteString("accounting:\n")
	for i := range 150 {
		fmt.Fprintf(&b, "  - tag: a b%d\n", i)
	}
	_, err := Parse("m.yaml", []byte(b.String()))
	lines := strings.Split(fmt.Sprint(err), "\n")
	if len(lines) != maxErrors+1 || lines[maxErrors] != "m.yaml: and 50 more problems" {
		t.Errorf("%d lines, the last %q", len(lines), lines[len(lines)-1])
	}
}

func TestLoadErrors(t *testing.T) {
	_, err := Load("testdata/does-not-exist.yaml")
	if !errors.Is(err, fs.ErrNotExist) || err.Error() != "testdata/does-not-exist.yaml: no such file or directory" {
		t.Errorf("missing file: %v", err)
	}
	if _, err := Load("testdata"); err == nil || err.Error() != "testdata: is a directory, not a regular file" {
		t.Errorf("directory: %v", err)
	}
}

// TestLoadRefusesWhatBlocks: a FIFO in place of the file is refused at
// once, without waiting for a writer that never comes; so is a device.
func TestLoadRefusesWhatBlocks(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "rules.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		fifo:        fifo + ": is a FIFO, not a regular file",
		"/dev/zero": "/dev/zero: is a device, not a regular file",
	} {
		done := make(chan error, 1)
		go func() {
			_, err := Load(path)
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil || !strings.HasPrefix(err.Error(), want) {
				t.Errorf("Load(%s): %v, want %q", path, err, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("Load(%s) still waits after 5s", path)
		}
	}
}

// TestRevalidate: validation without positions names the entry's line.
func TestRevalidate(t *testing.T) {
	f := mustParse(t, "accounting:\n  - tag: web\n    local: [192.0.2.0/24]\n")
	f.Accounting[0].Local = append(f.Accounting[0].Local, netip.MustParsePrefix("192.0.2.1/32"))
	f.Accounting[0].Match = "tcp dport 22 accept"
	errs := &errList{path: f.Path}
	validate(f, nil, errs)
	want := "test.yaml:2: accounting[0].local[1]: 192.0.2.1 overlaps 192.0.2.0/24 at local[0]\n" +
		"test.yaml:2: accounting[0].match: column 14: \"accept\" is a verdict; a match only selects packets (match takes a subset of nft: https://pkg.go.dev/github.com/ipacct/ipacct_exporter/nftmatch)"
	if err := errs.err(); err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
}

// TestExample loads the example that the README links.
func TestExample(t *testing.T) {
	f, err := Load("../rules.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	byTag := make(map[string][]Entry)
	for _, e := range f.Accounting {
		byTag[e.Tag] = append(byTag[e.Tag], e)
	}
	for _, want := range []string{
		// 000: per-address outgoing traffic
		"srv-198.51.100.10", "srv-198.51.100.11", "srv-198.51.100.12",
		// 002: by address, by port, by protocol, a gateway
		"example.com", "example.net", "example.org",
		"http", "https", "smtp", "imap", "dns", "ssh",
		"proto-tcp", "proto-udp", "proto-icmp", "lan",
		// 003: the munin example
		"unauthssh", "web4", "web6", "web6ssl",
	} {
		if len(byTag[want]) == 0 {
			t.Errorf("no entry with tag %s", want)
		}
	}
	check := func(tag string, ok bool) {
		t.Helper()
		if !ok {
			t.Errorf("%s: %+v", tag, byTag[tag])
		}
	}
	e := byTag["srv-198.51.100.10"][0]
	check(e.Tag, e.Direction == "out" && slices.Equal(e.Hooks, []Hook{"output"}) && e.Family == "ipv4")
	e = byTag["unauthssh"][0]
	check(e.Tag, e.Direction == "in" && e.Family == "ipv4" && reflect.DeepEqual(e.RemoteExcept, prefixes("10.2.3.0/24")) &&
		reflect.DeepEqual(e.Ports, []PortRange{{22, 22}}))
	e = byTag["web4"][0]
	check(e.Tag, reflect.DeepEqual(e.Ports, []PortRange{{80, 80}, {443, 443}}) && e.Family == "ipv4")
	e = byTag["web6ssl"][0]
	check(e.Tag, e.Family == "ipv6" && reflect.DeepEqual(e.Local, prefixes("2001:db8:f00d::1")))
	e = byTag["dns"][0]
	check(e.Tag, slices.Equal(e.Protocol, []Protocol{"tcp", "udp"}) && e.Interface == "eth0")
	e = byTag["lan"][0]
	check(e.Tag, slices.Equal(e.Hooks, []Hook{"forward"}))

	// 000 per address, and 001's tenants.
	addrs := make(map[string]AddressEntry)
	for _, a := range f.Addresses {
		addrs[a.Tag] = a
	}
	if a := addrs["servers"]; a.Direction != "out" || len(a.Networks) != 3 || !slices.Equal(a.Hooks, []Hook{"output"}) {
		t.Errorf("servers: %+v", a)
	}
	for _, tenant := range []string{"rent31", "rent3233", "rent34"} {
		if a := addrs[tenant]; !slices.Equal(a.Hooks, []Hook{"forward"}) || a.Timeout != 31*24*time.Hour || len(a.Networks) == 0 {
			t.Errorf("%s: %+v", tenant, a)
		}
	}
	if a := addrs["rent3233"]; len(a.Networks) != 2 {
		t.Errorf("rent3233: %+v", a)
	}
}

// FuzzParse: Parse never panics, names the file in every message, and what
// it accepts validates again.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.yaml")
	seeds = append(seeds, "../rules.example.yaml")
	for _, path := range seeds {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const path = "fuzz.yaml"
		file, err := Parse(path, data)
		if err != nil {
			if file != nil {
				t.Errorf("a File with an error")
			}
			for l := range strings.SplitSeq(err.Error(), "\n") {
				if !strings.HasPrefix(l, path+":") {
					t.Errorf("message does not start with the file name: %q", l)
				}
			}
			return
		}
		if file.Path != path || len(file.Accounting) == 0 && len(file.Addresses) == 0 {
			t.Errorf("Parse accepted %+v", file)
		}
		if line := nullValue(data); line > 0 {
			t.Errorf("Parse accepted a key without a value at line %d", line)
		}
		errs := &errList{path: path}
		validate(file, nil, errs)
		if err := errs.err(); err != nil {
			t.Errorf("a parsed file does not validate again: %v", err)
		}
		again := *file
		again.Accounting = slices.Clone(file.Accounting)
		again.setDefaults()
		if !reflect.DeepEqual(&again, file) {
			t.Errorf("defaults applied again change the file")
		}
		for _, e := range file.Accounting {
			for _, d := range e.Directions() {
				if p, err := tag.Parse("=" + e.Tag + "_" + string(d) + "= " + e.Description); err != nil || p.Name != e.Tag || p.Direction != d {
					t.Errorf("tag %q does not read back: %+v, %v", e.Tag, p, err)
				}
			}
		}
	})
}

// nullValue returns the line of the first key written without a value (or
// with null), 0 if there is none.
func nullValue(data []byte) int {
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil {
		return 0
	}
	var walk func(n *yaml.Node) int
	walk = func(n *yaml.Node) int {
		for i, c := range n.Content {
			if n.Kind == yaml.MappingNode && i%2 == 1 && isNull(c) {
				return c.Line
			}
			if line := walk(c); line > 0 {
				return line
			}
		}
		return 0
	}
	return walk(&doc)
}

func TestAddressesDefaults(t *testing.T) {
	f := mustParse(t, `
addresses:
  - tag: rent31
    description: Tenant 31
    networks: [192.168.31.0/24, 2001:db8:31::/64]
  - tag: servers
    networks: [10.0.0.4, 10.0.0.5/32]
    direction: out
    hooks: [output]
    size: 16
    timeout: 7d
`)
	if len(f.Addresses) != 2 {
		t.Fatalf("addresses: %+v", f.Addresses)
	}
	a, b := f.Addresses[0], f.Addresses[1]
	if a.Direction != "both" || !slices.Equal(a.Hooks, []Hook{"input", "output", "forward"}) || a.Size != 0 || a.Timeout != 0 || a.Line != 3 {
		t.Errorf("defaults: %+v", a)
	}
	// Sized from the networks: a /24 holds 256 addresses, a /64 more than
	// the default.
	if a.SetSize(family.IPv4) != 256 || a.SetSize(family.IPv6) != DefaultSetSize || b.SetSize(family.IPv4) != 16 {
		t.Errorf("set sizes: rent31 %d and %d, servers %d; want 256, %d, 16", a.SetSize(family.IPv4), a.SetSize(family.IPv6), b.SetSize(family.IPv4), DefaultSetSize)
	}
	if !slices.Equal(a.Families(), family.Addresses) || a.NetworksOf(family.IPv6)[0].String() != "2001:db8:31::/64" {
		t.Errorf("families: %v %v", a.Families(), a.NetworksOf(family.IPv6))
	}
	if b.Size != 16 || b.Timeout != 7*24*time.Hour || !slices.Equal(b.Families(), []family.Address{family.IPv4}) || len(b.Directions()) != 1 || b.Directions()[0] != tag.Out {
		t.Errorf("servers: %+v", b)
	}
	if len(f.Accounting) != 0 {
		t.Errorf("accounting: %+v", f.Accounting)
	}
}

// TestSetSize: without a size, a set holds what its family's networks
// hold, rounded up to a power of two, at most DefaultSetSize.
func TestSetSize(t *testing.T) {
	for _, tc := range []struct {
		networks string
		v4, v6   uint32
	}{
		{"[10.0.0.4, 10.0.0.5, 10.0.0.6]", 4, 0}, // seed 000's three addresses
		{"[10.0.0.4]", 1, 0},
		{"[10.0.0.0/30, 10.0.1.0/30]", 8, 0},
		{"[10.0.0.0/17]", 32768, 0},
		{"[10.0.0.0/17, 10.1.0.0/32]", DefaultSetSize, 0},
		{"[10.0.0.0/16]", DefaultSetSize, 0},
		{"[10.0.0.0/8, 2001:db8::1, 2001:db8::2]", DefaultSetSize, 2},
		{"[2001:db8::/112]", 0, DefaultSetSize},
		{"[2001:db8::/64]", 0, DefaultSetSize},
	} {
		f := mustParse(t, "addresses:\n  - tag: a\n    networks: "+tc.networks+"\n")
		e := f.Addresses[0]
		for fam, want := range map[family.Address]uint32{family.IPv4: tc.v4, family.IPv6: tc.v6} {
			if got := e.SetSize(fam); want > 0 && got != want {
				t.Errorf("%s: %s set size %d, want %d", tc.networks, fam, got, want)
			}
		}
	}
	f := mustParse(t, "addresses:\n  - tag: a\n    networks: [10.0.0.4]\n    size: 100\n")
	if got := f.Addresses[0].SetSize(family.IPv4); got != 100 {
		t.Errorf("size given: %d, want 100", got)
	}
}

// TestFlowEntries: entries counted from flow records have no hooks, their
// networks may nest, and the flows section names the routers.
func TestFlowEntries(t *testing.T) {
	f := mustParse(t, `
accounting:
  - tag: dns
    source: flow
    local: [192.0.2.53]
    protocol: [udp, tcp]
    ports: [53]
addresses:
  - tag: rent31
    source: flow
    networks: [192.168.31.0/24]
  - tag: rent31-guests
    source: flow
    networks: [192.168.31.128/25]
    size: 10
    timeout: 1h
  - tag: servers
    networks: [198.51.100.0/24]
flow:
  routers:
    - address: 192.168.255.1
      input_interfaces: [2]
      output_interfaces: [2, 4294967295]
    - address: 2001:db8::1
`)
	if e := f.Accounting[0]; e.Source != SourceFlow || e.Hooks != nil || e.Family != "ipv4" {
		t.Errorf("dns: %+v", e)
	}
	if a := f.Addresses[1]; a.Source != SourceFlow || a.Hooks != nil || a.Size != 10 || a.Timeout != time.Hour {
		t.Errorf("rent31-guests: %+v", a)
	}
	if a := f.Addresses[2]; a.Source != SourceKernel || len(a.Hooks) != 3 {
		t.Errorf("servers: %+v", a)
	}
	want := []Router{
		{Address: netip.MustParseAddr("192.168.255.1"), InputInterfaces: []uint32{2}, OutputInterfaces: []uint32{2, 4294967295}, Line: 21},
		{Address: netip.MustParseAddr("2001:db8::1"), Line: 24},
	}
	if !reflect.DeepEqual(f.Flow.Routers, want) {
		t.Errorf("routers:\ngot  %+v\nwant %+v", f.Flow.Routers, want)
	}
}

// TestExampleFlow: the commented flow example at the end of
// rules.example.yaml, uncommented, is a valid file.
func TestExampleFlow(t *testing.T) {
	data, err := os.ReadFile("../rules.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, tail, ok := strings.Cut(string(data), "# --- Seed 001 on a router that can only export flows. ---")
	if !ok {
		t.Fatal("no flow example in rules.example.yaml")
	}
	var b strings.Builder
	for l := range strings.SplitSeq(tail, "\n") {
		rest, ok := strings.CutPrefix(l, "# ")
		if ok && (strings.HasPrefix(rest, " ") || strings.HasSuffix(rest, ":") && !strings.Contains(rest, " ")) {
			b.WriteString(rest + "\n")
		}
	}
	f, err := Parse("example-flow.yaml", []byte(b.String()))
	if err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	if len(f.Addresses) != 2 || len(f.Accounting) != 1 || len(f.Flow.Routers) != 1 || !f.HasFlows() || len(f.Kernel().Addresses) != 0 {
		t.Errorf("parsed %+v", f)
	}
}
