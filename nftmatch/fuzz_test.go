package nftmatch

import (
	"errors"
	"testing"
)

// FuzzParse: Parse never panics; its errors are *Error within the text;
// whatever it accepts compiles for each of its families, and prints and
// reparses to the same rules. Seeds: the tables of the other tests, and
// testdata/fuzz/FuzzParse (finds of earlier runs).
func FuzzParse(f *testing.F) {
	for _, tc := range accepted {
		f.Add(tc.in)
	}
	for _, tc := range rejected {
		f.Add(tc.in)
	}
	for _, tc := range equivalenceCases {
		f.Add(tc.text)
	}
	f.Fuzz(func(t *testing.T, text string) {
		m, err := Parse(text)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("%q: error %T, want *Error: %v", text, err, err)
			}
			if e.Offset < 0 || e.Offset > len(text) {
				t.Fatalf("%q: error at offset %d, outside the text: %v", text, e.Offset, err)
			}
			return
		}
		fams := m.Families()
		if len(fams) == 0 {
			t.Fatalf("%q: accepted, but for no family", text)
		}
		for _, fam := range fams {
			rules, err := m.Rules(fam)
			if err != nil {
				t.Fatalf("%q: accepted, but Rules(%s): %v", text, fam, err)
			}
			if len(rules) == 0 || len(rules) > MaxAlternatives {
				t.Fatalf("%q: %d rules", text, len(rules))
			}
		}
		checkRoundTrip(t, text)
	})
}
