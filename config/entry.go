package config

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/ipacct/ipacct_exporter/tag"
)

const (
	// maxTagLen leaves room for the suffix the exporter adds, "_out" at
	// most, within tag.MaxLen.
	maxTagLen         = tag.MaxLen - len("_out")
	maxDescriptionLen = 128 // bytes
)

// checkTag returns what is wrong with a tag, or "". A tag is what the
// exporter writes into rule comments as =TAG_in= and =TAG_out=, so it must
// parse there, without a direction suffix of its own.
func checkTag(t string) string {
	for i := 0; i < len(t); {
		r, size := utf8.DecodeRuneInString(t[i:])
		if !(r < utf8.RuneSelf && (isLetter(byte(r)) || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-')) {
			return fmt.Sprintf("%s has the character %q; a tag is letters, digits, '_', '.' and '-'", quote(t), r)
		}
		i += size
	}
	// Suffixes count in any case, as tag.Parse reads them.
	for _, s := range []struct{ suffix, dir string }{{"_in", "in"}, {"_down", "in"}, {"_out", "out"}, {"_up", "out"}} {
		if n := len(t) - len(s.suffix); n >= 0 && strings.EqualFold(t[n:], s.suffix) {
			return fmt.Sprintf("%s ends in %s, a direction suffix, which the exporter adds; use direction: %s instead", quote(t), t[n:], s.dir)
		}
	}
	if len(t) > maxTagLen {
		return fmt.Sprintf("%s is %d characters long, at most %d are allowed (the exporter adds _in or _out)", quote(t), len(t), maxTagLen)
	}
	if p, err := tag.Parse("=" + t + "="); err != nil || p.Name != t || p.Direction != tag.None {
		return fmt.Sprintf("%s is not a valid tag", quote(t))
	}
	return ""
}

// maxCommentLen is the longest rule comment nft accepts.
const maxCommentLen = 128

// commentPrefix is the longest tag token the rule builder writes before
// the description.
func commentPrefix(tagName string) string { return "=" + tagName + "_out= " }

// checkEntryDescription reports what is wrong with an entry's description,
// which goes with its tag into the comment of each rule or set (object) it
// makes. Longer comments load into the kernel, but nft refuses them, and
// "nft list ruleset > f; nft -f f" must keep working.
func checkEntryDescription(r ref, tagName, desc, object string, errs *errList) {
	line, field := r.field("description")
	if msg := checkDescription(desc); msg != "" {
		errs.add(line, field, "%s", msg)
	} else if n := len(commentPrefix(tagName)) + len(desc); desc != "" && n > maxCommentLen {
		errs.add(line, field, "with the tag, the %s comment is %d bytes and nft allows %d: shorten the description to %d bytes",
			object, n, maxCommentLen, maxCommentLen-len(commentPrefix(tagName)))
	}
}

// checkDescription returns what is wrong with a description, or "". It
// goes into an nft rule comment, which is one line between double quotes.
func checkDescription(s string) string {
	if !utf8.ValidString(s) {
		return "not valid UTF-8"
	}
	if strings.ContainsRune(s, '"') {
		return fmt.Sprintf("%s has a '\"', which an nft comment cannot hold", quote(s))
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return fmt.Sprintf("%s has the control character %q; a description is one line", quote(s), r)
		}
	}
	if len(s) > maxDescriptionLen {
		return fmt.Sprintf("%d bytes long, at most %d are allowed", len(s), maxDescriptionLen)
	}
	return ""
}

// checkWord reports whether the value of key, one word of a closed
// vocabulary (source, direction, family), is one of its words.
func checkWord[T ~string](r ref, key string, v T, words []T, errs *errList) bool {
	if slices.Contains(words, v) {
		return true
	}
	line, field := r.field(key)
	errs.add(line, field, "%s", notOneOf(v, key, words))
	return false
}

// checkHookList reports whether a list of hooks is valid on its own.
func checkHookList(r ref, list []Hook, emptyMsg string, errs *errList) bool {
	if len(list) == 0 {
		line, field := r.field("hooks")
		errs.add(line, field, "%s", emptyMsg)
		return false
	}
	ok := true
	seen := make(map[Hook]int)
	for i, h := range list {
		if first, twice := seen[h]; twice {
			r.itemError(errs, "hooks", i, "%s is listed twice, also as %s", h, r.short("hooks", first))
			ok = false
		} else if !slices.Contains(Hooks, h) {
			r.itemError(errs, "hooks", i, "%s", notOneOf(h, "hook", Hooks))
			ok = false
		}
		seen[h] = i
	}
	return ok
}
