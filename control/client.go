package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// ErrNotRunning is returned (wrapped, with the socket path and what to do)
// when no daemon answers on the control socket.
var ErrNotRunning = errors.New("ctsync daemon is not running")

// ServerError is an error the daemon answered with. Its text is the
// daemon's message.
type ServerError struct {
	Status  int // HTTP status: 4xx for a bad request, 5xx for a failure
	Message string
}

func (e *ServerError) Error() string { return e.Message }

// Client talks to a daemon's control socket. It is safe for concurrent
// use; every call opens its own connection (see DialKeepAlive) and may
// block until the daemon's work is done or ctx ends.
type Client struct {
	path string
	hc   *http.Client
}

// Dial returns a client for the socket at path. It does no I/O: a daemon
// that is not running shows in the first call, as ErrNotRunning.
func Dial(path string) *Client { return dial(path, false) }

// DialKeepAlive is Dial for a program that polls the daemon: its calls
// reuse connections (a new one costs about as much as a small request).
// CloseIdle closes them.
func DialKeepAlive(path string) *Client { return dial(path, true) }

// CloseIdle closes the connections a DialKeepAlive client keeps.
func (c *Client) CloseIdle() { c.hc.CloseIdleConnections() }

func dial(path string, keepAlive bool) *Client {
	c := &Client{path: path}
	c.hc = &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			conn, err := d.DialContext(ctx, "unix", path)
			if err != nil {
				return nil, c.dialError(err)
			}
			return conn, nil
		},
		DisableKeepAlives:  !keepAlive, // a command makes one request: nothing to close
		DisableCompression: true,
	}}
	return c
}

// Path returns the socket's path.
func (c *Client) Path() string { return c.path }

// dialFailure marks an error of connecting to the socket: its text is
// already what the user should read.
type dialFailure struct{ err error }

func (d *dialFailure) Error() string { return d.err.Error() }
func (d *dialFailure) Unwrap() error { return d.err }

func (c *Client) dialError(err error) error {
	const start = "start it with `ctsync daemon` or `systemctl start ctsync`"
	switch {
	case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ENOTDIR):
		err = fmt.Errorf("%w (no control socket at %s); %s", ErrNotRunning, c.path, start)
	case errors.Is(err, syscall.ECONNREFUSED):
		err = fmt.Errorf("%w (nothing listens on the control socket %s); %s", ErrNotRunning, c.path, start)
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		err = fmt.Errorf("permission denied on the control socket %s: run as root", c.path)
	default:
		err = fmt.Errorf("control socket %s: %w", c.path, err)
	}
	return &dialFailure{err}
}

// Commit writes the external cache into the kernel table.
func (c *Client) Commit(ctx context.Context) (CommitResult, error) {
	var res CommitResult
	err := c.call(ctx, http.MethodPost, pathCommit, nil, &res)
	return res, err
}

// Flush empties the internal cache, the external cache, or both ("").
func (c *Client) Flush(ctx context.Context, which string) error {
	return c.call(ctx, http.MethodPost, pathFlush, flushRequest{Cache: which}, nil)
}

// ResyncKernel rebuilds the internal cache from a kernel dump.
func (c *Client) ResyncKernel(ctx context.Context) (ResyncResult, error) {
	var res ResyncResult
	err := c.call(ctx, http.MethodPost, pathResyncKernel, nil, &res)
	return res, err
}

// ResyncPeers asks every peer to send its flows again and returns the
// number of peers asked.
func (c *Client) ResyncPeers(ctx context.Context) (int, error) {
	var res peersResponse
	err := c.call(ctx, http.MethodPost, pathResyncPeers, nil, &res)
	return res.Peers, err
}

// SendBulk sends every internal flow to every peer and returns the number
// of peers.
func (c *Client) SendBulk(ctx context.Context) (int, error) {
	var res peersResponse
	err := c.call(ctx, http.MethodPost, pathSendBulk, nil, &res)
	return res.Peers, err
}

// Purge schedules a purge after the delay (0: the daemon's purge_timeout).
func (c *Client) Purge(ctx context.Context, after time.Duration) (PurgeResult, error) {
	var res PurgeResult
	err := c.call(ctx, http.MethodPost, pathPurge, purgeRequest{AfterSeconds: after.Seconds()}, &res)
	return res, err
}

// Cache writes the flows of a cache that match q to w, one line each as
// the daemon formatted them, and returns the number of lines. With q.Count
// it writes nothing and returns the number of matching flows. An error
// after some lines were written still returns their number.
func (c *Client) Cache(ctx context.Context, q CacheQuery, w io.Writer) (int, error) {
	if q.Count {
		var res countResponse
		err := c.call(ctx, http.MethodPost, pathCache, q, &res)
		return res.Count, err
	}
	resp, err := c.do(ctx, http.MethodPost, pathCache, q)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, responseError(resp)
	}
	lc := &lineCounter{w: w}
	if _, err := io.Copy(lc, resp.Body); err != nil {
		if lc.err != nil {
			return lc.lines, lc.err // the caller's writer failed
		}
		return lc.lines, c.transportError(ctx, err)
	}
	if msg := resp.Trailer.Get(trailerError); msg != "" {
		return lc.lines, &ServerError{Status: http.StatusInternalServerError, Message: msg}
	}
	return lc.lines, nil
}

// Stats decodes the daemon's statistics into v (a struct, or any for a
// generic tree; json.RawMessage keeps them as sent).
func (c *Client) Stats(ctx context.Context, v any) error {
	return c.call(ctx, http.MethodGet, pathStats, nil, v)
}

// Members lists the cluster members.
func (c *Client) Members(ctx context.Context) ([]Member, error) {
	var ms []Member
	err := c.call(ctx, http.MethodGet, pathMembers, nil, &ms)
	return ms, err
}

// Notify performs a keepalived transition: master, backup, fault or stop.
func (c *Client) Notify(ctx context.Context, state string) (NotifyResult, error) {
	var res NotifyResult
	err := c.call(ctx, http.MethodPost, pathNotify, notifyRequest{State: state}, &res)
	return res, err
}

// Health says whether the node is ready to take over. A node that is not
// ready is not an error: Ready is false and Reason says why.
func (c *Client) Health(ctx context.Context) (HealthResult, error) {
	resp, err := c.do(ctx, http.MethodGet, pathHealth, nil)
	if err != nil {
		return HealthResult{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusServiceUnavailable {
		return HealthResult{}, responseError(resp)
	}
	var res struct {
		HealthResult
		Error string `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
		return HealthResult{}, fmt.Errorf("health: bad answer from the daemon: %w", c.transportError(ctx, err))
	}
	if res.Error != "" && res.Reason == "" {
		res.Reason = res.Error
	}
	res.Ready = res.Ready && resp.StatusCode == http.StatusOK
	return res.HealthResult, nil
}

// Shutdown asks the daemon to stop. It returns once the daemon has
// accepted, not when it has exited.
func (c *Client) Shutdown(ctx context.Context) error {
	return c.call(ctx, http.MethodPost, pathShutdown, nil, nil)
}

// ListKeys asks every cluster member which keys it holds.
func (c *Client) ListKeys(ctx context.Context) (KeysResult, error) {
	var res KeysResult
	err := c.call(ctx, http.MethodGet, pathKeys, nil, &res)
	return res, err
}

// KeyOp installs, uses or removes a key (op: install, use, remove) on every
// cluster member; key is base64, as `ctsync keygen` prints it. A result
// with Errors is not an error: some members failed, the others did it.
func (c *Client) KeyOp(ctx context.Context, op, key string) (KeysResult, error) {
	var res KeysResult
	switch op {
	case "install", "use", "remove":
	default:
		return res, fmt.Errorf("unknown key operation %q: want install, use or remove", op)
	}
	err := c.call(ctx, http.MethodPost, pathKeys+"/"+op, keyRequest{Key: key}, &res)
	return res, err
}

// call sends in (if not nil) as JSON and decodes a 2xx answer into out (if
// not nil).
func (c *Client) call(ctx context.Context, method, path string, in, out any) error {
	resp, err := c.do(ctx, method, path, in)
	if err != nil {
		return err
	}
	defer func() {
		// Read to the end, so that a kept-alive connection can be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		resp.Body.Close()
	}()
	if resp.StatusCode/100 != 2 {
		return responseError(resp)
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s: bad answer from the daemon: %w", path, c.transportError(ctx, err))
	}
	return nil
}

func (c *Client) do(ctx context.Context, method, path string, in any) (*http.Response, error) {
	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://ctsync"+path, body)
	if err != nil {
		return nil, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, c.transportError(ctx, err)
	}
	return resp, nil
}

// transportError strips net/http's "Post URL:" wrapping, which names a
// made-up host, from an error.
func (c *Client) transportError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if df, ok := errors.AsType[*dialFailure](err); ok {
		return df.err
	}
	if ue, ok := errors.AsType[*url.Error](err); ok {
		err = ue.Err
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
		return fmt.Errorf("control socket %s: the daemon closed the connection (did it stop?): %w", c.path, err)
	}
	return fmt.Errorf("control socket %s: %w", c.path, err)
}

// responseError reads a non-2xx answer's {"error": "..."}.
func responseError(resp *http.Response) error {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e errorResponse
	if json.Unmarshal(data, &e) != nil || e.Error == "" {
		e.Error = strings.TrimSpace(string(data))
		if e.Error == "" {
			e.Error = resp.Status
		}
	}
	return &ServerError{Status: resp.StatusCode, Message: e.Error}
}

// lineCounter passes bytes through and counts newlines.
type lineCounter struct {
	w     io.Writer
	lines int
	err   error // the first error of w
}

func (l *lineCounter) Write(p []byte) (int, error) {
	n, err := l.w.Write(p)
	l.lines += bytes.Count(p[:n], []byte{'\n'})
	if err != nil && l.err == nil {
		l.err = err
	}
	return n, err
}
