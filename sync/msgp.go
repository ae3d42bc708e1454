package sync

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// The hot path of replication (flow entries) is encoded and parsed by hand,
// in plain msgpack: appending to a byte slice and walking one costs a fifth
// of what the library's Encoder/Decoder do per value, with no allocation.
// The library decodes the same bytes in tests (wire_test.go), which keeps
// the two in step.

func appendUint(b []byte, v uint64) []byte {
	switch {
	case v < 0x80:
		return append(b, byte(v))
	case v <= 0xff:
		return append(b, 0xcc, byte(v))
	case v <= 0xffff:
		return append(b, 0xcd, byte(v>>8), byte(v))
	case v <= 0xffffffff:
		return append(b, 0xce, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
	}
	return binary.BigEndian.AppendUint64(append(b, 0xcf), v)
}

func appendArrayLen(b []byte, n int) []byte {
	if n < 16 {
		return append(b, 0x90|byte(n))
	}
	return append(b, 0xdc, byte(n>>8), byte(n))
}

func appendNil(b []byte) []byte { return append(b, 0xc0) }

func appendBin(b []byte, p []byte) []byte {
	return append(append(b, 0xc4, byte(len(p))), p...)
}

func appendStr(b []byte, s string) []byte {
	if len(s) < 32 {
		return append(append(b, 0xa0|byte(len(s))), s...)
	}
	return append(append(b, 0xd9, byte(len(s))), s...)
}

func appendAddr(b []byte, a netip.Addr) []byte {
	if a.Is4() {
		v := a.As4()
		return appendBin(b, v[:])
	}
	v := a.As16()
	return appendBin(b, v[:])
}

// parser walks msgpack values in a byte slice. Errors are sticky: after the
// first, every read returns zero values and err stays set.
type parser struct {
	b   []byte
	err error
}

func (p *parser) fail(what string) {
	if p.err == nil {
		p.err = fmt.Errorf("%w: %s", errWire, what)
	}
	p.b = nil
}

func (p *parser) need(n int) bool {
	if len(p.b) < n {
		p.fail("truncated")
		return false
	}
	return true
}

func (p *parser) uint(max uint64) uint64 {
	if !p.need(1) {
		return 0
	}
	c := p.b[0]
	var v uint64
	switch {
	case c < 0x80:
		v, p.b = uint64(c), p.b[1:]
	case c == 0xcc && p.need(2):
		v, p.b = uint64(p.b[1]), p.b[2:]
	case c == 0xcd && p.need(3):
		v, p.b = uint64(binary.BigEndian.Uint16(p.b[1:])), p.b[3:]
	case c == 0xce && p.need(5):
		v, p.b = uint64(binary.BigEndian.Uint32(p.b[1:])), p.b[5:]
	case c == 0xcf && p.need(9):
		v, p.b = binary.BigEndian.Uint64(p.b[1:]), p.b[9:]
	default:
		p.fail("not an unsigned integer")
		return 0
	}
	if v > max {
		p.fail("value out of range")
		return 0
	}
	return v
}

func (p *parser) arrayLen() int {
	if !p.need(1) {
		return 0
	}
	c := p.b[0]
	switch {
	case c&0xf0 == 0x90:
		p.b = p.b[1:]
		return int(c & 0x0f)
	case c == 0xdc && p.need(3):
		n := int(binary.BigEndian.Uint16(p.b[1:]))
		p.b = p.b[3:]
		return n
	case c == 0xdd && p.need(5):
		n := binary.BigEndian.Uint32(p.b[1:])
		p.b = p.b[5:]
		if n > maxEntries {
			p.fail("array too long")
			return 0
		}
		return int(n)
	}
	p.fail("not an array")
	return 0
}

// isNil consumes a nil if one is next.
func (p *parser) isNil() bool {
	if len(p.b) > 0 && p.b[0] == 0xc0 {
		p.b = p.b[1:]
		return true
	}
	return false
}

// bin returns a byte string (bin8/16/32 or, leniently, str) without copying.
func (p *parser) bin() []byte {
	if !p.need(1) {
		return nil
	}
	c := p.b[0]
	n, h := 0, 0
	switch {
	case c == 0xc4 || c == 0xd9:
		if !p.need(2) {
			return nil
		}
		n, h = int(p.b[1]), 2
	case c == 0xc5 || c == 0xda:
		if !p.need(3) {
			return nil
		}
		n, h = int(binary.BigEndian.Uint16(p.b[1:])), 3
	case c == 0xc6 || c == 0xdb:
		if !p.need(5) {
			return nil
		}
		n, h = int(binary.BigEndian.Uint32(p.b[1:])), 5
	case c&0xe0 == 0xa0:
		n, h = int(c&0x1f), 1
	default:
		p.fail("not a byte string")
		return nil
	}
	if !p.need(h + n) {
		return nil
	}
	v := p.b[h : h+n]
	p.b = p.b[h+n:]
	return v
}

// skip discards one value of any type (fields a newer peer appended).
func (p *parser) skip() {
	if !p.need(1) {
		return
	}
	c := p.b[0]
	switch {
	case c < 0x80 || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
		p.b = p.b[1:]
	case c&0xf0 == 0x80: // fixmap
		n := int(c & 0x0f)
		p.b = p.b[1:]
		for i := 0; i < 2*n && p.err == nil; i++ {
			p.skip()
		}
	case c&0xf0 == 0x90, c == 0xdc, c == 0xdd:
		n := p.arrayLen()
		for i := 0; i < n && p.err == nil; i++ {
			p.skip()
		}
	case c&0xe0 == 0xa0, c >= 0xc4 && c <= 0xc6, c >= 0xd9 && c <= 0xdb:
		p.bin()
	case c == 0xcc || c == 0xd0:
		p.advance(2)
	case c == 0xcd || c == 0xd1:
		p.advance(3)
	case c == 0xce || c == 0xd2 || c == 0xca:
		p.advance(5)
	case c == 0xcf || c == 0xd3 || c == 0xcb:
		p.advance(9)
	default:
		p.fail(fmt.Sprintf("unsupported msgpack type 0x%02x", c))
	}
}

func (p *parser) advance(n int) {
	if p.need(n) {
		p.b = p.b[n:]
	}
}
