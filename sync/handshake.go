package sync

import (
	"bufio"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
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
	hsVersion     = 2 // 2: HKDF subkeys, key confirmation (1: hellos sealed with the cluster key)
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

// Handshake version 2. ctsync never uses a cluster key K directly (memberlist
// seals its own packets with it under AES-GCM): every key it needs is
// derived from K with HKDF-SHA256 under its own info string, so no two
// purposes share a key:
//
//	hello key   = HKDF(K, salt none,          "ctsync v2 hello")    seals both hellos
//	confirm key = HKDF(K, salt none,          "ctsync v2 confirm")  client's key confirmation
//	c2s, s2c    = HKDF(K, salt transcript,    "ctsync v2 c2s"/"s2c") the stream's frames
//
// The exchange, on the cluster port:
//
//	client: marker, version, mode, client nonce (32), hello block
//	server: server nonce (32), reply block
//	client: confirmation (32)             (with a keyring only)
//
// A block is a 2-byte length and a hello (label and node name), sealed with
// the hello key under a random GCM nonce when there is a keyring. The
// client's hello has its header as additional data; the server's reply has
// the hash of everything before it (the client's whole flight and the
// server nonce), so the client knows the reply is fresh and answers its own
// hello. The confirmation is an HMAC, under the confirm key, of the hash of
// the whole transcript: the server's fresh nonce is in it, so only a holder
// of the key can compute it for this connection, and a recorded client
// flight replayed on another connection fails (and is counted as an
// authentication failure). The server treats the stream as unauthenticated
// — no peer state, no stream buffers, a pre-authentication slot held —
// until the confirmation checks out, and all of it must happen within
// preAuthTimeout. The session keys are salted with the transcript hash.
//
// The server tries every key of its keyring on the hello; the client seals
// with its primary key, so key rotation works as before.
const (
	hkdfHello   = "ctsync v2 hello"
	hkdfConfirm = "ctsync v2 confirm"
	hkdfC2S     = "ctsync v2 c2s"
	hkdfS2C     = "ctsync v2 s2c"
	confirmLen  = sha256.Size
)

var (
	// errHandshakeVersion is a handshake of another version than this node's.
	errHandshakeVersion = errors.New("handshake version mismatch")
	// errNoAnswer is a peer that closed the connection on our hello: a node
	// refuses a hello it cannot open (or of another version) without a word.
	errNoAnswer = errors.New("the peer closed the connection on our handshake")
)

// subkey derives the key for one purpose from a cluster key.
func subkey(key, salt []byte, info string) []byte {
	k, err := hkdf.Key(sha256.New, key, salt, info, 32)
	if err != nil {
		panic(fmt.Sprintf("hkdf: %v", err)) // only for lengths over 255*32
	}
	return k
}

// sessionKeys derives a stream's two directions' AEADs from the cluster key
// and the transcript hash.
func sessionKeys(key, transcript []byte) (c2s, s2c cipher.AEAD, err error) {
	if c2s, err = newGCM(subkey(key, transcript, hkdfC2S)); err != nil {
		return nil, nil, err
	}
	s2c, err = newGCM(subkey(key, transcript, hkdfS2C))
	return c2s, s2c, err
}

// confirmation is the client's proof that it holds key for the transcript.
func confirmation(key, transcript []byte) []byte {
	m := hmac.New(sha256.New, subkey(key, nil, hkdfConfirm))
	m.Write([]byte("client confirm"))
	m.Write(transcript)
	return m.Sum(nil)
}

// sealHello seals body with the hello key derived from key under a random
// nonce: nonce || ciphertext.
func sealHello(key, body, aad []byte) ([]byte, error) {
	g, err := newGCM(subkey(key, nil, hkdfHello))
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
	g, err := newGCM(subkey(key, nil, hkdfHello))
	if err != nil {
		return nil, err
	}
	if len(sealed) < g.NonceSize() {
		return nil, errAuth
	}
	return g.Open(nil, sealed[:g.NonceSize()], sealed[g.NonceSize():], aad)
}

// block frames a handshake block: a 2-byte length, then b.
func block(b []byte) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(len(b))), b...)
}

// readBlock reads one block straight from the connection: the handshake
// reads exact sizes, so an unauthenticated peer costs no stream buffer.
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

// transcript hashes the handshake's parts, in order.
func transcript(parts ...[]byte) []byte {
	h := sha256.New()
	for _, p := range parts {
		h.Write(p)
	}
	return h.Sum(nil)
}

func (sec *Security) mode() byte {
	if sec.Keyring == nil {
		return hsModeClear
	}
	return hsModeAESGCM
}

// newConn makes an established stream, with its buffers: only now, after
// the handshake, are they worth their 128 KiB.
func newConn(c net.Conn, peer string, key []byte) *conn {
	return &conn{c: c, br: bufio.NewReaderSize(c, 64<<10), bw: bufio.NewWriterSize(c, 64<<10), peer: peer, key: key}
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
	hello := block(body)
	if _, err := c.Write(append(head[:len(head):len(head)], hello...)); err != nil {
		return nil, err
	}

	sn := make([]byte, nonceLen)
	if _, err := io.ReadFull(c, sn); err != nil {
		// A v1 node, or one without our key, closes without a word.
		return nil, fmt.Errorf("%w (it has another key or label, or runs a ctsync of another handshake version than %d: upgrade both nodes): %w", errNoAnswer, hsVersion, err)
	}
	reply, err := readBlock(c)
	if err != nil {
		return nil, fmt.Errorf("handshake: %w", err)
	}

	th := transcript(head, hello, sn)
	plain := reply
	if key != nil {
		if plain, err = openHello(key, reply, th); err != nil {
			return nil, errAuth
		}
	}
	label, peer, err := parseHello(plain)
	if err != nil || label != sec.Label {
		return nil, fmt.Errorf("%w: cluster label %q, want %q", errAuth, label, sec.Label)
	}
	if key == nil {
		return newConn(c, peer, nil), nil
	}

	th = transcript(th, block(reply))
	if _, err := c.Write(confirmation(key, th)); err != nil {
		return nil, err
	}
	s := newConn(c, peer, key)
	if s.seal, s.open, err = sessionKeys(key, th); err != nil {
		return nil, err
	}
	return s, nil
}

// serverHandshake runs the accepting side on c, whose marker byte was read
// and whose deadline (preAuthTimeout) the transport set. The stream is
// returned only once the client has confirmed the key for this
// connection's nonces.
func (sec *Security) serverHandshake(c net.Conn, node string) (*conn, error) {
	defer c.SetDeadline(time.Time{})
	var hdr [2]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return nil, fmt.Errorf("handshake: %w", err)
	}
	if hdr[0] != hsVersion {
		return nil, fmt.Errorf("%w: the peer speaks handshake version %d, this node %d (upgrade both nodes)", errHandshakeVersion, hdr[0], hsVersion)
	}
	if hdr[1] != sec.mode() {
		if sec.Keyring != nil {
			return nil, fmt.Errorf("%w: peer is not encrypting", errAuth)
		}
		return nil, fmt.Errorf("%w: peer encrypts but this node is insecure", errAuth)
	}

	cn := make([]byte, nonceLen)
	if _, err := io.ReadFull(c, cn); err != nil {
		return nil, fmt.Errorf("handshake: %w", err)
	}
	body, err := readBlock(c)
	if err != nil {
		return nil, fmt.Errorf("handshake: %w", err)
	}

	head := append([]byte{streamMarker, hdr[0], hdr[1]}, cn...)
	hello := block(body)
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
	th := transcript(head, hello, sn)
	reply := helloBody(sec.Label, node)
	if key != nil {
		if reply, err = sealHello(key, reply, th); err != nil {
			return nil, err
		}
	}
	if _, err := c.Write(append(sn, block(reply)...)); err != nil {
		return nil, err
	}
	if key == nil {
		return newConn(c, peer, nil), nil
	}

	th = transcript(th, block(reply))
	var got [confirmLen]byte
	if _, err := io.ReadFull(c, got[:]); err != nil {
		return nil, fmt.Errorf("%w: no key confirmation: %w", errAuth, err)
	}
	if !hmac.Equal(got[:], confirmation(key, th)) {
		return nil, fmt.Errorf("%w: key confirmation does not match (a replayed or forged hello)", errAuth)
	}
	s := newConn(c, peer, key)
	if s.open, s.seal, err = sessionKeys(key, th); err != nil {
		return nil, err
	}
	return s, nil
}
