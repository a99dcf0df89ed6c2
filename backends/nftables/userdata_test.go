package nftables

import (
	"testing"

	"github.com/google/nftables/userdata"
)

func TestCommentFromUserData(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		want string
		ok   bool
	}{
		{"nft comment", userdata.AppendString(nil, userdata.TypeComment, "=a= b"), "=a= b", true},
		{"after another entry", userdata.AppendString(userdata.AppendUint32(nil, 3, 7), userdata.TypeComment, "=x="), "=x=", true},
		{"no comment", userdata.AppendUint32(nil, 3, 7), "", false},
		{"empty", nil, "", false},
		{"length past the end", []byte{0, 200, 'a'}, "", false},
		{"truncated header", []byte{0}, "", false},
		{"no terminating NUL", []byte{0, 3, 'a', 'b', 'c'}, "abc", true},
	} {
		got, ok := commentFromUserData(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: got %q, %v; want %q, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

func FuzzCommentFromUserData(f *testing.F) {
	f.Add(userdata.AppendString(nil, userdata.TypeComment, "=web4_down= x"))
	f.Add([]byte{0, 200, 'a'})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, ok := commentFromUserData(b)
		if !ok && c != "" {
			t.Errorf("no comment but %q", c)
		}
		if len(c) > len(b) {
			t.Errorf("comment longer than its user data")
		}
	})
}

func FuzzParseCounterObject(f *testing.F) {
	f.Add([]byte{1, 0, 0, 0, 6, 0, 1, 0, 't', 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = parseCounterObject(b) // must not panic
	})
}
