package nftmatch

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/google/nftables/expr"
)

// exprText prints an expression as libnftnl does (nft --debug=netlink),
// so that a diff reads like nft's own.
func exprText(e expr.Any) string {
	switch e := e.(type) {
	case *expr.Meta:
		return fmt.Sprintf("[ meta load %s => reg %d ]", metaKeyNames[e.Key], e.Register)
	case *expr.Ct:
		return fmt.Sprintf("[ ct load %s => reg %d ]", ctKeyNames[e.Key], e.Register)
	case *expr.Payload:
		return fmt.Sprintf("[ payload load %db @ %s header + %d => reg %d ]", e.Len, baseNames[e.Base], e.Offset, e.DestRegister)
	case *expr.Cmp:
		return fmt.Sprintf("[ cmp %s reg %d %s ]", cmpNames[e.Op], e.Register, words(e.Data))
	case *expr.Bitwise:
		return fmt.Sprintf("[ bitwise reg %d = ( reg %d & %s ) ^ %s ]", e.DestRegister, e.SourceRegister, words(e.Mask), words(e.Xor))
	case *expr.Byteorder:
		op := "ntoh"
		if e.Op == expr.ByteorderHton {
			op = "hton"
		}
		return fmt.Sprintf("[ byteorder reg %d = %s(reg %d, %d, %d) ]", e.DestRegister, op, e.SourceRegister, e.Size, e.Len)
	case *expr.Range:
		return fmt.Sprintf("[ range %s reg %d %s %s ]", cmpNames[e.Op], e.Register, words(e.FromData), words(e.ToData))
	case *expr.Counter:
		return fmt.Sprintf("[ counter pkts %d bytes %d ]", e.Packets, e.Bytes)
	}
	return fmt.Sprintf("[ %T %+v ]", e, e)
}

func exprsText(x []expr.Any) string {
	var lines []string
	for _, e := range x {
		lines = append(lines, "  "+exprText(e))
	}
	return strings.Join(lines, "\n")
}

// words prints register data as libnftnl does: 32-bit words in host order.
func words(b []byte) string {
	var out []string
	for i := 0; i < len(b); i += 4 {
		w := make([]byte, 4)
		copy(w, b[i:])
		out = append(out, fmt.Sprintf("0x%08x", binary.NativeEndian.Uint32(w)))
	}
	return strings.Join(out, " ")
}

var metaKeyNames = map[expr.MetaKey]string{
	expr.MetaKeyLEN: "len", expr.MetaKeyPROTOCOL: "protocol", expr.MetaKeyPRIORITY: "priority",
	expr.MetaKeyMARK: "mark", expr.MetaKeyIIFNAME: "iifname", expr.MetaKeyOIFNAME: "oifname",
	expr.MetaKeySKUID: "skuid", expr.MetaKeySKGID: "skgid", expr.MetaKeyNFPROTO: "nfproto",
	expr.MetaKeyL4PROTO: "l4proto", expr.MetaKeyPKTTYPE: "pkttype", expr.MetaKeyCPU: "cpu",
}

var ctKeyNames = map[expr.CtKey]string{
	expr.CtKeySTATE: "state", expr.CtKeyDIRECTION: "direction", expr.CtKeySTATUS: "status", expr.CtKeyMARK: "mark",
}

var baseNames = map[expr.PayloadBase]string{
	expr.PayloadBaseLLHeader: "link", expr.PayloadBaseNetworkHeader: "network", expr.PayloadBaseTransportHeader: "transport",
}

var cmpNames = map[expr.CmpOp]string{
	expr.CmpOpEq: "eq", expr.CmpOpNeq: "neq", expr.CmpOpLt: "lt", expr.CmpOpLte: "lte", expr.CmpOpGt: "gt", expr.CmpOpGte: "gte",
}
