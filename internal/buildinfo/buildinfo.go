// Package buildinfo fills in the version that prometheus/common/version
// reports (--version, ipacct_exporter_build_info, the landing page, the
// start-up log) from what Go embeds in every binary, for a build that did
// not set it with -ldflags -X, as the release build (Makefile) does.
package buildinfo

import (
	"runtime/debug"
	"strings"

	"github.com/prometheus/common/version"
)

// Fill sets what -ldflags left empty: the version from the main module's
// (a tag for "go install …@v1.2.3", a pseudo-version naming the commit for a
// build in a git checkout, "(devel)" when Go knows neither), and the build
// date from the commit's time. The revision version.GetRevision already
// reads from the same place.
func Fill() {
	if bi, ok := debug.ReadBuildInfo(); ok {
		fill(bi)
	}
}

func fill(bi *debug.BuildInfo) {
	if version.Version == "" {
		// Prometheus writes versions without the "v" of a Go module's.
		version.Version = strings.TrimPrefix(bi.Main.Version, "v")
		if version.Version == "" {
			version.Version = "(devel)"
		}
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.time" && version.BuildDate == "" {
			version.BuildDate = s.Value
		}
	}
}
