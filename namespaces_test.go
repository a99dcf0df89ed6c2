package main

import (
	"context"
	"errors"
	"testing"

	"github.com/ipacct/ipacct_exporter/collector"
	"github.com/ipacct/ipacct_exporter/exporter"
)

type failingCollector struct{}

func (failingCollector) Read(context.Context) (collector.Reading, error) {
	return collector.Reading{}, errors.New("network namespace: no such file or directory")
}

// TestVanishingNamespace: a read that fails because the namespace a glob
// found is gone is ErrCollectorGone; one whose namespace is still there is a
// failure to report.
func TestVanishingNamespace(t *testing.T) {
	_, err := vanishing{failingCollector{}, "/run/netns/ipacct-never-made"}.Read(context.Background())
	if !errors.Is(err, exporter.ErrCollectorGone) {
		t.Errorf("namespace gone: %v, want ErrCollectorGone", err)
	}
	_, err = vanishing{failingCollector{}, "/proc/self/ns/net"}.Read(context.Background())
	if err == nil || errors.Is(err, exporter.ErrCollectorGone) {
		t.Errorf("namespace present: %v, want the read's own error", err)
	}
}
