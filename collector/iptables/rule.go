package iptables

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// rule is what the exporter needs of one "-A" line of `iptables -v -S`.
type rule struct {
	comment   string // the --comment values, joined by a space
	commented bool   // the rule has at least one comment match
	packets   uint64
	bytes     uint64
	// content is the line without its counters: what the rule is.
	content string
}

// errUnterminated means the text ended inside a quoted string. iptables
// prints a newline of a comment as it is, so such a rule goes on in the next
// line of the output.
var errUnterminated = errors.New("unterminated quoted string")

// printsRawValue tells the options that print their value with printf("%s")
// instead of xtables_save_string, so that a value may start with '"' without
// being quoted: `-i "x` is the interface named `"x`. Such values hold no
// space. Options missing here are harmless unless their value starts with '"'.
func printsRawValue(option string) bool {
	switch option {
	case "-i", "-o", "--physdev-in", "--physdev-out", "--match-set",
		"--name", // recent
		"--hashlimit-name", "--rateest", "--rateest1", "--rateest2", "--nfacct-name":
		return true
	}
	return false
}

// parseRules parses the lines of `iptables -v -S CHAIN`, in order. A rule
// whose comment holds a newline spans lines: it is joined back into one.
// Other lines hold no rule: -P and -N lines, or the rest of a target option
// with a newline after the counters (LOG refuses them; others may not).
//
// go-iptables rewrites any line that starts with "[PKTS:BYTES] " (its fix for
// iptables-nft output). Only the continuation of a multi-line comment can
// start so under iptables-legacy; the counters are still the rule's, since
// the first -c wins, but that bit of the comment is lost.
func parseRules(lines []string) ([]rule, error) {
	var rules []rule
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if !strings.HasPrefix(line, "-A ") {
			continue
		}
		for {
			r, err := parseRule(line)
			if errors.Is(err, errUnterminated) && i+1 < len(lines) {
				i++
				line += "\n" + lines[i]
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("parsing rule %q: %w", line, err)
			}
			rules = append(rules, r)
			break
		}
	}
	return rules, nil
}

// parseRule parses one rule as `iptables -v -S` prints it:
//
//	-A CHAIN [matches] -c PACKETS BYTES [-j TARGET [target options]]
//
// The counters come after the last match and before the target, so the
// comments are before them and nothing after them is read: target options
// and a jump to a chain whose name holds a '"' need not parse.
func parseRule(line string) (rule, error) {
	sc := scanner{text: line}
	if w, _, _ := sc.next(true); w != "-A" {
		return rule{}, errors.New(`rule does not start with "-A"`)
	}
	// Chain names cannot hold white space and are printed raw.
	if _, ok, _ := sc.next(true); !ok {
		return rule{}, errors.New("rule has no chain name")
	}
	var r rule
	var comments []string
	inCommentMatch := false
	for {
		before := sc.pos
		w, ok, err := sc.next(false)
		if err != nil {
			return rule{}, err
		}
		if !ok {
			return rule{}, errors.New("rule has no -c counters")
		}
		switch {
		case w == "-m":
			name, _, _ := sc.next(true)
			inCommentMatch = name == "comment"
		case w == "--comment" && inCommentMatch:
			c, ok, err := sc.next(false)
			if err != nil {
				return rule{}, err
			}
			if !ok {
				return rule{}, errors.New("--comment has no value")
			}
			comments = append(comments, c)
		case printsRawValue(w):
			sc.next(true)
		case w == "-c":
			// A raw value "-c" of some match is not followed by two
			// numbers; the counters are.
			mark := sc.pos
			p, _, _ := sc.next(true)
			b, _, _ := sc.next(true)
			packets, perr := strconv.ParseUint(p, 10, 64)
			bytes, berr := strconv.ParseUint(b, 10, 64)
			if perr != nil || berr != nil {
				sc.pos = mark
				continue
			}
			r.packets, r.bytes = packets, bytes
			r.content = line[:before] + line[sc.pos:]
			r.comment, r.commented = strings.Join(comments, " "), len(comments) > 0
			return r, nil
		}
	}
}

// scanner splits a line of iptables-save syntax into words.
type scanner struct {
	text string
	pos  int
}

// next returns the next word, and false at the end of the text. Words are
// separated by spaces. A word that starts with '"' is a string quoted as
// xtables_save_string writes it: inside, a backslash escapes the byte after
// it (iptables escapes the double quote, the backslash and the single
// quote), and everything else is literal, non-ASCII and control bytes
// included. With raw, the word is taken as it is, quotes and all.
func (sc *scanner) next(raw bool) (string, bool, error) {
	for sc.pos < len(sc.text) && sc.text[sc.pos] == ' ' {
		sc.pos++
	}
	if sc.pos == len(sc.text) {
		return "", false, nil
	}
	if raw || sc.text[sc.pos] != '"' {
		start := sc.pos
		for sc.pos < len(sc.text) && sc.text[sc.pos] != ' ' {
			sc.pos++
		}
		return sc.text[start:sc.pos], true, nil
	}
	var word strings.Builder
	for i := sc.pos + 1; i < len(sc.text); i++ {
		switch c := sc.text[i]; c {
		case '\\':
			i++
			if i == len(sc.text) {
				return "", false, errUnterminated
			}
			word.WriteByte(sc.text[i])
		case '"':
			if i+1 < len(sc.text) && sc.text[i+1] != ' ' {
				return "", false, fmt.Errorf("text after the closing quote at byte %d", i)
			}
			sc.pos = i + 1
			return word.String(), true, nil
		default:
			word.WriteByte(c)
		}
	}
	return "", false, errUnterminated
}
