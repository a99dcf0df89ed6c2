package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ipacct/ipacct_exporter/collector"
	"github.com/ipacct/ipacct_exporter/collector/iptables"
	"github.com/ipacct/ipacct_exporter/collector/nft"
	"github.com/ipacct/ipacct_exporter/exporter"
	"github.com/ipacct/ipacct_exporter/family"
	"github.com/ipacct/ipacct_exporter/internal/netns"
)

// enabledCollectors are the collectors that --collector.* turn on, which
// read each namespace.
type enabledCollectors struct {
	nftables, iptables bool
	lockTimeout        time.Duration
	filter             collector.Filter
	// allowUserNamespaces reads namespaces that a user namespace other
	// than the exporter's owns, which any local user can make (see
	// netns.CheckOwner); without it the exporter refuses them.
	allowUserNamespaces bool
}

// in returns the enabled collectors of the namespace ns.
func (c enabledCollectors) in(ns netns.Namespace) []exporter.Collector {
	var list []exporter.Collector
	if c.nftables {
		list = append(list, exporter.Collector{Name: "nftables", NetNS: ns.Name, Collector: nft.New(nft.Options{NetNS: ns.Path, Filter: c.filter})})
	}
	if c.iptables {
		list = append(list, exporter.Collector{Name: "iptables", NetNS: ns.Name, Collector: iptables.New(iptables.Options{NetNS: ns.Path, LockTimeout: c.lockTimeout, Filter: c.filter}),
			Feeds: exporter.Feeds{TagFamilies: []family.Table{family.IP, family.IP6}, NoSets: true}})
	}
	for i := range list {
		if ns.Path != "" && !c.allowUserNamespaces {
			list[i].Collector = ownerChecked{list[i].Collector, ns.Path}
		}
		if ns.Globbed {
			list[i].Collector = vanishing{list[i].Collector, ns.Path}
		}
	}
	return list
}

// namespaceCollectors lists, on every scrape, the collectors of each
// namespace that the --netns patterns name at that moment.
type namespaceCollectors struct {
	patterns   netns.Patterns
	collectors enabledCollectors
	logger     *slog.Logger

	mu sync.Mutex
	// byPath keeps a namespace's collectors from scrape to scrape (the
	// iptables one keeps its tool handles); a namespace no longer listed is
	// dropped, so that churn does not grow it.
	byPath map[string][]exporter.Collector
	// skipped are the namespaces found by a glob and left out because
	// another user namespace owns them, logged when first found.
	skipped map[string]bool
}

func (n *namespaceCollectors) list() []exporter.Collector {
	n.mu.Lock()
	defer n.mu.Unlock()
	current := make(map[string][]exporter.Collector)
	skipped := make(map[string]bool)
	var list []exporter.Collector
	for _, ns := range n.patterns.Resolve() {
		if ns.Globbed && !n.collectors.allowUserNamespaces {
			if err := netns.CheckOwner(ns.Path); errors.Is(err, netns.ErrOtherUserNamespace) {
				if !n.skipped[ns.Path] {
					n.logger.Warn("network namespace skipped: a user namespace other than the exporter's owns it, so any local user could have made it; --netns.allow-user-namespaces reads it", "netns", ns.Name, "err", err)
				}
				skipped[ns.Path] = true
				continue
			}
		}
		s, ok := n.byPath[ns.Path]
		if !ok {
			s = n.collectors.in(ns)
		}
		current[ns.Path] = s
		list = append(list, s...)
	}
	n.byPath, n.skipped = current, skipped
	return list
}

// ownerChecked reads a namespace only while the exporter's user namespace
// owns it: a path such as /proc/PID/ns/net names another namespace once the
// process is gone and its PID reused.
type ownerChecked struct {
	collector.Collector
	path string
}

func (o ownerChecked) Read(ctx context.Context) (collector.Reading, error) {
	if err := netns.CheckOwner(o.path); err != nil {
		if errors.Is(err, netns.ErrOtherUserNamespace) {
			err = fmt.Errorf("%w; not read, since any local user can make such a namespace (--netns.allow-user-namespaces reads it)", err)
		}
		return collector.Reading{}, err
	}
	return o.Collector.Read(ctx)
}

// vanishing reads a namespace that a glob found: if it is gone by the time
// of the read, the exporter leaves it out instead of reporting a failure.
type vanishing struct {
	collector.Collector
	path string
}

func (v vanishing) Read(ctx context.Context) (collector.Reading, error) {
	r, err := v.Collector.Read(ctx)
	if err != nil && netns.Gone(v.path) {
		return r, fmt.Errorf("%w: %v", exporter.ErrCollectorGone, err)
	}
	return r, err
}
