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
//
// Lengths and counts off the wire are compared as uint64 with what is left
// of the slice before they become an int: converted first, a length of 2^31
// or more is negative on a 32-bit platform and passes every check.
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

// need reports whether n more bytes are there, and fails if not.
func (p *parser) need(n uint64) bool {
	if uint64(len(p.b)) < n {
		p.fail("truncated")
		return false
	}
	return true
}

func (p *parser) uint(limit uint64) uint64 {
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
	if v > limit {
		p.fail("value out of range")
		return 0
	}
	return v
}

// arrayLen reads an array header. The count is at most maxEntries and at
// most the bytes left (every value takes one at least).
func (p *parser) arrayLen() int {
	if !p.need(1) {
		return 0
	}
	c := p.b[0]
	var n uint64
	switch {
	case c&0xf0 == 0x90:
		n, p.b = uint64(c&0x0f), p.b[1:]
	case c == 0xdc && p.need(3):
		n, p.b = uint64(binary.BigEndian.Uint16(p.b[1:])), p.b[3:]
	case c == 0xdd && p.need(5):
		n, p.b = uint64(binary.BigEndian.Uint32(p.b[1:])), p.b[5:]
	default:
		p.fail("not an array")
		return 0
	}
	switch {
	case n > maxEntries:
		p.fail("array too long")
		return 0
	case n > uint64(len(p.b)):
		p.fail(fmt.Sprintf("array of %d values in %d bytes", n, len(p.b)))
		return 0
	}
	return int(n)
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
	var n, h uint64
	switch {
	case c == 0xc4 || c == 0xd9:
		if !p.need(2) {
			return nil
		}
		n, h = uint64(p.b[1]), 2
	case c == 0xc5 || c == 0xda:
		if !p.need(3) {
			return nil
		}
		n, h = uint64(binary.BigEndian.Uint16(p.b[1:])), 3
	case c == 0xc6 || c == 0xdb:
		if !p.need(5) {
			return nil
		}
		n, h = uint64(binary.BigEndian.Uint32(p.b[1:])), 5
	case c&0xe0 == 0xa0:
		n, h = uint64(c&0x1f), 1
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

// maxDepth bounds how deeply a skipped value nests arrays and maps. What a
// newer peer appends is flat or nearly so; deeper nesting is refused, not
// walked (a frame of nested arrays would otherwise cost a recursion as deep
// as the frame is long).
const maxDepth = 32

// skip discards one value of any type (fields a newer peer appended),
// without recursion and in constant memory: a value nested deeper than
// maxDepth fails.
func (p *parser) skip() {
	if n := p.skipHeader(); n > 0 && p.err == nil {
		p.skipNested(n)
	}
}

// skipNested skips the n values of the container whose header skipHeader
// just read.
func (p *parser) skipNested(n uint64) {
	var open [maxDepth]uint64 // values left in each enclosing container
	open[0], n = n, 0
	for depth := 1; depth > 0 && p.err == nil; {
		if open[depth-1] == 0 {
			depth--
			continue
		}
		open[depth-1]--
		if n = p.skipHeader(); n == 0 || p.err != nil {
			continue
		}
		if depth == maxDepth {
			p.fail(fmt.Sprintf("value nested deeper than %d", maxDepth))
			return
		}
		open[depth] = n
		depth++
	}
}

// skipHeader consumes one value if it is a scalar or a byte string, or the
// header of an array or map; it returns the number of values that the
// container holds (a map: keys and values), which follow.
func (p *parser) skipHeader() uint64 {
	if !p.need(1) {
		return 0
	}
	c := p.b[0]
	var n uint64
	switch {
	case c < 0x80 || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
		p.b = p.b[1:]
		return 0
	case c&0xf0 == 0x80: // fixmap
		n, p.b = 2*uint64(c&0x0f), p.b[1:]
	case c&0xf0 == 0x90: // fixarray
		n, p.b = uint64(c&0x0f), p.b[1:]
	case (c == 0xdc || c == 0xde) && p.need(3): // array16, map16
		n, p.b = uint64(binary.BigEndian.Uint16(p.b[1:])), p.b[3:]
		if c == 0xde {
			n *= 2
		}
	case (c == 0xdd || c == 0xdf) && p.need(5): // array32, map32
		n, p.b = uint64(binary.BigEndian.Uint32(p.b[1:])), p.b[5:]
		if c == 0xdf {
			n *= 2
		}
	case c&0xe0 == 0xa0, c >= 0xc4 && c <= 0xc6, c >= 0xd9 && c <= 0xdb:
		p.bin()
		return 0
	case c == 0xcc || c == 0xd0:
		p.advance(2)
		return 0
	case c == 0xcd || c == 0xd1:
		p.advance(3)
		return 0
	case c == 0xce || c == 0xd2 || c == 0xca:
		p.advance(5)
		return 0
	case c == 0xcf || c == 0xd3 || c == 0xcb:
		p.advance(9)
		return 0
	case c >= 0xd4 && c <= 0xd8: // fixext 1 to 16: type, data
		p.advance(2 + 1<<(c-0xd4))
		return 0
	case c == 0xc7 && p.need(2): // ext8: length, type, data
		p.advance(3 + uint64(p.b[1]))
		return 0
	case c == 0xc8 && p.need(3):
		p.advance(4 + uint64(binary.BigEndian.Uint16(p.b[1:])))
		return 0
	case c == 0xc9 && p.need(5):
		p.advance(6 + uint64(binary.BigEndian.Uint32(p.b[1:])))
		return 0
	default: // or truncated: then fail keeps the first error
		p.fail(fmt.Sprintf("unsupported msgpack type 0x%02x", c))
		return 0
	}
	if p.err == nil && n > uint64(len(p.b)) { // every value takes a byte at least
		p.fail(fmt.Sprintf("container of %d values in %d bytes", n, len(p.b)))
		return 0
	}
	return n
}

func (p *parser) advance(n uint64) {
	if p.need(n) {
		p.b = p.b[n:]
	}
}

// checkValue checks that b starts with one well-formed msgpack value
// nested at most maxDepth deep whose lengths and counts fit in b: bytes
// for the library's decoder, whose Skip recurses and whose lengths become
// an int before they are checked, go through it first.
func checkValue(b []byte) error {
	p := parser{b: b}
	p.skip()
	return p.err
}
