package netns

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"unicode"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// Namespace is one network namespace to read.
type Namespace struct {
	// Name is its netns label: the name under /run/netns, else the path,
	// escaped as a label value must be (see label).
	Name string
	// Path opens it; empty for the exporter's own namespace.
	Path string
	// Globbed is true when a glob found it, so that its vanishing between
	// the listing and the read is the namespace going away, not an error.
	Globbed bool
}

// Patterns are the namespaces the exporter reads, as --netns gave them:
// names under /run/netns, paths such as /proc/PID/ns/net, or globs of
// either. None means the exporter's own namespace.
type Patterns []string

// ParsePatterns checks the --netns values.
func ParsePatterns(values []string) (Patterns, error) {
	for _, v := range values {
		if v == "" {
			return nil, errors.New("--netns: empty value; leave the flag out to read the exporter's own namespace")
		}
		if _, err := filepath.Match(Path(v), ""); err != nil {
			return nil, fmt.Errorf("--netns %q: %w", v, err)
		}
	}
	return Patterns(values), nil
}

// Several reports whether the patterns can name more than one namespace, in
// which case every series carries a netns label. It depends on the patterns
// alone, never on how many namespaces exist now, so that the label does not
// come and go with them.
func (p Patterns) Several() bool {
	return len(p) > 1 || len(p) == 1 && hasMeta(p[0])
}

// Single is the path of the one namespace that patterns without a glob
// name, "" for the exporter's own; ok is false when they can name several.
func (p Patterns) Single() (path string, ok bool) {
	if p.Several() {
		return "", false
	}
	if len(p) == 0 {
		return "", true
	}
	return Path(p[0]), true
}

// Resolve lists the namespaces the patterns name now. A namespace named
// without a glob is listed whether or not it exists: its absence is the
// operator's to see, as a failed read. Glob matches that are not network
// namespaces, or that the exporter may not look at, are skipped. A namespace
// reached by several paths (several processes in one namespace) is listed
// once, under the first.
func (p Patterns) Resolve() []Namespace {
	if len(p) == 0 {
		return []Namespace{{}}
	}
	var list []Namespace
	seen := make(map[[2]uint64]bool)
	add := func(path string, globbed bool) {
		var st unix.Stat_t
		if err := unix.Stat(path, &st); err == nil {
			id := [2]uint64{st.Dev, st.Ino}
			if seen[id] {
				return
			}
			seen[id] = true
		} else if globbed {
			return // vanished since the glob, or not ours to see
		}
		list = append(list, Namespace{Name: label(path), Path: path, Globbed: globbed})
	}
	for _, v := range p {
		path := Path(v)
		if !hasMeta(path) {
			add(path, false)
			continue
		}
		matches, _ := filepath.Glob(path) // the pattern was checked at parse
		for _, m := range matches {
			if isNetNS(m) {
				add(m, true)
			}
		}
	}
	return list
}

// Gone reports whether the namespace at path no longer exists.
func Gone(path string) bool {
	_, err := os.Stat(path)
	return errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ESRCH)
}

// label is the netns label value of the namespace at path: its name under
// /run/netns, else the path, escaped.
func label(path string) string {
	if name, ok := strings.CutPrefix(path, "/run/netns/"); ok && !strings.Contains(name, "/") {
		return escape(name)
	}
	return escape(path)
}

// escape makes a file name, which may hold any byte but NUL, a label value,
// which must be UTF-8. A name that is UTF-8 without control characters or
// backslashes stays as it is; any other is written as the inside of a Go
// string literal (\xff, \n, \\): a backslash in every such value and in
// none of the others keeps two names from sharing a value.
func escape(name string) string {
	if !strings.ContainsRune(name, '\\') && utf8.ValidString(name) && strings.IndexFunc(name, unicode.IsControl) < 0 {
		return name
	}
	q := strconv.Quote(name)
	return q[1 : len(q)-1]
}

// isNetNS tells a namespace file from whatever else a glob may match, such
// as a file under /run/netns that is not a mount of one.
func isNetNS(path string) bool {
	var fs unix.Statfs_t
	return unix.Statfs(path, &fs) == nil && fs.Type == unix.NSFS_MAGIC
}

func hasMeta(s string) bool { return strings.ContainsAny(s, `*?[\`) }
