package sync

import (
	"bufio"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	stdsync "sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// streamMarker is the first byte of a ctsync replication stream on the
// cluster port. memberlist's own streams start with a message type (0-13),
// an encryption version (0-1) or its label marker (244).
const streamMarker = 0xc7

const (
	hsVersion     = 1
	hsModeClear   = 0
	hsModeAESGCM  = 1
	nonceLen      = 32
	maxFrame      = 4 << 20 // bytes of one frame's payload
	maxHelloBytes = 1024
	hsTimeout     = 10 * time.Second
)

var (
	errAuth     = errors.New("peer failed to authenticate")
	errTooLarge = errors.New("frame too large")
)

// Security says how streams are protected.
type Security struct {
	// Keyring holds the cluster keys (shared with memberlist). Nil means
	// insecure: no encryption, no authentication.
	Keyring *memberlist.Keyring
	// Label is the cluster name: nodes with another label are refused.
	Label string
}

// conn is an established, framed (and, with a keyring, authenticated and
// encrypted) stream. Writes and reads may run in two goroutines; each side
// is not safe for concurrent use by several.
type conn struct {
	c       net.Conn
	br      *bufio.Reader
	bw      *bufio.Writer
	seal    cipher.AEAD // nil: cleartext
	open    cipher.AEAD
	sendCtr uint64
	recvCtr uint64
	rbuf    []byte
	wbuf    []byte
	peer    string // the node name the peer proved (or claimed, when insecure)
	key     []byte // the cluster key the stream was authenticated with; nil: insecure
	wmu     stdsync.Mutex
}

// sendLocked writes and flushes one message under the write lock, for
// writers that share a stream.
func (s *conn) sendLocked(p []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.writeFrame(p); err != nil {
		return err
	}
	return s.flush()
}

func (s *conn) Close() error { return s.c.Close() }

// writeFrame sends one message. It does not flush: call flush.
func (s *conn) writeFrame(p []byte) error {
	if len(p) > maxFrame {
		return errTooLarge
	}
	var hdr [4]byte
	if s.seal == nil {
		binary.BigEndian.PutUint32(hdr[:], uint32(len(p)))
		if _, err := s.bw.Write(hdr[:]); err != nil {
			return err
		}
		_, err := s.bw.Write(p)
		return err
	}
	var nonce [12]byte
	s.sendCtr++
	binary.BigEndian.PutUint64(nonce[4:], s.sendCtr)
	s.wbuf = s.seal.Seal(s.wbuf[:0], nonce[:], p, hdr[:0])
	binary.BigEndian.PutUint32(hdr[:], uint32(len(s.wbuf)))
	if _, err := s.bw.Write(hdr[:]); err != nil {
		return err
	}
	_, err := s.bw.Write(s.wbuf)
	return err
}

func (s *conn) flush() error { return s.bw.Flush() }

// readFrame returns the next message; the slice is valid until the next call.
func (s *conn) readFrame() ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(s.br, hdr[:]); err != nil {
		return nil, err
	}
	n32 := binary.BigEndian.Uint32(hdr[:]) // compared before int(): 2^31 on is negative on 32-bit
	limit := maxFrame
	if s.open != nil {
		limit += s.open.Overhead()
	}
	if uint64(n32) > uint64(limit) {
		return nil, fmt.Errorf("%w: %d bytes", errTooLarge, n32)
	}
	n := int(n32)
	if cap(s.rbuf) < n {
		s.rbuf = make([]byte, n)
	}
	b := s.rbuf[:n]
	if _, err := io.ReadFull(s.br, b); err != nil {
		return nil, err
	}
	if s.open == nil {
		return b, nil
	}
	var nonce [12]byte
	s.recvCtr++
	binary.BigEndian.PutUint64(nonce[4:], s.recvCtr)
	p, err := s.open.Open(b[:0], nonce[:], b, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: frame does not authenticate", errAuth)
	}
	return p, nil
}

// helloBody encodes label and node name (each at most 255 bytes; the
// configuration allows 64).
func helloBody(label, node string) []byte {
	label, node = label[:min(len(label), 255)], node[:min(len(node), 255)]
	b := []byte{byte(len(label))}
	b = append(b, label...)
	b = append(b, byte(len(node)))
	return append(b, node...)
}

func parseHello(b []byte) (label, node string, err error) {
	if len(b) < 1 {
		return "", "", errWire
	}
	ll := int(b[0]) // int: 1+b[0] in byte arithmetic wraps at 255
	if len(b) < 1+ll+1 {
		return "", "", errWire
	}
	label = string(b[1 : 1+ll])
	b = b[1+ll:]
	if nl := int(b[0]); nl == 0 || len(b) != 1+nl {
		return "", "", errWire
	}
	return label, string(b[1:]), nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	blk, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(blk)
}

// sessionKey derives a direction's key from the cluster key and both nonces.
func sessionKey(key []byte, dir string, cn, sn []byte) (cipher.AEAD, error) {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("ctsync v1 " + dir))
	m.Write(cn)
	m.Write(sn)
	return newGCM(m.Sum(nil))
}

// sealHello seals body with key under a random nonce: nonce || ciphertext.
func sealHello(key, body, aad []byte) ([]byte, error) {
	g, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, g.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return g.Seal(nonce, nonce, body, aad), nil
}

func openHello(key, sealed, aad []byte) ([]byte, error) {
	g, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	if len(sealed) < g.NonceSize() {
		return nil, errAuth
	}
	return g.Open(nil, sealed[:g.NonceSize()], sealed[g.NonceSize():], aad)
}

func writeBlock(w io.Writer, b []byte) error {
	var l [2]byte
	binary.BigEndian.PutUint16(l[:], uint16(len(b)))
	if _, err := w.Write(l[:]); err != nil {
		return err
	}
	_, err := w.Write(b)
	return err
}

func readBlock(r io.Reader) ([]byte, error) {
	var l [2]byte
	if _, err := io.ReadFull(r, l[:]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(l[:]))
	if n > maxHelloBytes {
		return nil, fmt.Errorf("%w: handshake block of %d bytes", errWire, n)
	}
	b := make([]byte, n)
	_, err := io.ReadFull(r, b)
	return b, err
}

func (sec *Security) mode() byte {
	if sec.Keyring == nil {
		return hsModeClear
	}
	return hsModeAESGCM
}

// clientHandshake runs the dialing side on c (the marker byte not yet sent)
// and returns the established stream. node is this node's name.
func (sec *Security) clientHandshake(c net.Conn, node string) (*conn, error) {
	_ = c.SetDeadline(time.Now().Add(hsTimeout))
	defer c.SetDeadline(time.Time{})
	cn := make([]byte, nonceLen)
	if _, err := rand.Read(cn); err != nil {
		return nil, err
	}
	head := append([]byte{streamMarker, hsVersion, sec.mode()}, cn...)
	body := helloBody(sec.Label, node)
	var key []byte
	if sec.Keyring != nil {
		// The primary key now, not at start: it changes with `ctsync keys use`.
		key = sec.Keyring.GetPrimaryKey()
		var err error
		if body, err = sealHello(key, body, head); err != nil {
			return nil, err
		}
	}
	bw := bufio.NewWriterSize(c, 64<<10)
	bw.Write(head)
	if err := writeBlock(bw, body); err != nil {
		return nil, err
	}
	if err := bw.Flush(); err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(c, 64<<10)
	sn := make([]byte, nonceLen)
	if _, err := io.ReadFull(br, sn); err != nil {
		return nil, fmt.Errorf("handshake: %w", err)
	}
	reply, err := readBlock(br)
	if err != nil {
		return nil, fmt.Errorf("handshake: %w", err)
	}
	aad := append(append([]byte{}, cn...), sn...)
	if key != nil {
		if reply, err = openHello(key, reply, aad); err != nil {
			return nil, errAuth
		}
	}
	label, peer, err := parseHello(reply)
	if err != nil || label != sec.Label {
		return nil, fmt.Errorf("%w: cluster label %q, want %q", errAuth, label, sec.Label)
	}
	s := &conn{c: c, br: br, bw: bw, peer: peer, key: key}
	if key != nil {
		if s.seal, err = sessionKey(key, "c2s", cn, sn); err != nil {
			return nil, err
		}
		if s.open, err = sessionKey(key, "s2c", cn, sn); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// serverHandshake runs the accepting side; br has the marker byte consumed.
func (sec *Security) serverHandshake(c net.Conn, br *bufio.Reader, node string) (*conn, error) {
	_ = c.SetDeadline(time.Now().Add(hsTimeout))
	defer c.SetDeadline(time.Time{})
	var hdr [2]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return nil, fmt.Errorf("handshake: %w", err)
	}
	if hdr[0] != hsVersion {
		return nil, fmt.Errorf("%w: handshake version %d", errWire, hdr[0])
	}
	if hdr[1] != sec.mode() {
		if sec.Keyring != nil {
			return nil, fmt.Errorf("%w: peer is not encrypting", errAuth)
		}
		return nil, fmt.Errorf("%w: peer encrypts but this node is insecure", errAuth)
	}
	cn := make([]byte, nonceLen)
	if _, err := io.ReadFull(br, cn); err != nil {
		return nil, fmt.Errorf("handshake: %w", err)
	}
	body, err := readBlock(br)
	if err != nil {
		return nil, fmt.Errorf("handshake: %w", err)
	}
	head := append([]byte{streamMarker, hdr[0], hdr[1]}, cn...)
	var key []byte
	if sec.Keyring != nil {
		var plain []byte
		for _, k := range sec.Keyring.GetKeys() {
			if p, err := openHello(k, body, head); err == nil {
				key, plain = k, p
				break
			}
		}
		if key == nil {
			return nil, fmt.Errorf("%w: no key in the keyring opens its hello", errAuth)
		}
		body = plain
	}
	label, peer, err := parseHello(body)
	if err != nil {
		return nil, err
	}
	if label != sec.Label {
		return nil, fmt.Errorf("%w: cluster label %q, want %q", errAuth, label, sec.Label)
	}
	sn := make([]byte, nonceLen)
	if _, err := rand.Read(sn); err != nil {
		return nil, err
	}
	reply := helloBody(sec.Label, node)
	aad := append(append([]byte{}, cn...), sn...)
	if key != nil {
		if reply, err = sealHello(key, reply, aad); err != nil {
			return nil, err
		}
	}
	bw := bufio.NewWriterSize(c, 64<<10)
	bw.Write(sn)
	if err := writeBlock(bw, reply); err != nil {
		return nil, err
	}
	if err := bw.Flush(); err != nil {
		return nil, err
	}
	s := &conn{c: c, br: br, bw: bw, peer: peer, key: key}
	if key != nil {
		if s.open, err = sessionKey(key, "c2s", cn, sn); err != nil {
			return nil, err
		}
		if s.seal, err = sessionKey(key, "s2c", cn, sn); err != nil {
			return nil, err
		}
	}
	return s, nil
}
