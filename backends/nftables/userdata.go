package nftables

import "bytes"

// udataComment is the type of the comment entry in rule and object user
// data (NFTNL_UDATA_RULE_COMMENT, NFTNL_UDATA_OBJ_COMMENT).
const udataComment = 0

// commentFromUserData returns the comment held in a rule's or object's user
// data: a list of type, length, value entries, the comment NUL-terminated.
// User data is whatever the tool that wrote the rule put there, so a
// malformed list ends the search instead of panicking (google/nftables'
// userdata.Get slices before it checks the length).
func commentFromUserData(b []byte) (string, bool) {
	for len(b) >= 2 {
		typ, n := b[0], int(b[1])
		if len(b) < 2+n {
			return "", false
		}
		if typ == udataComment {
			v, _ := bytes.CutSuffix(b[2:2+n], []byte{0})
			return string(v), true
		}
		b = b[2+n:]
	}
	return "", false
}
