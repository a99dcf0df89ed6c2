package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Limits. A rules file is written by hand; these keep a mistake (or a
// generator gone wrong) from making the exporter load millions of rules.
const (
	maxFileSize = 4 << 20 // bytes
	maxEntries  = 10000
	maxRules    = 1000 // rules an entry expands to, per direction and hook
	// maxFileRules bounds the rules of the whole table. A scrape dumps a
	// table in time that grows with the square of its rules: on 2 busy
	// cores 50,000 rules took 3 s to apply and 1 to 1.5 s to scrape,
	// 100,000 took 8 s and 3.5 to 5 s, near Prometheus' 10 s timeout.
	// Aliases and long lists make a small file expand to far more: 28 KB,
	// one anchor of 1,000 addresses used in 500 entries, made a million
	// rules and took 4 s and 650 MB to check.
	maxFileRules = 50000
	// maxAliased bounds the YAML values that aliases repeat: each use of an
	// alias copies every value of its anchor again. Without aliases the
	// values are bounded by the file's size.
	maxAliased = 100000
	// maxErrors bounds the problems reported: past it, something else is
	// wrong, such as a file that is not a rules file at all.
	maxErrors = 100
)

// Load reads and validates the rules file at path. See Parse.
func Load(path string) (*File, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, fileError(path, err)
	}
	return Parse(path, data)
}

// readTimeout bounds reading a rules file: a file on a network file system
// that stopped answering must not hold up a reload for ever.
const readTimeout = 10 * time.Second

// readFile reads at most maxFileSize+1 bytes (one more than allowed, so
// that Parse sees a file too large) of the regular file at path, within
// readTimeout. Anything else is an error before it is opened for reading:
// opening a FIFO waits for a writer, reading a device may never end.
func readFile(path string) ([]byte, error) {
	type result struct {
		data []byte
		err  error
	}
	done := make(chan result, 1)
	go func() {
		data, err := readRegular(path)
		done <- result{data, err}
	}()
	select {
	case r := <-done:
		return r.data, r.err
	case <-time.After(readTimeout):
		// The read goes on in the background until the file system answers.
		return nil, fmt.Errorf("not read within %s", readTimeout)
	}
}

func readRegular(path string) ([]byte, error) {
	if err := requireRegular(os.Stat(path)); err != nil {
		return nil, err
	}
	// O_NONBLOCK: should path have become a FIFO since, open does not wait.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if err := requireRegular(f.Stat()); err != nil {
		return nil, err
	}
	return io.ReadAll(io.LimitReader(f, maxFileSize+1))
}

// requireRegular refuses what is not a regular file, naming what it is.
func requireRegular(fi fs.FileInfo, err error) error {
	if err != nil {
		return err
	}
	if m := fi.Mode(); !m.IsRegular() {
		kind := "something else"
		switch {
		case m.IsDir():
			kind = "a directory"
		case m&fs.ModeNamedPipe != 0:
			kind = "a FIFO"
		case m&fs.ModeSocket != 0:
			kind = "a socket"
		case m&fs.ModeDevice != 0:
			kind = "a device"
		}
		return fmt.Errorf("is %s, not a regular file", kind)
	}
	return nil
}

// fileError drops the path that an *fs.PathError repeats, keeping errors.Is.
func fileError(path string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return fmt.Errorf("%s: %w", path, err)
}

// Parse decodes and validates a rules file; path names it in messages. It
// applies the defaults the types document. When the file is not valid it
// returns every problem found, in file order, one a line, each as
// "PATH:LINE: FIELD: what is wrong".
func Parse(path string, data []byte) (*File, error) {
	errs := &errList{path: path}
	if len(data) > maxFileSize {
		errs.add(0, "", "file is larger than 4 MiB (%d bytes)", maxFileSize)
		return nil, errs.err()
	}
	if line, msg := badCharacter(data); msg != "" {
		errs.add(line, "", "%s", msg)
		return nil, errs.err()
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil && err != io.EOF {
		errs.addSyntax(data, err)
		return nil, errs.err()
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == io.EOF:
	case err != nil:
		errs.addSyntax(data, err)
		return nil, errs.err()
	default:
		errs.add(next.Line, "", "a second YAML document; a rules file holds one")
	}

	f := &File{Path: path}
	pos := &filePos{}
	d := &decoder{errs: errs, sizes: make(map[*yaml.Node]int)}
	if len(doc.Content) > 0 {
		d.file(doc.Content[0], f, pos)
	}
	f.setDefaults()
	validate(f, pos, errs)
	if err := errs.err(); err != nil {
		return nil, err
	}
	return f, nil
}

// errList collects the problems of a file, to report them all at once.
type errList struct {
	path string
	errs []lineError
}

type lineError struct {
	line int // 0: the file as a whole
	msg  string
}

func (l *errList) add(line int, field, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if field != "" {
		msg = field + ": " + msg
	}
	l.errs = append(l.errs, lineError{line, msg})
}

// err returns the problems in file order, then those of the file as a
// whole, joined by newlines, or nil. The whole-file ones come last: they
// are the least specific ("no accounting or addresses entries" after
// "adresses: unknown key; did you mean addresses?").
func (l *errList) err() error {
	if len(l.errs) == 0 {
		return nil
	}
	order := func(line int) int {
		if line == 0 {
			return math.MaxInt
		}
		return line
	}
	sort.SliceStable(l.errs, func(i, j int) bool { return order(l.errs[i].line) < order(l.errs[j].line) })
	var errs []error
	for i, e := range l.errs {
		switch {
		case i == maxErrors:
			errs = append(errs, fmt.Errorf("%s: and %d more problems", l.path, len(l.errs)-i))
		case i > maxErrors:
		case e.line > 0:
			errs = append(errs, fmt.Errorf("%s:%d: %s", l.path, e.line, e.msg))
		default:
			errs = append(errs, fmt.Errorf("%s: %s", l.path, e.msg))
		}
	}
	return errors.Join(errs...)
}

// addSyntax reports an error of the YAML parser. Its "line N" is often
// not where the problem is: for most errors it is the 0-based line where
// the enclosing list or mapping starts. So the line reported is the first
// at which the file, cut after it, fails the same way: where the problem
// is, or where an unclosed bracket or quote opens.
func (l *errList) addSyntax(data []byte, err error) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	n := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, after, ok := strings.Cut(rest, ": "); ok {
			if v, err := strconv.Atoi(num); err == nil {
				n, msg = v, after
			}
		}
	}
	line := syntaxLine(data, err.Error(), n)
	if len(msg) > 200 {
		msg = strings.ToValidUTF8(msg[:200], "") + "…"
	}
	l.add(line, "", "syntax error: %s", msg)
}

// syntaxLine finds the first line after which the file, cut there, fails
// with msg; the whole file does. The problem is not before line n, the one
// the parser names, so the search goes up from there, in doubling steps and
// then by bisection. Past a budget of bytes parsed it settles for less.
func syntaxLine(data []byte, msg string, n int) int {
	var ends []int // offsets after each line break, then the end
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if r == '\r' && i+1 < len(data) && data[i+1] == '\n' {
			size = 2
		}
		if i += size; r == '\r' || r == '\n' || r == 0x85 || r == 0x2028 || r == 0x2029 {
			ends = append(ends, i)
		}
	}
	if len(ends) == 0 || ends[len(ends)-1] != len(data) {
		ends = append(ends, len(data))
	}
	n = min(max(n, 1), len(ends))
	budget := 2 * maxFileSize // a second or so; a small file is searched through
	fails := func(line int) bool {
		prefix := data[:ends[line-1]]
		budget -= len(prefix)
		err := parseYAML(prefix)
		return err != nil && err.Error() == msg
	}
	lo, hi := n, n
	for step := 1; hi < len(ends) && !fails(hi); step *= 2 {
		if budget < 0 {
			return n
		}
		lo, hi = hi+1, min(n+step, len(ends))
	}
	for lo < hi {
		if budget < 0 {
			return hi // fails like the whole file: near enough
		}
		mid := (lo + hi) / 2
		if fails(mid) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

// parseYAML parses every document of data, returning the first error.
func parseYAML(data []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml.Node
		if err := dec.Decode(&n); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
	}
}

// badCharacter finds the first byte sequence that is not UTF-8 or not a
// character YAML allows, which the parser reports without a line.
func badCharacter(data []byte) (line int, msg string) {
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			return lineAt(data, i), "not valid UTF-8; a rules file is UTF-8 text"
		case !printable(r):
			return lineAt(data, i), fmt.Sprintf("the character %U is not allowed in YAML", r)
		}
		i += size
	}
	return 0, ""
}

// printable is YAML's set of characters allowed in a stream.
func printable(r rune) bool {
	switch {
	case r == '\t' || r == '\n' || r == '\r' || r == 0x85:
		return true
	case r >= 0x20 && r <= 0x7e, r >= 0xa0 && r <= 0xd7ff, r >= 0xe000 && r <= 0xfffd, r >= 0x10000 && r <= 0x10ffff:
		return true
	}
	return false
}

// lineAt is the 1-based line of data[off], counting line breaks as the
// YAML parser does: CR LF, CR, LF, NEL, LS and PS.
func lineAt(data []byte, off int) int {
	line := 1
	for i := 0; i < off; {
		r, size := utf8.DecodeRune(data[i:])
		switch r {
		case '\r':
			if i+1 < off && data[i+1] == '\n' {
				size = 2
			}
			line++
		case '\n', 0x85, 0x2028, 0x2029:
			line++
		}
		i += size
	}
	return line
}

// filePos records where the values of a File were written, for messages.
// Validation works without it (the file's own lines are then used), so that
// a File can be validated again.
type filePos struct {
	table, count int  // lines of these values; 0: not written
	broken       bool // the file is not a mapping
	accounting   listPos
	addresses    listPos
	flows        int // line of the flows mapping
	exporters    listPos
}

// listPos is where a list of entries was written.
type listPos struct {
	line    int  // of the value; 0: not written
	broken  bool // not a list
	listed  int  // entries written, decoded or not
	entries []entryPos
}

type entryPos struct {
	index  int                  // in the accounting list as written
	values map[string]int       // line of each key's value
	items  map[string][]itemPos // per list key, one per decoded item
	scalar map[string]bool      // the list was written as a single value
	broken bool                 // some value did not decode
}

// itemPos is where a list item was written; a broken item is left out of
// the list, so its index there may differ from index.
type itemPos struct{ line, index int }

// decoder walks the YAML tree into a File, reporting what does not fit the
// schema. Meaning (defaults, ranges, overlaps) is validate's.
type decoder struct {
	errs    *errList
	aliased int                // values that aliases repeated, see maxAliased
	sizes   map[*yaml.Node]int // values of an anchor, once counted
	spent   bool               // aliases repeated too much: decode no more
}

// visit resolves an alias, counting the values it repeats against
// maxAliased, before any of them is decoded. It returns nil once the
// aliases have repeated too many.
func (d *decoder) visit(n *yaml.Node, field string) *yaml.Node {
	if d.spent {
		return nil
	}
	alias := n
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if alias == n {
		return n
	}
	if d.aliased += d.size(n); d.aliased > maxAliased {
		d.spent = true
		d.errs.add(alias.Line, field, "aliases repeat more than %d values by this one, at most %d are allowed: each use of an alias copies all the values of its anchor", maxAliased, maxAliased)
		return nil
	}
	return n
}

// size counts the values of n and below, an alias among them as one: the
// values it repeats count when the decoder gets to it. It saturates past
// maxAliased.
func (d *decoder) size(n *yaml.Node) int {
	if s, ok := d.sizes[n]; ok {
		return s
	}
	s := 1
	for _, c := range n.Content {
		if s += d.size(c); s > maxAliased {
			s = maxAliased + 1
			break
		}
	}
	d.sizes[n] = s
	return s
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// describe names what a node holds, for "expected X, got Y".
func describe(n *yaml.Node) string {
	switch {
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case isNull(n):
		return "nothing"
	case n.Kind == yaml.ScalarNode:
		return quote(n.Value)
	}
	return "an alias"
}

// quote quotes a value for a message, shortening a long one.
func quote(s string) string {
	const max = 64
	if len(s) > max {
		s = strings.ToValidUTF8(s[:max], "") + "…"
	}
	return strconv.Quote(s)
}

// keyName is a key as a part of a FIELD path.
func keyName(k string) string {
	for i := 0; i < len(k); i++ {
		if c := k[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return quote(k)
		}
	}
	if k == "" {
		return `""`
	}
	return k
}

// mapping calls fn for each key of a mapping, in order, after rejecting
// keys that are not plain strings and keys given twice.
func (d *decoder) mapping(n *yaml.Node, prefix string, keys []string, fn func(key string, keyLine int, val *yaml.Node)) {
	join := func(k string) string {
		if prefix == "" {
			return keyName(k)
		}
		return prefix + "." + keyName(k)
	}
	seen := make(map[string]int)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := d.visit(n.Content[i], prefix)
		if k == nil {
			return
		}
		switch {
		case k.Kind != yaml.ScalarNode:
			d.errs.add(k.Line, prefix, "expected a key, got %s", describe(k))
			continue
		case k.Tag == "!!merge":
			d.errs.add(k.Line, join(k.Value), "merge keys are not supported; write the keys out")
			continue
		}
		if first, ok := seen[k.Value]; ok {
			d.errs.add(k.Line, join(k.Value), "given twice, first at line %d", first)
			continue
		}
		seen[k.Value] = k.Line
		if !contains(keys, k.Value) {
			msg := "unknown key"
			if s := suggest(k.Value, keys); s != "" {
				msg += "; did you mean " + s + "?"
			}
			d.errs.add(k.Line, join(k.Value), "%s", msg)
			continue
		}
		fn(k.Value, k.Line, n.Content[i+1])
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// suggest returns the key closest to a misspelt one, if it is close.
func suggest(k string, keys []string) string {
	if len(k) > 32 {
		return ""
	}
	best, dist := "", 3
	for _, v := range keys {
		if d := editDistance(strings.ToLower(k), v); d < dist {
			best, dist = v, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// noValue reports a key written without a value (or with null): never a
// default, nor "any", but a mistake, such as a list left behind after its
// items were deleted. advice says what to write instead.
func (d *decoder) noValue(n *yaml.Node, field, advice string) {
	d.errs.add(n.Line, field, "no value; %s", advice)
}

// str decodes a string value. ok is false when the value is null or not a
// string, both reported.
func (d *decoder) str(n *yaml.Node, field string, emptyOK bool) (s string, line int, ok bool) {
	if n = d.visit(n, field); n == nil {
		return "", 0, false
	}
	if isNull(n) {
		d.noValue(n, field, "write one")
		return "", n.Line, false
	}
	if n.Kind != yaml.ScalarNode {
		d.errs.add(n.Line, field, "expected a string, got %s", describe(n))
		return "", n.Line, false
	}
	if n.Value == "" && !emptyOK {
		d.errs.add(n.Line, field, "empty; leave the key out for the default")
		return "", n.Line, false
	}
	return n.Value, n.Line, true
}

// list decodes a list value into its (unresolved) items. With scalarOK a
// single value stands for a list of one. ok is false when the value is
// null or not a list, both reported; advice, when set, says what to write
// instead of null.
func (d *decoder) list(n *yaml.Node, field string, scalarOK bool, advice string) (items []*yaml.Node, line int, scalar, ok bool) {
	if n = d.visit(n, field); n == nil {
		return nil, 0, false, false
	}
	if isNull(n) {
		if advice == "" {
			advice = "write a list, or leave the key out"
		}
		d.noValue(n, field, advice)
		return nil, n.Line, false, false
	}
	switch n.Kind {
	case yaml.SequenceNode:
		return n.Content, n.Line, false, true
	case yaml.ScalarNode:
		if scalarOK {
			return []*yaml.Node{n}, n.Line, true, true
		}
		msg := "expected a list, got " + describe(n)
		if simple(n.Value) {
			msg += "; write [" + n.Value + "]"
		}
		d.errs.add(n.Line, field, "%s", msg)
	default:
		d.errs.add(n.Line, field, "expected a list, got %s", describe(n))
	}
	return nil, n.Line, false, false
}

// simple reports whether s can be written in a YAML flow list as it is.
func simple(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("._-:/", c) >= 0) {
			return false
		}
	}
	return true
}

var fileKeys = []string{"table", "count", "accounting", "addresses", "flows"}

func (d *decoder) file(root *yaml.Node, f *File, pos *filePos) {
	if root = d.visit(root, ""); root == nil || isNull(root) {
		return
	}
	if root.Kind != yaml.MappingNode {
		d.errs.add(root.Line, "", "expected a mapping with the key accounting, got %s", describe(root))
		pos.broken = true
		return
	}
	d.mapping(root, "", fileKeys, func(key string, keyLine int, val *yaml.Node) {
		switch key {
		case "table":
			f.Table, pos.table, _ = d.str(val, key, false)
		case "count":
			f.Count, pos.count, _ = d.str(val, key, false)
		case "addresses":
			d.entryList(val, key, "a tag and networks", &pos.addresses, func(n *yaml.Node, name string) entryPos {
				e, p := d.addressEntry(n, name)
				f.Addresses = append(f.Addresses, e)
				return p
			})
		case "accounting":
			d.entryList(val, key, "at least a tag", &pos.accounting, func(n *yaml.Node, name string) entryPos {
				e, p := d.entry(n, name)
				f.Accounting = append(f.Accounting, e)
				return p
			})
		case "flows":
			d.flows(val, f, pos)
		}
	})
}

// entryList decodes a list of entry mappings (accounting, addresses),
// recording in lp where the list and its entries were written. entry
// decodes one mapping, adds it to the File, and returns its positions.
func (d *decoder) entryList(val *yaml.Node, field, want string, lp *listPos, entry func(n *yaml.Node, name string) entryPos) {
	items, line, _, ok := d.list(val, field, false, "")
	if !ok {
		lp.line, lp.broken = val.Line, line > 0
		return
	}
	lp.line, lp.listed = line, len(items)
	if len(items) > maxEntries {
		d.errs.add(line, field, "%d entries, at most %d are allowed", len(items), maxEntries)
		return
	}
	for i, item := range items {
		name := fmt.Sprintf("%s[%d]", field, i)
		n := d.visit(item, name)
		if n == nil {
			return
		}
		if n.Kind != yaml.MappingNode {
			d.errs.add(n.Line, name, "expected a mapping with %s, got %s", want, describe(n))
			continue
		}
		p := entry(n, name)
		p.index = i
		lp.entries = append(lp.entries, p)
	}
}

// entryFields decodes the mapping of one list entry: it calls decode for
// each of its keys with the key's full name (accounting[2].ports) and value,
// and records where each value is and whether any of them broke.
func (d *decoder) entryFields(n *yaml.Node, name string, keys []string, decode func(key, field string, val *yaml.Node, p *entryPos)) entryPos {
	p := entryPos{
		values: make(map[string]int),
		items:  make(map[string][]itemPos),
		scalar: make(map[string]bool),
	}
	d.mapping(n, name, keys, func(key string, _ int, val *yaml.Node) {
		before := len(d.errs.errs)
		if val.Line > 0 {
			p.values[key] = val.Line
		}
		decode(key, name+"."+key, val, &p)
		if len(d.errs.errs) > before {
			p.broken = true
		}
	})
	return p
}

var entryKeys = []string{"tag", "description", "source", "direction", "family", "hooks", "local", "remote", "remote_except", "protocol", "ports", "interface", "match"}

func (d *decoder) entry(n *yaml.Node, name string) (Entry, entryPos) {
	e := Entry{Line: n.Line}
	p := d.entryFields(n, name, entryKeys, func(key, field string, val *yaml.Node, p *entryPos) {
		str := func(dst *string, emptyOK bool) {
			*dst, _, _ = d.str(val, field, emptyOK)
		}
		switch key {
		case "tag":
			str(&e.Tag, false)
		case "description":
			str(&e.Description, true)
		case "source":
			str(&e.Source, false)
		case "direction":
			str(&e.Direction, false)
		case "family":
			str(&e.Family, false)
		case "interface":
			str(&e.Interface, false)
		case "match":
			str(&e.Match, false)
		case "hooks":
			e.Hooks = decodeItems(d, val, key, field, p, false, 0, "", func(s string) (string, error) { return s, nil })
		case "protocol":
			e.Protocol = decodeItems(d, val, key, field, p, true, maxRules,
				"leave protocol out, or write any", func(s string) (string, error) { return s, nil })
		case "local", "remote", "remote_except":
			max, advice := maxRules, "leave "+key+" out to match any address"
			if key == "remote_except" {
				max, advice = 0, ""
			}
			list := decodeItems(d, val, key, field, p, false, max, advice, parsePrefix)
			switch key {
			case "local":
				e.Local = list
			case "remote":
				e.Remote = list
			default:
				e.RemoteExcept = list
			}
		case "ports":
			e.Ports = decodeItems(d, val, key, field, p, false, maxRules, "leave ports out to count every port", parsePort)
		}
	})
	return e, p
}

// decodeItems decodes a list of strings, each through parse, recording
// where each was written. An item that does not parse is reported and left
// out. max bounds the length (0: no bound). advice, when set, rejects an
// empty list, and says what to write instead of it or of null. Hooks come
// back as an empty, not nil, list when written empty, so that they are not
// defaulted.
func decodeItems[T any](d *decoder, val *yaml.Node, key, field string, p *entryPos, scalarOK bool, max int, advice string, parse func(string) (T, error)) []T {
	nodes, line, scalar, ok := d.list(val, field, scalarOK, advice)
	if !ok {
		return nil
	}
	p.values[key], p.scalar[key] = line, scalar
	switch {
	case len(nodes) == 0 && advice != "":
		d.errs.add(line, field, "empty list; %s", advice)
		return nil
	case max > 0 && len(nodes) > max:
		d.errs.add(line, field, "%d items, but an entry may expand to at most %d rules per direction and hook", len(nodes), max)
		return nil
	}
	out := make([]T, 0, len(nodes))
	for i, item := range nodes {
		n := d.visit(item, field)
		if n == nil {
			break
		}
		// The name is formatted only for an error: lists can be long.
		name := func() string {
			if scalar {
				return field
			}
			return fmt.Sprintf("%s[%d]", field, i)
		}
		if n.Kind != yaml.ScalarNode || isNull(n) {
			d.errs.add(n.Line, name(), "expected a value, got %s", describe(n))
			continue
		}
		v, err := parse(n.Value)
		if err != nil {
			d.errs.add(n.Line, name(), "%v", err)
			continue
		}
		out = append(out, v)
		p.items[key] = append(p.items[key], itemPos{n.Line, i})
	}
	return out
}

// parsePrefix parses an address ("192.0.2.1", meaning /32, or /128 for
// IPv6) or a network ("192.0.2.0/24"). Host bits are validate's concern.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%s is not an IP network such as 192.0.2.0/24", quote(s))
		}
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%s is not an IP address or network", quote(s))
	}
	if a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%s has a zone; an address here has none", quote(s))
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// parsePort parses a port ("443") or an inclusive range ("8000-8080").
// Port 0 and reversed ranges are validate's concern.
func parsePort(s string) (PortRange, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	if !isRange {
		hi = lo
	}
	low, err := portNumber(lo, s)
	if err != nil {
		return PortRange{}, err
	}
	high, err := portNumber(hi, s)
	if err != nil {
		return PortRange{}, err
	}
	return PortRange{Low: low, High: high}, nil
}

func portNumber(t, s string) (uint16, error) {
	if t == "" || strings.Trim(t, "0123456789") != "" {
		return 0, fmt.Errorf("%s is not a port or a range of ports such as 8000-8080", quote(s))
	}
	v, err := strconv.ParseUint(t, 10, 16)
	if err != nil {
		if len(t) > 10 {
			t = t[:10] + "…"
		}
		return 0, fmt.Errorf("%s is out of range 1-65535", t)
	}
	return uint16(v), nil
}
