package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/ipacct/ipacct_exporter/backends"
	"github.com/ipacct/ipacct_exporter/backends/iptables"
	"github.com/ipacct/ipacct_exporter/backends/nftables"
	"github.com/ipacct/ipacct_exporter/exporter"
	"github.com/ipacct/ipacct_exporter/internal/netns"
)

// collectorSet says which backends read each namespace.
type collectorSet struct {
	nftables, iptables bool
	lockTimeout        time.Duration
	filter             backends.Filter
}

// sources returns the enabled collectors' backends for the namespace at
// path ("" for the exporter's own).
func (c collectorSet) sources(ns netns.Namespace) []exporter.Source {
	var list []exporter.Source
	if c.nftables {
		list = append(list, exporter.Source{Name: "nftables", NetNS: ns.Name, Backend: nftables.New(nftables.Options{NetNS: ns.Path, Filter: c.filter})})
	}
	if c.iptables {
		list = append(list, exporter.Source{Name: "iptables", NetNS: ns.Name, Backend: iptables.New(iptables.Options{NetNS: ns.Path, LockTimeout: c.lockTimeout, Filter: c.filter}),
			Feeds: exporter.Feeds{TagFamilies: []string{"ip", "ip6"}, NoSets: true}})
	}
	if ns.Globbed {
		for i := range list {
			list[i].Backend = vanishing{list[i].Backend, ns.Path}
		}
	}
	return list
}

// namespaceSources lists, on every scrape, the sources of each namespace
// that the --netns patterns name at that moment.
type namespaceSources struct {
	patterns   netns.Patterns
	collectors collectorSet

	mu sync.Mutex
	// byPath keeps a namespace's backends from scrape to scrape (the
	// iptables one keeps its tool handles); a namespace no longer listed is
	// dropped, so that churn does not grow it.
	byPath map[string][]exporter.Source
}

func (n *namespaceSources) list() []exporter.Source {
	n.mu.Lock()
	defer n.mu.Unlock()
	current := make(map[string][]exporter.Source)
	var list []exporter.Source
	for _, ns := range n.patterns.Resolve() {
		s, ok := n.byPath[ns.Path]
		if !ok {
			s = n.collectors.sources(ns)
		}
		current[ns.Path] = s
		list = append(list, s...)
	}
	n.byPath = current
	return list
}

// vanishing reads a namespace that a glob found: if it is gone by the time
// of the read, the exporter leaves it out instead of reporting a failure.
type vanishing struct {
	backends.Backend
	path string
}

func (v vanishing) Read(ctx context.Context) (backends.Reading, error) {
	r, err := v.Backend.Read(ctx)
	if err != nil && netns.Gone(v.path) {
		return r, fmt.Errorf("%w: %v", exporter.ErrSourceGone, err)
	}
	return r, err
}
