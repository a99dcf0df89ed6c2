package flow

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/netsampler/goflow2/v2/decoders/netflow"
	"github.com/netsampler/goflow2/v2/decoders/netflowlegacy"
)

// Flow is one flow record, its counts multiplied by the sampling rate.
type Flow struct {
	Src, Dst         netip.Addr
	SrcPort, DstPort uint16
	Proto            uint8
	// In and Out are the input and output interface indexes (SNMP
	// ifIndex); 0 when the record has none.
	In, Out        uint32
	Packets, Bytes uint64
}

// Bounds of what one router can make the collector remember. A router
// uses a handful of templates (softflowd two, a Cisco one per record type
// and observation domain); these bound what a hostile sender can make us
// keep: at most maxTemplates × maxTemplateFields × 12 bytes, about
// 400 KiB a router.
const (
	maxTemplates      = 256 // per router, over its observation domains
	maxTemplateFields = 128 // per template; IPFIX records have a few dozen
	maxDomains        = 256 // observation domains with a sampling rate, per router
	maxSamplers       = 64  // sampler ids with a rate, per domain
)

// Field types of NetFlow v9 and IPFIX (the IANA IPFIX registry; v9 uses the
// same numbers for these).
const (
	fieldBytes          = 1
	fieldPackets        = 2
	fieldProto          = 4
	fieldSrcPort        = 7
	fieldSrc4           = 8
	fieldInput          = 10
	fieldDstPort        = 11
	fieldDst4           = 12
	fieldOutput         = 14
	fieldSrc6           = 27
	fieldDst6           = 28
	fieldSamplingIntv   = 34  // v9 SAMPLING_INTERVAL, IPFIX samplingInterval
	fieldSamplerID      = 48  // v9 FLOW_SAMPLER_ID, IPFIX samplerId
	fieldSamplerIntv    = 50  // v9 FLOW_SAMPLER_RANDOM_INTERVAL, IPFIX samplerRandomInterval
	fieldSelectorID     = 302 // IPFIX selectorId
	fieldSamplingPkts   = 305 // IPFIX samplingPacketInterval
	fieldSamplingSpace  = 306 // IPFIX samplingPacketSpace
	reversePEN          = 29305
	ipfixHeaderLen      = 16
	v9HeaderLen         = 20
	v5HeaderLen         = 24
	v5RecordLen         = 48
	setHeaderLen        = 4
	maxVariableFieldLen = 0xffff
)

var (
	errTooManyTemplates = errors.New("too many templates")
	errTemplateFields   = fmt.Errorf("a template has more than %d fields", maxTemplateFields)
	errEmptyTemplate    = errors.New("a template whose records take no bytes")
)

// routerDecoder is what the collector remembers of one router: its
// templates, the sampling rates its options records announced, and what
// scaling by those rates left over.
type routerDecoder struct {
	templates templates
	sampling  map[uint32]*domainSampling // by samplingKey
	carries   carries
}

// domainSampling is the sampling announced in an observation domain's
// options records: per sampler id, and the last one announced.
type domainSampling struct {
	last      rate
	bySampler map[uint64]rate
}

// decoded is the outcome of one datagram.
type decoded struct {
	flows           []Flow
	unknownTemplate int // data sets whose template is not known (yet)
}

// decode decodes a datagram with goflow2's decoders, appending its flows
// to out.flows. A datagram that is malformed in any way is an error and
// gives no flows, even if a part of it decoded: it was damaged or forged,
// and what it says cannot be trusted.
func (d *routerDecoder) decode(data []byte, out *decoded) error {
	if len(data) < 2 {
		return errors.New("shorter than a version number")
	}
	switch v := binary.BigEndian.Uint16(data); v {
	case 5:
		return decodeV5(data, out)
	case 9, 10:
		return d.decodeTemplated(v, data, out)
	default:
		return fmt.Errorf("version %d; NetFlow v5, v9 and IPFIX (10) are supported", v)
	}
}

func decodeV5(data []byte, out *decoded) error {
	if len(data) < v5HeaderLen {
		return errors.New("NetFlow v5: truncated header")
	}
	// goflow2 allocates the records the header announces before reading
	// them, and leaves zero records where the datagram ends early: check
	// the length first.
	count := int(binary.BigEndian.Uint16(data[2:]))
	if want := v5HeaderLen + count*v5RecordLen; len(data) != want {
		return fmt.Errorf("NetFlow v5: %d records need %d bytes, the datagram has %d", count, want, len(data))
	}
	var p netflowlegacy.PacketNetFlowV5
	if err := netflowlegacy.DecodeMessageVersion(bytes.NewBuffer(data), &p); err != nil {
		return err
	}
	// The low 14 bits are the interval, the high two the mode. Routers
	// that do not sample send 0.
	rate := uint64(p.SamplingInterval & 0x3fff)
	if rate == 0 {
		rate = 1
	}
	for _, r := range p.Records {
		out.flows = append(out.flows, Flow{
			Src:     v4(uint32(r.SrcAddr)),
			Dst:     v4(uint32(r.DstAddr)),
			SrcPort: r.SrcPort,
			DstPort: r.DstPort,
			Proto:   r.Proto,
			In:      uint32(r.Input),
			Out:     uint32(r.Output),
			Packets: satMul(uint64(r.DPkts), rate),
			Bytes:   satMul(uint64(r.DOctets), rate),
		})
	}
	return nil
}

func v4(a uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], a)
	return netip.AddrFrom4(b)
}

// checkFraming checks the lengths of a v9 or IPFIX message and its sets,
// which goflow2 trusts: it reads a set that runs past the datagram's end
// as if it were shorter, so a truncated datagram would count in part.
func checkFraming(version uint16, data []byte) error {
	name, off := "NetFlow v9", v9HeaderLen
	if version == 10 {
		name, off = "IPFIX", ipfixHeaderLen
	}
	if len(data) < off {
		return fmt.Errorf("%s: truncated header", name)
	}
	if version == 10 {
		if n := int(binary.BigEndian.Uint16(data[2:])); n != len(data) {
			return fmt.Errorf("IPFIX: the header says %d bytes, the datagram has %d", n, len(data))
		}
	}
	for off < len(data) {
		if len(data)-off < setHeaderLen {
			return fmt.Errorf("%s: %d bytes after the last set", name, len(data)-off)
		}
		n := int(binary.BigEndian.Uint16(data[off+2:]))
		if n < setHeaderLen || n > len(data)-off {
			return fmt.Errorf("%s: a set of %d bytes at offset %d, the datagram has %d", name, n, off, len(data))
		}
		if err := checkTemplateSizes(version, binary.BigEndian.Uint16(data[off:]), data[off+setHeaderLen:off+n]); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		off += n
	}
	return nil
}

// checkTemplateSizes refuses a template set whose records announce more
// fields than a template may have. goflow2 allocates room for the fields a
// record announces before reading them: 65535 of them, 768 KiB, for a
// datagram of a few bytes.
func checkTemplateSizes(version, id uint16, body []byte) error {
	for len(body) >= 4 {
		a, b := int(binary.BigEndian.Uint16(body[2:])), 0
		if len(body) >= 6 {
			b = int(binary.BigEndian.Uint16(body[4:]))
		}
		var fields, size int
		switch {
		case version == 9 && id == 0, version == 10 && id == 2:
			fields, size = a, 4
			// Each field is 4 bytes, 8 with an enterprise number.
			for i, o := 0, 4; i < a && o+4 <= len(body); i++ {
				if version == 10 && body[o]&0x80 != 0 {
					o += 4
				}
				o += 4
				size = o
			}
		case version == 9 && id == 1:
			fields, size = a/4+b/4, 6+a+b // scope and option lengths in bytes
		case version == 10 && id == 3:
			fields, size = a, 6 // field count, then scope field count
			for i, o := 0, 6; i < a && o+4 <= len(body); i++ {
				if body[o]&0x80 != 0 {
					o += 4
				}
				o += 4
				size = o
			}
		default:
			return nil // a data set
		}
		if fields > maxTemplateFields {
			return errTemplateFields
		}
		if size >= len(body) {
			return nil
		}
		body = body[size:]
	}
	return nil
}

func (d *routerDecoder) decodeTemplated(version uint16, data []byte, out *decoded) error {
	if err := checkFraming(version, data); err != nil {
		return err
	}
	if d.templates.m == nil {
		d.templates.m = make(map[uint64]any)
	}
	var p9 netflow.NFv9Packet
	var pfix netflow.IPFIXPacket
	err := netflow.DecodeMessageVersion(bytes.NewBuffer(data), &d.templates, &p9, &pfix)
	if err != nil && !errors.Is(err, netflow.ErrorTemplateNotFound) {
		return err
	}
	sets, domain := p9.FlowSets, p9.SourceId
	if version == 10 {
		sets, domain = pfix.FlowSets, pfix.ObservationDomainId
	}
	key := samplingKey(version, domain)
	// Options first: a datagram may announce the rate of its own flows.
	for _, s := range sets {
		if o, ok := s.(netflow.OptionsDataFlowSet); ok {
			for _, r := range o.Records {
				d.learnSampling(key, r)
			}
		}
	}
	for _, s := range sets {
		switch s := s.(type) {
		case netflow.DataFlowSet:
			for _, r := range s.Records {
				d.appendRecord(key, r.Values, out)
			}
		case netflow.RawFlowSet:
			out.unknownTemplate++
		}
	}
	return nil
}

// samplingKey names an observation domain (v9: source id) of one
// protocol version.
func samplingKey(version uint16, domain uint32) uint32 {
	// Observation domains are 32 bits; fold the version in so that v9 and
	// IPFIX of one router do not share a rate. A clash of two folded keys
	// can only mix up two rates of one router.
	return domain ^ uint32(version)<<24
}

// learnSampling keeps the rate an options record announces: samplingInterval
// or samplerRandomInterval (one packet in N), or samplingPacketInterval and
// samplingPacketSpace (N packets taken, M skipped), per sampler id.
func (d *routerDecoder) learnSampling(key uint32, r netflow.OptionsDataRecord) {
	var interval, taken, skipped, sampler uint64
	var haveSampler bool
	for _, list := range [][]netflow.DataField{r.ScopesValues, r.OptionsValues} {
		for _, f := range list {
			if f.PenProvided {
				continue
			}
			v, ok := uintValue(f.Value)
			if !ok {
				continue
			}
			switch f.Type {
			case fieldSamplingIntv, fieldSamplerIntv:
				interval = v
			case fieldSamplingPkts:
				taken = v
			case fieldSamplingSpace:
				skipped = v
			case fieldSamplerID, fieldSelectorID:
				sampler, haveSampler = v, true
			}
		}
	}
	announced, ok := announcedRate(interval, taken, skipped)
	if !ok {
		return
	}
	if d.sampling == nil {
		d.sampling = make(map[uint32]*domainSampling)
	}
	ds := d.sampling[key]
	if ds == nil {
		if len(d.sampling) >= maxDomains {
			return
		}
		ds = &domainSampling{}
		d.sampling[key] = ds
	}
	ds.last = announced
	if haveSampler {
		if ds.bySampler == nil {
			ds.bySampler = make(map[uint64]rate)
		}
		if _, ok := ds.bySampler[sampler]; ok || len(ds.bySampler) < maxSamplers {
			ds.bySampler[sampler] = announced
		}
	}
}

// appendRecord turns a data record into flows: one, or two for an IPFIX
// biflow (RFC 5103), whose reverse counters go the other way.
func (d *routerDecoder) appendRecord(key uint32, values []netflow.DataField, out *decoded) {
	var f Flow
	var interval, taken, skipped, sampler, revBytes, revPackets uint64
	var haveSampler bool
	for _, v := range values {
		b, _ := v.Value.([]byte)
		if v.PenProvided {
			if v.Pen == reversePEN {
				switch v.Type {
				case fieldBytes:
					revBytes, _ = uintValue(b)
				case fieldPackets:
					revPackets, _ = uintValue(b)
				}
			}
			continue
		}
		switch v.Type {
		case fieldBytes:
			f.Bytes, _ = uintValue(b)
		case fieldPackets:
			f.Packets, _ = uintValue(b)
		case fieldProto:
			if len(b) == 1 {
				f.Proto = b[0]
			}
		case fieldSrcPort:
			f.SrcPort = uint16(uintOf(b, 2))
		case fieldDstPort:
			f.DstPort = uint16(uintOf(b, 2))
		case fieldInput:
			f.In = uint32(uintOf(b, 4))
		case fieldOutput:
			f.Out = uint32(uintOf(b, 4))
		case fieldSrc4, fieldSrc6:
			if a, ok := netip.AddrFromSlice(b); ok && (len(b) == 4) == (v.Type == fieldSrc4) {
				f.Src = a
			}
		case fieldDst4, fieldDst6:
			if a, ok := netip.AddrFromSlice(b); ok && (len(b) == 4) == (v.Type == fieldDst4) {
				f.Dst = a
			}
		case fieldSamplingIntv, fieldSamplerIntv:
			interval, _ = uintValue(b)
		case fieldSamplingPkts:
			taken, _ = uintValue(b)
		case fieldSamplingSpace:
			skipped, _ = uintValue(b)
		case fieldSamplerID, fieldSelectorID:
			sampler, haveSampler = uintOf(b, 8), true
		}
	}
	// The record's own rate, else its sampler's, else the domain's last.
	r, ok := announcedRate(interval, taken, skipped)
	if ds := d.sampling[key]; !ok && ds != nil {
		if byID, ok := ds.bySampler[sampler]; ok && haveSampler {
			r = byID
		} else {
			r = ds.last
		}
	}
	if r.num == 0 {
		r = unsampled
	}
	c := d.carries.of(r)
	f.Packets, f.Bytes = c.scale(f.Packets, f.Bytes, r)
	out.flows = append(out.flows, f)
	if revBytes > 0 || revPackets > 0 {
		rev := Flow{
			Src: f.Dst, Dst: f.Src, SrcPort: f.DstPort, DstPort: f.SrcPort, Proto: f.Proto,
			In: f.Out, Out: f.In,
		}
		rev.Packets, rev.Bytes = c.scale(revPackets, revBytes, r)
		out.flows = append(out.flows, rev)
	}
}

// uintValue reads an unsigned big-endian number of 1 to 8 bytes (IPFIX
// allows reduced-size encoding of counters).
func uintValue(v any) (uint64, bool) {
	b, _ := v.([]byte)
	if len(b) == 0 || len(b) > 8 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		n = n<<8 | uint64(c)
	}
	return n, true
}

// uintOf reads a number of at most max bytes, 0 if it is longer.
func uintOf(b []byte, max int) uint64 {
	if len(b) > max {
		return 0
	}
	n, _ := uintValue(b)
	return n
}

func satAdd(a, b uint64) uint64 {
	if s := a + b; s >= a {
		return s
	}
	return ^uint64(0)
}

func satMul(a, b uint64) uint64 {
	if a == 0 || b == 0 {
		return 0
	}
	if p := a * b; p/b == a {
		return p
	}
	return ^uint64(0)
}

// templates is goflow2's NetFlowTemplateSystem for one router, bounded,
// and refusing templates that goflow2 would loop on.
type templates struct {
	m map[uint64]any
}

func templateKey(version uint16, domain uint32, id uint16) uint64 {
	return uint64(version)<<48 | uint64(domain)<<16 | uint64(id)
}

// AddTemplate stores a template, replacing one of the same id (a refresh
// or a redefinition). An IPFIX template with no fields withdraws the id.
func (t *templates) AddTemplate(version uint16, domain uint32, id uint16, template any) error {
	key := templateKey(version, domain, id)
	var groups [][]netflow.Field
	switch tp := template.(type) {
	case netflow.TemplateRecord:
		if len(tp.Fields) == 0 {
			delete(t.m, key)
			return nil
		}
		groups = [][]netflow.Field{tp.Fields}
	case netflow.NFv9OptionsTemplateRecord:
		groups = [][]netflow.Field{tp.Scopes, tp.Options}
	case netflow.IPFIXOptionsTemplateRecord:
		groups = [][]netflow.Field{tp.Scopes, tp.Options}
	default:
		return fmt.Errorf("unknown template type %T", template)
	}
	fields, size := 0, 0
	for _, g := range groups {
		fields += len(g)
		for _, f := range g {
			if f.Length == maxVariableFieldLen {
				size++ // at least its length byte
			} else {
				size += int(f.Length)
			}
		}
	}
	switch {
	case fields > maxTemplateFields:
		return errTemplateFields
	case size == 0:
		// goflow2 would decode records of no bytes forever.
		return errEmptyTemplate
	}
	if _, ok := t.m[key]; !ok && len(t.m) >= maxTemplates {
		return errTooManyTemplates
	}
	t.m[key] = template
	return nil
}

// GetTemplate returns netflow.ErrorTemplateNotFound for an unknown id,
// which goflow2 turns into a RawFlowSet: the data set is skipped, the rest
// of the datagram decoded.
func (t *templates) GetTemplate(version uint16, domain uint32, id uint16) (any, error) {
	if tp, ok := t.m[templateKey(version, domain, id)]; ok {
		return tp, nil
	}
	return nil, netflow.ErrorTemplateNotFound
}

func (t *templates) RemoveTemplate(version uint16, domain uint32, id uint16) (any, error) {
	key := templateKey(version, domain, id)
	tp, ok := t.m[key]
	if !ok {
		return nil, netflow.ErrorTemplateNotFound
	}
	delete(t.m, key)
	return tp, nil
}

func (t *templates) GetTemplates() netflow.FlowBaseTemplateSet {
	out := make(netflow.FlowBaseTemplateSet, len(t.m))
	for k, v := range t.m {
		out[k] = v
	}
	return out
}
