package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

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

// quote quotes a value for a message, shortening a long one.
func quote[T ~string](v T) string {
	const max = 64
	s := string(v)
	if len(s) > max {
		s = strings.ToValidUTF8(s[:max], "") + "…"
	}
	return strconv.Quote(s)
}

// notOneOf is what to say of v, a value that is none of the words of a
// closed vocabulary (what): "x" is not a K; use a, b or c. The words come
// from the vocabulary itself, so the advice cannot fall behind it.
func notOneOf[T ~string](v T, what string, words []T) string {
	list := make([]string, len(words))
	for i, w := range words {
		list[i] = string(w)
	}
	last := len(list) - 1
	use := list[last]
	if last > 0 {
		use = strings.Join(list[:last], ", ") + " or " + use
	}
	return fmt.Sprintf("%s is not a %s; use %s", quote(v), what, use)
}

// ref says where an entry's values were written, for messages.
type ref struct {
	line int       // where the entry starts
	p    *entryPos // nil: everything is at line
	name string    // accounting[N], addresses[N]
}

// field is the line and name of a key's value.
func (r ref) field(key string) (int, string) {
	line := r.line
	if r.p != nil && r.p.values[key] > 0 {
		line = r.p.values[key]
	}
	return line, r.name + "." + key
}

// item is the line of item i of a list, its name, and its name within the
// entry ("local[1]"). A list written as a single value has no index.
func (r ref) item(key string, i int) (line int, field, short string) {
	line, idx := r.field(key)
	index := i
	if r.p != nil {
		if items := r.p.items[key]; i < len(items) {
			line, index = items[i].line, items[i].index
		}
		if r.p.scalar[key] {
			return line, idx, key
		}
	}
	short = fmt.Sprintf("%s[%d]", key, index)
	return line, r.name + "." + short, short
}

// itemError reports a problem of item i of a list.
func (r ref) itemError(errs *errList, key string, i int, format string, args ...any) {
	line, field, _ := r.item(key, i)
	errs.add(line, field, format, args...)
}

// short is the name of item i of a list within the entry.
func (r ref) short(key string, i int) string {
	_, _, short := r.item(key, i)
	return short
}

// countRules adds an entry's rules to those of the entries before it, and
// reports the entry that takes the table past maxFileRules.
func (r ref) countRules(before, rules int, errs *errList) int {
	if before <= maxFileRules && before+rules > maxFileRules {
		errs.add(r.line, r.name, "with this entry the table has %d rules, at most %d are allowed", before+rules, maxFileRules)
	}
	return before + rules
}

// explicit reports whether the file set key (a File without positions
// counts as setting everything).
func (r ref) explicit(key string) bool { return r.p == nil || r.p.values[key] > 0 }

// missing reports whether the file left out a key: a key written with an
// empty value or none is the decoder's to report.
func (r ref) missing(key string) bool { return r.p == nil || r.p.values[key] == 0 }
