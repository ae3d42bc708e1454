package sync

// Cluster key rotation. memberlist itself only has a local Keyring; the
// cluster-wide operations are ctsync's: the node an operator asks sends a
// key request to every alive member as a memberlist user message (over
// memberlist's TCP stream, encrypted and authenticated with the cluster
// key like all of memberlist's traffic), each member applies it to its
// own keyring and answers the same way, and the asking node applies it
// last, after the answers are in.
//
// A key never travels except inside an install, use or remove request: a
// list answers with fingerprints only. Requests carry a random id and the
// sender's clock; a member refuses one it has seen already or whose clock
// is off by more than keyMaxSkew, so that a recorded request cannot be
// replayed later (to put a removed key back, for instance).

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	stdsync "sync"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/vmihailenco/msgpack/v5"
)

// Key operations.
const (
	KeyList    = "list"
	KeyInstall = "install"
	KeyUse     = "use"
	KeyRemove  = "remove"
)

var (
	// ErrInsecure is returned by the key operations of an insecure node.
	ErrInsecure = errors.New("the cluster is insecure (cluster.insecure: true): it has no keys to rotate")
	// ErrPrimaryKey is returned when asked to remove a key that is primary.
	ErrPrimaryKey = errors.New("cannot remove the primary key")
	// ErrNotInstalled is returned when asked to use a key that members
	// do not hold.
	ErrNotInstalled = errors.New("key not installed")
)

// keyMsgMarker is the first byte of a key-management user message; the
// second is keyMsgRequest or keyMsgReply, a msgpack body follows.
const (
	keyMsgMarker  = 0xc8
	keyMsgRequest = 1
	keyMsgReply   = 2
)

const (
	keyTimeout = 5 * time.Second // wait for the members' answers
	keyMaxSkew = 2 * time.Minute // refuse requests older (or newer) than this
)

type keyRequest struct {
	ID   uint64 `msgpack:"id"`
	From string `msgpack:"from"`
	Time int64  `msgpack:"t"` // sender's clock, unix ns
	Op   string `msgpack:"op"`
	Key  []byte `msgpack:"key,omitempty"`
}

type keyReply struct {
	ID   uint64   `msgpack:"id"`
	Node string   `msgpack:"node"`
	Err  string   `msgpack:"err,omitempty"`
	Keys []string `msgpack:"keys"` // fingerprints, primary first
}

// keyState is a node's key-management state.
type keyState struct {
	opMu   stdsync.Mutex // one cluster-wide operation at a time from this node
	ringMu stdsync.Mutex // changes of the local keyring

	mu      stdsync.Mutex
	pending map[uint64]chan keyReply // by request id
	seen    map[uint64]time.Time     // request ids handled, until they expire
}

// KeyInfo is one key as the cluster holds it.
type KeyInfo struct {
	Fingerprint string `json:"fingerprint"` // KeyFingerprint
	Nodes       int    `json:"nodes"`       // members holding it
	Primary     int    `json:"primary"`     // members encrypting with it
}

// KeyResult is the outcome of a cluster-wide key operation.
type KeyResult struct {
	Nodes    int               `json:"nodes"`    // members asked, this node included
	Answered int               `json:"answered"` // members that answered, successfully or not
	Errors   map[string]string `json:"errors,omitempty"`
	Keys     []KeyInfo         `json:"keys,omitempty"` // ListKeys: primary keys first, then by fingerprint

	byNode map[string]map[string]bool // fingerprints each member that answered holds
}

// KeyFingerprint identifies a key to operators without showing it: the
// first 8 hex digits of its SHA-256.
func KeyFingerprint(key []byte) string {
	h := sha256.Sum256(key)
	return hex.EncodeToString(h[:4])
}

// ListKeys asks every member which keys it holds.
func (n *Node) ListKeys(ctx context.Context) (KeyResult, error) {
	return n.keyOp(ctx, KeyList, nil)
}

// InstallKey adds key to every member's keyring: they accept it from then
// on, but do not encrypt with it.
func (n *Node) InstallKey(ctx context.Context, key []byte) (KeyResult, error) {
	if err := memberlist.ValidateKey(key); err != nil {
		return KeyResult{}, fmt.Errorf("bad key: %w", err)
	}
	return n.keyOp(ctx, KeyInstall, key)
}

// UseKey makes key every member's primary key: memberlist encrypts with it
// and new replication streams authenticate with it. It is refused while a
// member that answers does not hold the key.
func (n *Node) UseKey(ctx context.Context, key []byte) (KeyResult, error) {
	if n.sec.Keyring == nil {
		return KeyResult{}, ErrInsecure
	}
	fp := KeyFingerprint(key)
	if !n.hasKey(key) {
		return KeyResult{}, fmt.Errorf("%w: %s is not installed on this node (%s); install it on the cluster first (`ctsync keys install`)",
			ErrNotInstalled, fp, n.cfg.Node)
	}
	list, err := n.ListKeys(ctx)
	if err != nil {
		return list, err
	}
	if missing := missingKey(list, fp); len(missing) > 0 {
		return list, fmt.Errorf("%w: %s is not installed on %s; install it on the cluster first (`ctsync keys install`)",
			ErrNotInstalled, fp, strings.Join(missing, ", "))
	}
	return n.keyOp(ctx, KeyUse, key)
}

// RemoveKey drops key from every member's keyring, and closes the
// replication streams that were authenticated with it (they reconnect with
// the primary key). It is refused while the key is primary on this node
// or on any member that answers.
func (n *Node) RemoveKey(ctx context.Context, key []byte) (KeyResult, error) {
	kr := n.sec.Keyring
	if kr == nil {
		return KeyResult{}, ErrInsecure
	}
	fp := KeyFingerprint(key)
	if bytes.Equal(kr.GetPrimaryKey(), key) {
		return KeyResult{}, fmt.Errorf("%w: %s is this node's primary key; make another key primary first (`ctsync keys use`)", ErrPrimaryKey, fp)
	}
	list, err := n.ListKeys(ctx)
	if err != nil {
		return list, err
	}
	for _, k := range list.Keys {
		if k.Fingerprint == fp && k.Primary > 0 {
			return list, fmt.Errorf("%w: %s is primary on %d members; make another key primary first (`ctsync keys use`)", ErrPrimaryKey, fp, k.Primary)
		}
	}
	return n.keyOp(ctx, KeyRemove, key)
}

// missingKey returns the members that answered a list without key fp.
func missingKey(list KeyResult, fp string) []string {
	var out []string
	for node, keys := range list.byNode {
		if !keys[fp] {
			out = append(out, node)
		}
	}
	sort.Strings(out)
	return out
}

func (n *Node) hasKey(key []byte) bool {
	for _, k := range n.sec.Keyring.GetKeys() {
		if bytes.Equal(k, key) {
			return true
		}
	}
	return false
}

// keyOp runs op on every alive member, then on this node.
func (n *Node) keyOp(ctx context.Context, op string, key []byte) (KeyResult, error) {
	if n.sec.Keyring == nil {
		return KeyResult{}, ErrInsecure
	}
	ks := &n.keys
	ks.opMu.Lock()
	defer ks.opMu.Unlock()

	targets := n.aliveMembers()
	req := keyRequest{ID: randomID(), From: n.cfg.Node, Time: time.Now().UnixNano(), Op: op, Key: key}
	msg, err := encodeKeyMsg(keyMsgRequest, &req)
	if err != nil {
		return KeyResult{}, err
	}

	ch := make(chan keyReply, len(targets))
	ks.mu.Lock()
	if ks.pending == nil {
		ks.pending = make(map[uint64]chan keyReply)
	}
	ks.pending[req.ID] = ch
	ks.mu.Unlock()
	defer func() {
		ks.mu.Lock()
		delete(ks.pending, req.ID)
		ks.mu.Unlock()
	}()

	res := KeyResult{Nodes: len(targets) + 1, Errors: map[string]string{}}
	agg := newKeyAgg()
	var mu stdsync.Mutex
	waiting := map[string]bool{}
	var wg stdsync.WaitGroup
	for name, addr := range targets {
		waiting[name] = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := n.sendKeyMsg(name, addr, msg)
			if err != nil {
				mu.Lock()
				delete(waiting, name)
				res.Errors[name] = "unreachable: " + err.Error()
				mu.Unlock()
			}
		}()
	}
	wg.Wait()

	timer := time.NewTimer(keyTimeout)
	defer timer.Stop()
wait:
	for len(waiting) > 0 {
		select {
		case r := <-ch:
			if !waiting[r.Node] {
				continue
			}
			delete(waiting, r.Node)
			res.Answered++
			agg.add(&res, r)
		case <-timer.C:
			break wait
		case <-ctx.Done():
			return res, ctx.Err()
		case <-n.ctx.Done():
			return res, errors.New("the node is shutting down")
		}
	}

	for name := range waiting {
		res.Errors[name] = "no answer"
	}

	// This node last: after a use, the members' answers come encrypted
	// with the new key, which this node already holds; after a remove,
	// the ones that could not remove it answer with the old one.
	res.Answered++
	agg.add(&res, n.applyKeyOp(op, key))
	res.Keys = agg.keys()
	res.byNode = agg.byNode
	if len(res.Errors) == 0 {
		res.Errors = nil
	}

	if op != KeyList {
		n.log.Info("cluster key operation", "op", op, "key", KeyFingerprint(key), "nodes", res.Nodes,
			"answered", res.Answered, "errors", len(res.Errors))
	}
	return res, nil
}

// keyAgg sums the members' keys.
type keyAgg struct {
	count, primary map[string]int
	byNode         map[string]map[string]bool
}

func newKeyAgg() *keyAgg {
	return &keyAgg{count: map[string]int{}, primary: map[string]int{}, byNode: map[string]map[string]bool{}}
}

func (a *keyAgg) add(res *KeyResult, r keyReply) {
	if r.Err != "" {
		res.Errors[r.Node] = r.Err
	}
	held := map[string]bool{}
	for i, fp := range r.Keys {
		a.count[fp]++
		if i == 0 {
			a.primary[fp]++
		}
		held[fp] = true
	}
	a.byNode[r.Node] = held
}

func (a *keyAgg) keys() []KeyInfo {
	out := make([]KeyInfo, 0, len(a.count))
	for fp, c := range a.count {
		out = append(out, KeyInfo{Fingerprint: fp, Nodes: c, Primary: a.primary[fp]})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Primary != out[j].Primary {
			return out[i].Primary > out[j].Primary
		}
		return out[i].Fingerprint < out[j].Fingerprint
	})
	return out
}

// applyKeyOp applies op to this node's keyring and returns the answer.
func (n *Node) applyKeyOp(op string, key []byte) keyReply {
	kr := n.sec.Keyring
	r := keyReply{Node: n.cfg.Node}
	n.keys.ringMu.Lock()
	var err error
	switch op {
	case KeyList:
	case KeyInstall:
		if err = memberlist.ValidateKey(key); err == nil && !n.hasKey(key) {
			n.freshKeyring()
			err = kr.AddKey(key)
		}
	case KeyUse:
		err = kr.UseKey(key)
	case KeyRemove:
		err = n.removeKey(key)
	default:
		err = fmt.Errorf("unknown key operation %q", op)
	}
	for _, k := range kr.GetKeys() {
		r.Keys = append(r.Keys, KeyFingerprint(k))
	}
	n.keys.ringMu.Unlock()
	if err != nil {
		r.Err = err.Error()
	} else if op == KeyRemove {
		n.closeStreamsWithKey(key)
	}
	if op != KeyList {
		n.log.Info("cluster key changed", "op", op, "key", KeyFingerprint(key), "err", err)
	}
	return r
}

// freshKeyring makes the keyring copy its key list. memberlist reads the
// list it hands out (GetKeys) without a lock while AddKey appends to it and
// RemoveKey shifts it in place; after this, the list they change is one no
// reader has seen yet (AddKey appends beyond every reader's length).
// n.keys.ringMu must be held.
func (n *Node) freshKeyring() {
	kr := n.sec.Keyring
	_ = kr.UseKey(kr.GetPrimaryKey())
}

// removeKey drops key from the keyring; n.keys.ringMu must be held.
func (n *Node) removeKey(key []byte) error {
	kr := n.sec.Keyring
	keys := kr.GetKeys()
	if bytes.Equal(keys[0], key) {
		return fmt.Errorf("%w: %s is primary on %s", ErrPrimaryKey, KeyFingerprint(key), n.cfg.Node)
	}
	i := 0
	for i < len(keys) && !bytes.Equal(keys[i], key) {
		i++
	}
	switch {
	case i == len(keys):
		return nil // not here: nothing to do
	case i < len(keys)-1:
		// RemoveKey would shift the shared list: work on a fresh one.
		n.freshKeyring()
	}
	return kr.RemoveKey(key)
}

// closeStreamsWithKey closes the replication streams authenticated with
// key: nothing a removed key opened stays open. Their senders reconnect
// with the primary key.
func (n *Node) closeStreamsWithKey(key []byte) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, p := range n.peers {
		if c := p.outConn.Load(); c != nil && bytes.Equal(c.key, key) {
			c.Close()
		}
		p.inMu.Lock()
		if p.inConn != nil && bytes.Equal(p.inConn.key, key) {
			p.inConn.Close()
		}
		p.inMu.Unlock()
	}
}

func randomID() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return binary.BigEndian.Uint64(b[:])
}

func encodeKeyMsg(kind byte, v any) ([]byte, error) {
	body, err := msgpack.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append([]byte{keyMsgMarker, kind}, body...), nil
}

// decodeKeyMsg decodes a key message's body into v. The parser of msgp.go
// checks it first: the library's Skip recurses once per level of nesting of
// a field it does not know, and its lengths become an int (negative on a
// 32-bit platform from 2^31 on) before they are checked.
func decodeKeyMsg(body []byte, v any) error {
	if err := checkValue(body); err != nil {
		return err
	}
	return msgpack.Unmarshal(body, v)
}

// sendKeyMsg sends a key message to a member over memberlist's stream.
func (n *Node) sendKeyMsg(name, addr string, msg []byte) error {
	host, port, err := splitHostPort(addr)
	if err != nil {
		return err
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return fmt.Errorf("bad address %q", addr)
	}
	return n.ml.SendReliable(&memberlist.Node{Name: name, Addr: ip, Port: uint16(port)}, msg)
}

// handleKeyMsg takes a key message from memberlist (NotifyMsg: b is only
// valid during the call) and reports whether it was one.
func (n *Node) handleKeyMsg(b []byte) bool {
	if len(b) < 2 || b[0] != keyMsgMarker {
		return false
	}
	switch b[1] {
	case keyMsgRequest:
		var req keyRequest
		if err := decodeKeyMsg(b[2:], &req); err != nil || req.From == "" {
			n.stats.decodeErrors.Add(1)
			return true
		}
		n.keyRequest(&req)
	case keyMsgReply:
		var r keyReply
		if err := decodeKeyMsg(b[2:], &r); err != nil {
			n.stats.decodeErrors.Add(1)
			return true
		}
		n.keys.mu.Lock()
		ch := n.keys.pending[r.ID]
		n.keys.mu.Unlock()
		if ch != nil {
			select {
			case ch <- r:
			default:
			}
		}
	default:
		n.stats.unexpectedMsgs.Add(1)
	}
	return true
}

// keyRequest applies a member's key request and answers it.
func (n *Node) keyRequest(req *keyRequest) {
	if n.sec.Keyring == nil || req.From == n.cfg.Node {
		return
	}
	reply := keyReply{ID: req.ID, Node: n.cfg.Node}
	now := time.Now()
	ks := &n.keys
	ks.mu.Lock()
	if ks.seen == nil {
		ks.seen = make(map[uint64]time.Time)
	}
	for id, exp := range ks.seen {
		if now.After(exp) {
			delete(ks.seen, id)
		}
	}
	_, replay := ks.seen[req.ID]
	ks.seen[req.ID] = now.Add(2 * keyMaxSkew)
	ks.mu.Unlock()
	skew := now.Sub(time.Unix(0, req.Time))
	switch {
	case replay:
		n.log.Warn("refused a replayed cluster key request", "from", req.From, "op", req.Op)
		return // the original was answered
	case skew > keyMaxSkew || skew < -keyMaxSkew:
		reply.Err = fmt.Sprintf("refused: the request's clock is %s off this node's (more than %s: replayed, or the clocks are not synchronised)",
			skew.Round(time.Second), keyMaxSkew)
		n.log.Warn("refused a cluster key request", "from", req.From, "op", req.Op, "err", reply.Err)
	default:
		reply = n.applyKeyOp(req.Op, req.Key)
		reply.ID = req.ID
	}
	msg, err := encodeKeyMsg(keyMsgReply, &reply)
	if err != nil {
		return
	}
	addr := n.memberAddr(req.From)
	if addr == "" {
		n.log.Warn("cannot answer a cluster key request: unknown member", "from", req.From)
		return
	}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return
	}
	n.wg.Add(1)
	n.mu.Unlock()
	go func() {
		defer n.wg.Done()
		if err := n.sendKeyMsg(req.From, addr, msg); err != nil {
			n.log.Warn("cannot answer a cluster key request", "from", req.From, "err", err)
		}
	}()
}
