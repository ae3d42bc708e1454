package control

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/ctsync/ctsync/flow"
)

// The endpoints. Every body is JSON, except the listing of /v1/cache.
const (
	pathCommit       = "/v1/commit"
	pathFlush        = "/v1/flush"
	pathResyncKernel = "/v1/resync/kernel"
	pathResyncPeers  = "/v1/resync/peers"
	pathSendBulk     = "/v1/send-bulk"
	pathPurge        = "/v1/purge"
	pathCache        = "/v1/cache"
	pathStats        = "/v1/stats"
	pathMembers      = "/v1/members"
	pathNotify       = "/v1/notify"
	pathHealth       = "/v1/health"
	pathShutdown     = "/v1/shutdown"
	pathKeys         = "/v1/keys"
	pathKeysInstall  = "/v1/keys/install"
	pathKeysUse      = "/v1/keys/use"
	pathKeysRemove   = "/v1/keys/remove"
)

// trailerError carries an error that happened after a cache listing had
// started, when the status line was already sent.
const trailerError = "Ctsync-Error"

// Request and small response bodies.
type (
	flushRequest struct {
		Cache string `json:"cache"` // internal, external, "" (both)
	}
	flushResponse struct {
		Flushed string `json:"flushed"` // internal, external or both
	}
	peersResponse struct {
		Peers int `json:"peers"`
	}
	purgeRequest struct {
		AfterSeconds float64 `json:"after_seconds"` // 0: purge_timeout
	}
	countResponse struct {
		Count int `json:"count"`
	}
	notifyRequest struct {
		State string `json:"state"`
	}
	statusResponse struct {
		Status string `json:"status"`
	}
	errorResponse struct {
		Error string `json:"error"`
	}
	keyRequest struct {
		Key string `json:"key"` // base64, as `ctsync keygen` prints it
	}
)

// handler serves the endpoints with a Backend, to the peers allowed only.
type handler struct {
	s    *Server
	b    Backend
	log  *slog.Logger
	stop context.Context // Serve's: done when the daemon stops
	mux  *http.ServeMux
}

// routes are the endpoints: method, path, and what serves them.
var routes = []struct {
	method, path string
	serve        func(h *handler, w http.ResponseWriter, r *http.Request)
}{
	{http.MethodPost, pathCommit, (*handler).commit},
	{http.MethodPost, pathFlush, (*handler).flush},
	{http.MethodPost, pathResyncKernel, (*handler).resyncKernel},
	{http.MethodPost, pathResyncPeers, (*handler).resyncPeers},
	{http.MethodPost, pathSendBulk, (*handler).sendBulk},
	{http.MethodPost, pathPurge, (*handler).purge},
	{http.MethodPost, pathCache, (*handler).cache},
	{http.MethodGet, pathStats, (*handler).stats},
	{http.MethodGet, pathMembers, (*handler).members},
	{http.MethodPost, pathNotify, (*handler).notify},
	{http.MethodGet, pathHealth, (*handler).health},
	{http.MethodPost, pathShutdown, (*handler).shutdown},
	{http.MethodGet, pathKeys, (*handler).listKeys},
	{http.MethodPost, pathKeysInstall, (*handler).keyOp},
	{http.MethodPost, pathKeysUse, (*handler).keyOp},
	{http.MethodPost, pathKeysRemove, (*handler).keyOp},
}

func newHandler(s *Server, b Backend, log *slog.Logger, stop context.Context) *handler {
	h := &handler{s: s, b: b, log: log, stop: stop, mux: http.NewServeMux()}
	for _, rt := range routes {
		// "GET /path" answers HEAD too.
		h.mux.HandleFunc(rt.method+" "+rt.path, func(w http.ResponseWriter, r *http.Request) {
			p, _ := r.Context().Value(peerKey{}).(peer)
			h.log.Debug("control request", "method", r.Method, "path", r.URL.Path, "uid", p.uid, "pid", p.pid)
			rt.serve(h, w, r)
		})
		// The path with any other method: the mux's own 405 is not JSON.
		h.mux.HandleFunc(rt.path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", rt.method)
			writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s wants %s, not %s", r.URL.Path, rt.method, r.Method))
		})
	}
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no endpoint %s", r.URL.Path))
	})
	return h
}

// ServeHTTP refuses peers that are neither root nor the daemon's own user,
// and routes the others' requests.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p, _ := r.Context().Value(peerKey{}).(peer)
	if p.err != nil || !h.s.allowed(p.uid) {
		h.s.rejected.Add(1)
		if p.err != nil {
			h.log.Warn("control socket: request refused: no peer credentials", "path", r.URL.Path, "err", p.err)
		} else {
			h.log.Warn("control socket: request refused", "uid", p.uid, "pid", p.pid, "path", r.URL.Path)
		}
		writeError(w, http.StatusForbidden, "permission denied: only root and the daemon's own user may use the control socket")
		return
	}
	h.mux.ServeHTTP(w, r)
}

func (h *handler) commit(w http.ResponseWriter, r *http.Request) {
	res, err := h.b.Commit(r.Context())
	h.reply(w, r, res, err)
}

func (h *handler) flush(w http.ResponseWriter, r *http.Request) {
	var req flushRequest
	if !decode(w, r, &req, true) {
		return
	}
	which := req.Cache
	switch which {
	case "internal", "external":
	case "":
		which = "both"
	default:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("cache %q: want internal, external or empty for both", req.Cache))
		return
	}
	err := h.b.Flush(r.Context(), req.Cache)
	h.reply(w, r, flushResponse{Flushed: which}, err)
}

func (h *handler) resyncKernel(w http.ResponseWriter, r *http.Request) {
	res, err := h.b.ResyncKernel(r.Context())
	h.reply(w, r, res, err)
}

func (h *handler) resyncPeers(w http.ResponseWriter, r *http.Request) {
	n, err := h.b.ResyncPeers(r.Context())
	h.reply(w, r, peersResponse{Peers: n}, err)
}

func (h *handler) sendBulk(w http.ResponseWriter, r *http.Request) {
	n, err := h.b.SendBulk(r.Context())
	h.reply(w, r, peersResponse{Peers: n}, err)
}

func (h *handler) purge(w http.ResponseWriter, r *http.Request) {
	var req purgeRequest
	if !decode(w, r, &req, true) {
		return
	}
	sec := req.AfterSeconds
	if math.IsNaN(sec) || sec < 0 || sec > float64(math.MaxInt64/int64(time.Second)) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("after_seconds %v: want a number of seconds >= 0 (0: purge_timeout)", sec))
		return
	}
	res, err := h.b.Purge(r.Context(), time.Duration(sec*float64(time.Second)))
	h.reply(w, r, res, err)
}

func (h *handler) stats(w http.ResponseWriter, r *http.Request) {
	st, err := h.s.Stats(r.Context(), h.b)
	h.reply(w, r, st, err)
}

func (h *handler) members(w http.ResponseWriter, r *http.Request) {
	ms, err := h.b.Members(r.Context())
	if ms == nil {
		ms = []Member{}
	}
	h.reply(w, r, ms, err)
}

func (h *handler) notify(w http.ResponseWriter, r *http.Request) {
	var req notifyRequest
	if !decode(w, r, &req, false) {
		return
	}
	state := strings.ToLower(req.State)
	switch state {
	case "master", "backup", "fault", "stop":
	default:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("state %q: want master, backup, fault or stop", req.State))
		return
	}
	res, err := h.b.Notify(r.Context(), state)
	h.reply(w, r, res, err)
}

// health answers 200 when the node is ready to take over, 503 (with the
// reason) when it is not or cannot tell.
func (h *handler) health(w http.ResponseWriter, r *http.Request) {
	res, err := h.b.Health(r.Context())
	switch {
	case err != nil:
		h.log.Warn("control: health", "err", err)
		res = HealthResult{Ready: false, Reason: err.Error()}
		fallthrough
	case !res.Ready:
		writeJSON(w, http.StatusServiceUnavailable, res)
	default:
		writeJSON(w, http.StatusOK, res)
	}
}

func (h *handler) shutdown(w http.ResponseWriter, r *http.Request) {
	err := h.b.Shutdown(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, statusResponse{Status: "shutting down"})
}

func (h *handler) listKeys(w http.ResponseWriter, r *http.Request) {
	res, err := h.b.ListKeys(r.Context())
	res.Op = "list"
	h.reply(w, r, res, err)
}

// keyOp serves install, use and remove: the key comes base64 in the body.
func (h *handler) keyOp(w http.ResponseWriter, r *http.Request) {
	var req keyRequest
	if !decode(w, r, &req, false) {
		return
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(req.Key))
	switch {
	case req.Key == "":
		writeError(w, http.StatusBadRequest, "key: missing")
		return
	case err != nil:
		writeError(w, http.StatusBadRequest, "key: not base64 (want what `ctsync keygen` prints)")
		return
	case len(key) != 16 && len(key) != 24 && len(key) != 32:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("key: %d bytes long, want 16, 24 or 32", len(key)))
		return
	}

	var res KeysResult
	op := strings.TrimPrefix(r.URL.Path, pathKeys+"/")
	switch op {
	case "install":
		res, err = h.b.InstallKey(r.Context(), key)
	case "use":
		res, err = h.b.UseKey(r.Context(), key)
	case "remove":
		res, err = h.b.RemoveKey(r.Context(), key)
	}
	res.Op, res.Key = op, KeyFingerprint(key)
	h.reply(w, r, res, err)
}

// KeyFingerprint is how a key is shown: the first 8 hex digits of its
// SHA-256.
func KeyFingerprint(key []byte) string {
	sum := sha256.Sum256(key)
	return hex.EncodeToString(sum[:4])
}

// cache lists a cache: one line per flow, formatted here, written through
// a buffer so that a listing of millions of flows streams in constant
// memory. An error before anything was sent is an ordinary error response;
// one after is sent in the Ctsync-Error trailer.
func (h *handler) cache(w http.ResponseWriter, r *http.Request) {
	var q CacheQuery
	if !decode(w, r, &q, false) {
		return
	}
	if msg := checkQuery(&q); msg != "" {
		writeError(w, http.StatusBadRequest, msg)
		return
	}

	ctx := r.Context()
	if q.Expect {
		h.cacheExpect(w, r, &q)
		return
	}
	if q.Count {
		n := 0
		err := h.b.Cache(ctx, q, func(_ string, f *flow.Flow) error {
			if q.Extra.Match(f) {
				n++
			}
			return nil
		})
		h.reply(w, r, countResponse{Count: n}, err)
		return
	}

	format := newLineFormat(&q)
	var line []byte
	h.stream(w, r, "cache", func(write func([]byte) error) error {
		return h.b.Cache(ctx, q, func(origin string, f *flow.Flow) error {
			if !q.Extra.Match(f) {
				return nil
			}
			line = format.append(line[:0], origin, f)
			if len(line) == 0 {
				return nil // no line in this format (save needs addresses)
			}
			line = append(line, '\n')
			return write(line)
		})
	}, func(err error) {
		h.log.Warn("control: cache listing cut short", "cache", q.Cache, "err", err)
	})
}

// cacheExpect lists a cache's expectations (q.Expect), one conntrack -L
// expect line each, or counts them.
func (h *handler) cacheExpect(w http.ResponseWriter, r *http.Request, q *CacheQuery) {
	eb, ok := h.b.(ExpectBackend)
	if !ok {
		writeError(w, http.StatusBadRequest, "expect: this daemon does not keep expectations")
		return
	}
	ctx := r.Context()
	if q.Count {
		n := 0
		err := eb.CacheExpect(ctx, *q, func(string, *flow.Expect) error { n++; return nil })
		h.reply(w, r, countResponse{Count: n}, err)
		return
	}
	var line []byte
	h.stream(w, r, "expectation", func(write func([]byte) error) error {
		return eb.CacheExpect(ctx, *q, func(_ string, x *flow.Expect) error {
			line = append(x.AppendText(line[:0]), '\n')
			return write(line)
		})
	}, nil)
}

// stream answers a text listing: list calls write once per line. The
// lines go through a buffer, so that a listing of millions of flows
// streams in constant memory. An error before anything was sent is an
// ordinary error response; one after is sent in the Ctsync-Error trailer,
// after the lines listed so far (and cutShort, if set, is told).
func (h *handler) stream(w http.ResponseWriter, r *http.Request, what string,
	list func(write func(line []byte) error) error, cutShort func(error)) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Trailer", trailerError)
	sent := &countingWriter{w: w}
	bw := bufio.NewWriterSize(sent, 64<<10)
	err := list(func(line []byte) error {
		_, err := bw.Write(line)
		return err
	})
	switch {
	case err == nil:
		if err := bw.Flush(); err != nil {
			h.log.Debug("control: "+what+" listing not delivered", "err", err)
		}
	case sent.n == 0:
		w.Header().Del("Trailer")
		h.fail(w, r, err)
	default:
		// The status line is out: deliver the lines listed so far, then
		// the error.
		if cutShort != nil {
			cutShort(err)
		}
		if bw.Flush() == nil {
			w.Header().Set(trailerError, err.Error())
		}
	}
}

// checkQuery returns what is wrong with a cache query, or "".
func checkQuery(q *CacheQuery) string {
	switch q.Cache {
	case "internal", "external":
	default:
		return fmt.Sprintf("cache %q: want internal or external", q.Cache)
	}
	if q.Origin != "" && q.Cache != "external" {
		return "origin: only the external cache holds flows of other nodes"
	}
	switch q.Format {
	case "", "text":
		if q.Expect && (q.Extended || q.ID) {
			return "expect: expectations are listed in conntrack -L expect's format only"
		}
	case "save", "json":
		if q.Expect {
			return "expect: expectations are listed in conntrack -L expect's format only"
		}
		if q.Extended || q.ID {
			return fmt.Sprintf("format %s cannot be combined with extended or id", q.Format)
		}
	default:
		return fmt.Sprintf("format %q: want text, save or json", q.Format)
	}
	if err := q.Filter.Validate(); err != nil {
		return "filter: " + strings.ReplaceAll(err.Error(), "\n", "; ")
	}
	return ""
}

// lineFormat formats flows as `ctsync table list` does.
type lineFormat struct {
	format string
	text   flow.TextOptions
}

func newLineFormat(q *CacheQuery) *lineFormat {
	return &lineFormat{
		format: q.Format,
		// One clock for the whole listing.
		text: flow.TextOptions{Extended: q.Extended, ID: q.ID, Now: time.Now()},
	}
}

func (lf *lineFormat) append(b []byte, origin string, f *flow.Flow) []byte {
	switch lf.format {
	case "save":
		return f.AppendSave(b, 'A')
	case "json":
		return f.AppendJSON(b, origin)
	}
	return f.AppendText(b, lf.text)
}

// countingWriter counts the bytes that reached the client's connection.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// decode reads the JSON request body into v: at most maxBody bytes (more:
// 413), one value, no unknown fields (400). An empty body leaves v alone if
// optional.
func decode(w http.ResponseWriter, r *http.Request, v any, optional bool) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, terr := dec.Token(); !errors.Is(terr, io.EOF) {
			err = terr
			if err == nil {
				err = errors.New("data after the JSON value")
			}
		}
	} else if errors.Is(err, io.EOF) {
		if optional {
			return true
		}
		err = errors.New("empty body")
	}
	if err == nil {
		return true
	}

	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", maxBody))
		return false
	}
	writeError(w, http.StatusBadRequest, "bad request body: "+err.Error())
	return false
}

// reply writes v as JSON, or the error.
func (h *handler) reply(w http.ResponseWriter, r *http.Request, v any, err error) {
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// fail answers a Backend error: 400 for ErrInvalid, 503 when the daemon is
// stopping, 500 otherwise.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	code := http.StatusInternalServerError
	msg := err.Error()
	switch {
	case errors.Is(err, ErrInvalid):
		code = http.StatusBadRequest
	case h.stop.Err() != nil:
		code, msg = http.StatusServiceUnavailable, "the daemon is shutting down"
	case r.Context().Err() != nil:
		return // the client went away; nobody reads the answer
	}
	h.log.Warn("control request failed", "path", r.URL.Path, "status", code, "err", err)
	writeError(w, code, msg)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, errorResponse{Error: msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	body, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		code = http.StatusInternalServerError
		body, _ = json.Marshal(errorResponse{Error: "encode response: " + err.Error()})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(append(body, '\n'))
}
