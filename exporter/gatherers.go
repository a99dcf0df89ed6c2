package exporter

import (
	"fmt"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Gatherers serves the families of several gatherers, such as an Exporter
// and the registry of the process's own metrics, as one. Unlike
// prometheus.Gatherers it does not check every series again, which at
// 100,000 addresses costs a fifth of a scrape: each gatherer answers for its
// own series, and a family that two of them return is an error, its second
// copy left out.
type Gatherers []prometheus.Gatherer

// Gather implements prometheus.Gatherer.
func (gs Gatherers) Gather() ([]*dto.MetricFamily, error) {
	var all []*dto.MetricFamily
	var errs prometheus.MultiError
	seen := make(map[string]bool)
	for _, g := range gs {
		fams, err := g.Gather()
		errs.Append(err)
		for _, f := range fams {
			if seen[f.GetName()] {
				errs.Append(fmt.Errorf("metric family %s is gathered twice", f.GetName()))
				continue
			}
			seen[f.GetName()] = true
			all = append(all, f)
		}
	}
	slices.SortFunc(all, func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })
	return all, errs.MaybeUnwrap()
}
