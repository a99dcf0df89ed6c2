package exporter

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/ipacct/ipacct_exporter/collector"
	"github.com/ipacct/ipacct_exporter/family"
	"github.com/ipacct/ipacct_exporter/tag"
)

// The state file keeps, across restarts, what the tracked series hold
// beyond the kernel's sums: without it, a restart after a partial change
// serves the kernel's sums again, a drop that Prometheus counts as a reset.
// Only the series that need it are written: those that carry what vanished
// or zeroed counters had counted, and those summed from several counters
// (one of which may vanish while the exporter is down). A series of one
// counter and nothing carried serves the kernel's value, state or not.

// stateVersion 2 names a part by its collector's ID, a hash, in hex; version
// 1, which named it by the text that ID hashes, is read too.
const stateVersion = 2

// maxStateSize bounds what is read of a state file.
const maxStateSize = 256 << 20

type stateFile struct {
	Version int           `json:"version"`
	Saved   time.Time     `json:"saved"`
	Series  []stateSeries `json:"series"`
}

type stateSeries struct {
	Kind      string `json:"kind"` // tag, ip or overflow
	NetNS     string `json:"netns,omitempty"`
	Tag       string `json:"tag"`
	Direction string `json:"direction"`
	// Family is a tag series' table family, an overflow series' address
	// family.
	Family  string      `json:"family,omitempty"`
	IP      string      `json:"ip,omitempty"` // ip
	Packets uint64      `json:"carried_packets"`
	Bytes   uint64      `json:"carried_bytes"`
	Created int64       `json:"created_ms,omitempty"`
	Parts   []statePart `json:"parts"`
}

type statePart struct {
	ID        string `json:"id"`     // Record.ID in hex; in version 1, the text it hashes
	Collector string `json:"source"` // the collector's name; the key is version 2's
	Handle    uint64 `json:"handle,omitempty"`
	Packets   uint64 `json:"packets"`
	Bytes     uint64 `json:"bytes"`
}

// worthKeeping tells whether a restart without the series' state would
// serve it wrong.
func (t *track) worthKeeping() bool {
	return !t.withheld && (t.carried != collector.Counter{} || len(t.parts) > 1)
}

// StateChanged receives when a scrape found a counter vanished or zeroed:
// what it had counted is then kept only by the exporter, and the state
// file should have it soon.
func (e *Exporter) StateChanged() <-chan struct{} { return e.carriedChanged }

// SaveState writes the state that a restart needs to path, atomically
// (a temporary file, synced, renamed over it), readable by the owner only.
// It does nothing when nothing changed since the last save.
func (e *Exporter) SaveState(path string) error {
	e.mu.Lock()
	if !e.dirty {
		e.mu.Unlock()
		return nil
	}
	sf := stateFile{Version: stateVersion, Saved: e.now().UTC()}
	names := make(map[int]string, len(e.srcIDs))
	for sk, id := range e.srcIDs {
		names[id] = sk.name
	}
	add := func(s stateSeries, t *track) {
		if !t.worthKeeping() {
			return
		}
		s.Packets, s.Bytes, s.Created = t.carried.Packets, t.carried.Bytes, t.created
		for _, p := range t.parts {
			s.Parts = append(s.Parts, statePart{ID: strconv.FormatUint(p.id, 16), Collector: names[p.src], Handle: p.handle, Packets: p.last.Packets, Bytes: p.last.Bytes})
		}
		sf.Series = append(sf.Series, s)
	}
	for k, t := range e.tags {
		add(stateSeries{Kind: "tag", NetNS: k.netns, Tag: k.tag, Direction: string(k.direction), Family: string(k.tableFamily)}, &t.track)
	}
	for k, t := range e.overflows {
		add(stateSeries{Kind: "overflow", NetNS: k.netns, Tag: k.tag, Direction: string(k.direction), Family: string(k.addrFamily)}, t)
	}
	// The others have one part and nothing carried: the kernel's value
	// is right.
	e.addrs.kept(func(g *addrGroup, addr netip.Addr, t *track) {
		add(stateSeries{Kind: "ip", NetNS: g.netns, Tag: g.tag, Direction: string(g.direction), IP: addr.String()}, t)
	})
	e.dirty = false
	e.mu.Unlock()

	data, err := json.Marshal(sf)
	if err != nil {
		return err
	}
	if err := writeAtomic(path, data); err != nil {
		e.mu.Lock()
		e.dirty = true
		e.mu.Unlock()
		return fmt.Errorf("saving the state file: %w", err)
	}
	return nil
}

func writeAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // after the rename, there is nothing to remove
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	// The rename is durable once the directory is.
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// LoadState reads a state file saved by SaveState, before the first
// scrape. A missing file is a fresh start, not an error. A file that cannot
// be used is moved aside (to PATH.corrupt) and the exporter starts fresh:
// the error says so, for the log.
func (e *Exporter) LoadState(path string) (loaded int, err error) {
	sf, err := readState(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		aside := path + ".corrupt"
		if rerr := os.Rename(path, aside); rerr != nil {
			return 0, fmt.Errorf("state file %s unusable, starting fresh: %w (and moving it aside failed: %v)", path, err, rerr)
		}
		return 0, fmt.Errorf("state file %s unusable, moved to %s, starting fresh: %w", path, aside, err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range sf.Series {
		t := &track{carried: collector.Counter{Packets: s.Packets, Bytes: s.Bytes}, created: s.Created, shown: true}
		for _, p := range s.Parts {
			src := e.collectorID(collectorKey{p.Collector, s.NetNS})
			t.parts = append(t.parts, part{id: partIDOf(sf.Version, p.ID), src: src, handle: p.Handle, last: collector.Counter{Packets: p.Packets, Bytes: p.Bytes}})
		}
		dir := tag.Direction(s.Direction)
		switch s.Kind {
		case "tag":
			e.newTagTrack(seriesKey{s.NetNS, s.Tag, dir, family.Table(s.Family)}, 0).track = *t
		case "overflow":
			e.overflows[setGroup{s.NetNS, s.Tag, family.Address(s.Family), dir}] = t
		case "ip":
			a, _ := netip.ParseAddr(s.IP) // checked by readState
			e.addrs.load(e.addrs.group(addrGroupKey{s.NetNS, s.Tag, dir}, e.withNS), a, t)
		}
	}
	return len(sf.Series), nil
}

// partIDOf is a part's ID as the state file of the version holds it.
func partIDOf(version int, id string) uint64 {
	if version == 1 {
		return collector.ID(id)
	}
	v, _ := strconv.ParseUint(id, 16, 64) // checked by readState
	return v
}

func readState(path string) (stateFile, error) {
	var sf stateFile
	fi, err := os.Stat(path)
	if err != nil {
		return sf, err
	}
	if !fi.Mode().IsRegular() {
		return sf, fmt.Errorf("not a regular file")
	}
	if fi.Size() > maxStateSize {
		return sf, fmt.Errorf("%d bytes, more than the %d a state file may have", fi.Size(), maxStateSize)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return sf, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sf); err != nil {
		return sf, err
	}
	if sf.Version != stateVersion && sf.Version != 1 {
		return sf, fmt.Errorf("version %d, want %d", sf.Version, stateVersion)
	}
	for i, s := range sf.Series {
		switch s.Kind {
		case "tag", "overflow":
		case "ip":
			if _, err := netip.ParseAddr(s.IP); err != nil {
				return sf, fmt.Errorf("series %d: %w", i, err)
			}
		default:
			return sf, fmt.Errorf("series %d: unknown kind %q", i, s.Kind)
		}
		if len(s.Parts) == 0 {
			return sf, fmt.Errorf("series %d: no parts", i)
		}
		for _, p := range s.Parts {
			if _, err := strconv.ParseUint(p.ID, 16, 64); err != nil && sf.Version != 1 {
				return sf, fmt.Errorf("series %d: part id %q is not a hex ID", i, p.ID)
			}
		}
	}
	return sf, nil
}
