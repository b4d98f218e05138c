package gateway

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/sync/semaphore"
	"golang.org/x/time/rate"

	"actorim/actors"
	"actorim/ids"
	"actorim/protos/clientpb"
	"actorim/wire"
)

// maxBadFrames is how many undecodable frames in a row a client may send
// before the connection is closed with CloseProtocol. Frames other than
// Login before login count as bad.
const maxBadFrames = 16

// frameOverhead is what a frame read but not yet answered costs beyond its
// bytes (the decoded frame, its mailbox entry), for MaxInflightBytes.
const frameOverhead = 1 << 10

var upgrader = websocket.Upgrader{
	Subprotocols: []string{wire.SubprotocolProto, wire.SubprotocolJSON},
	// Most frames are a few hundred bytes; a larger one is read past the
	// buffer. Idle sockets keep their read buffer, so it stays small.
	ReadBufferSize:  512,
	WriteBufferSize: 1024,
	// Pooled write buffers keep an idle connection's memory small.
	WriteBufferPool: &sync.Pool{},
	// Clients authenticate with a token in the Login frame, never with
	// cookies, so a cross-origin page gains nothing: any origin may connect.
	CheckOrigin: func(*http.Request) bool { return true },
}

var readBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func (s *Server) handleWS(w http.ResponseWriter, r *http.Request) {
	if n := s.open.Add(1); n > int64(s.cfg.MaxConnections) {
		s.open.Add(-1)
		s.refuseConn(w)
		return
	}
	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		s.open.Add(-1)
		return // the upgrader already answered with an HTTP error
	}
	// Serve the socket on a goroutine of its own and return: while the
	// handler runs, net/http keeps its per-connection state (4 KiB read and
	// write buffers, the parsed request) reachable, about 10 KiB per idle
	// socket for nothing.
	c := &wsConn{srv: s, ws: ws, codec: wire.CodecFor(ws.Subprotocol())}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	go c.serve()
}

// wsConn is one socket. Its goroutine (the HTTP handler's) reads; writes come
// from the connection actor and, for protocol errors, from the reader, under wmu.
type wsConn struct {
	srv   *Server
	ws    *websocket.Conn
	codec wire.Codec

	wmu     sync.Mutex
	closing atomic.Bool
	ping    *time.Timer

	// ctx ends when the socket starts closing: it releases a reader waiting
	// for inflight room.
	ctx    context.Context
	cancel context.CancelFunc
	// inflight holds the bytes of frames handed to the connection actor and
	// not yet answered (see Config.MaxInflightBytes).
	inflight *semaphore.Weighted

	// app is the logged-in user's application, guarded by srv.connsMu
	// (closeApp looks for it).
	app string
}

var errClosing = errors.New("gateway: connection closing")

// WriteFrame implements actors.Outbound.
func (c *wsConn) WriteFrame(f *clientpb.Frame) error {
	data, err := c.codec.Encode(f)
	if err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closing.Load() {
		return errClosing
	}
	_ = c.ws.SetWriteDeadline(time.Now().Add(c.srv.cfg.WriteTimeout))
	if err := c.ws.WriteMessage(c.codec.MessageType(), data); err != nil {
		// A client that cannot take a frame within WriteTimeout is too slow to
		// keep: close now rather than let its frames pile up.
		c.closeNow()
		return err
	}
	return nil
}

// Close implements actors.Outbound: it sends a close frame and gives the
// client a moment to answer before the socket goes (closing at once could
// reset the connection and lose the close frame and the frames before it).
func (c *wsConn) Close(code int, reason string) {
	if c.closing.Swap(true) {
		return
	}
	c.cancel()
	_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(time.Second))
	_ = c.ws.SetReadDeadline(time.Now().Add(2 * time.Second))
}

func (c *wsConn) closeNow() {
	c.closing.Store(true)
	c.cancel()
	_ = c.ws.Close()
}

// writeError answers frame id with e, and when the client may retry.
func (c *wsConn) writeError(id uint32, e *clientpb.Error, retryAfter time.Duration) {
	c.srv.metrics.badFrames.WithLabelValues(e.GetCode().String()).Inc()
	_ = c.WriteFrame(&clientpb.Frame{Id: id, Body: &clientpb.Frame_Error{Error: &clientpb.Error{
		Code: e.GetCode(), Message: e.GetMessage(), RetryAfterMs: uint32(retryAfter / time.Millisecond),
	}}})
}

// serve runs a socket's life: login on this goroutine, then the read loop
// on a fresh one. Login (token parsing, spawning the actor) grows a stack to
// several KiB, which an idle socket would otherwise keep for its whole life;
// the read loop needs a fraction of it.
func (c *wsConn) serve() {
	s := c.srv
	done := func() {
		c.cancel()
		_ = c.ws.Close()
		s.untrack(c)
		s.open.Add(-1)
	}
	if !s.track(c) {
		c.Close(clientpb.CloseReconnectElsewhere, "server shutting down")
		c.drain()
		c.cancel()
		_ = c.ws.Close()
		s.open.Add(-1)
		return
	}
	// Frames above MaxFrameBytes but within four times it are refused with an
	// error and the connection lives on; beyond that, gorilla closes with 1009.
	c.ws.SetReadLimit(int64(s.cfg.MaxFrameBytes) * 4)
	conn := c.login()
	if conn == nil {
		done()
		return
	}
	go func() {
		defer done()
		c.readLoop(conn)
	}()
}

// readLoop reads the frames of a logged-in connection until the socket ends.
//
// What a client can make the node hold or do is bounded here, whatever it
// sends: every frame spends from a request budget (Config.RequestRate, Send
// also from its own), and frames read but not yet answered may hold at most
// Config.MaxInflightBytes; beyond it the socket is not read until answers
// free room, so a flood fills the client's own socket buffers, not the node.
func (c *wsConn) readLoop(conn actors.Inbound) {
	cfg := c.srv.cfg
	defer conn.SocketClosed()
	// Heartbeats start after login: during login only the login deadline
	// counts, and a pong must not extend it.
	c.ws.SetPongHandler(func(string) error {
		if !c.closing.Load() {
			_ = c.ws.SetReadDeadline(time.Now().Add(cfg.IdleTimeout))
		}
		return nil
	})
	// Armed only once assigned: sendPing re-arms c.ping itself.
	c.ping = time.AfterFunc(time.Duration(math.MaxInt64), c.sendPing)
	c.ping.Reset(cfg.PingInterval)
	defer c.ping.Stop()
	c.inflight = semaphore.NewWeighted(int64(cfg.MaxInflightBytes))
	requests := rate.NewLimiter(rate.Limit(cfg.RequestRate), cfg.RequestBurst)
	sends := rate.NewLimiter(rate.Limit(cfg.SendRate), cfg.SendBurst)
	bad, refused := 0, 0
	for {
		f, size, code, err := c.readFrame(cfg.IdleTimeout)
		if err != nil {
			c.readFailed(err)
			return
		}
		if c.closing.Load() {
			continue // draining until the client answers our close
		}
		if code != clientpb.ErrorCode_ERR_UNSPECIFIED {
			if bad++; bad >= maxBadFrames {
				c.Close(clientpb.CloseProtocol, "too many invalid frames")
			}
			continue
		}
		bad = 0
		if !requests.Allow() {
			c.srv.metrics.throttled.Inc()
			// A client that ignores the refusals is closed: answering each
			// frame of a flood would cost the node a write per frame.
			if refused++; refused > cfg.RequestBurst {
				c.Close(clientpb.CloseRateLimited, "request rate exceeded")
				continue
			}
			c.writeError(f.GetId(), errRequestRate, time.Duration(float64(time.Second)/cfg.RequestRate))
			continue
		}
		refused = 0
		if _, ok := f.GetBody().(*clientpb.Frame_Send); ok {
			if !sends.Allow() {
				c.srv.metrics.rateLimited.Inc()
				c.writeError(f.GetId(), errSendRate, time.Duration(float64(time.Second)/cfg.SendRate))
				continue
			}
		}
		cost := int64(min(size+frameOverhead, cfg.MaxInflightBytes))
		if !c.inflight.TryAcquire(cost) {
			c.srv.metrics.stalls.Inc()
			if c.inflight.Acquire(c.ctx, cost) != nil {
				continue // closing: the next read ends the loop
			}
		}
		conn.Frame(f, func() { c.inflight.Release(cost) })
	}
}

// login waits for the Login frame, verifies it, and starts the connection actor.
func (c *wsConn) login() actors.Inbound {
	cfg := c.srv.cfg
	deadline := time.Now().Add(cfg.LoginTimeout)
	bad := 0
	for {
		f, _, code, err := c.readFrame(time.Until(deadline))
		if err != nil {
			var ne interface{ Timeout() bool }
			if errors.As(err, &ne) && ne.Timeout() && !c.closing.Load() {
				c.Close(clientpb.CloseLoginTimeout, "no login in time")
				c.drain()
			}
			return nil
		}
		l := f.GetLogin()
		if l == nil {
			if code == clientpb.ErrorCode_ERR_UNSPECIFIED {
				c.writeError(f.GetId(), errNotLoggedIn, 0)
			}
			if bad++; bad >= maxBadFrames {
				c.Close(clientpb.CloseProtocol, "too many frames before login")
				c.drain()
				return nil
			}
			continue
		}
		claims, err := c.srv.tokens.Verify(c.ctx, l.GetToken())
		if err != nil {
			c.writeError(f.GetId(), errTokenRefused(err), 0)
			c.Close(clientpb.CloseUnauthenticated, "unauthenticated")
			c.drain()
			return nil
		}
		if !ids.ValidDevice(l.GetDeviceId()) {
			c.writeError(f.GetId(), errBadDevice, 0)
			continue
		}
		if _, ok := clientpb.Platform_name[int32(l.GetPlatform())]; !ok || l.GetPlatform() == clientpb.Platform_PLATFORM_UNSPECIFIED {
			c.writeError(f.GetId(), errBadPlatform, 0)
			continue
		}
		c.srv.connsMu.Lock()
		c.app = claims.App
		c.srv.connsMu.Unlock()
		return c.srv.backend.Connect(actors.Session{
			App:           claims.App,
			UserID:        claims.UserID,
			DeviceID:      l.GetDeviceId(),
			SessionID:     newSessionID(),
			Platform:      l.GetPlatform(),
			LastSeq:       l.LastSeq,
			LoginID:       f.GetId(),
			HeartbeatMs:   uint32(cfg.IdleTimeout / 2 / time.Millisecond),
			MaxFrameBytes: uint32(cfg.MaxFrameBytes),
			TokenIssuedAt: claims.IssuedAt,
		}, c)
	}
}

// readFrame reads and decodes one frame of size bytes. Frames that cannot
// be served are answered here (code set, f nil); err is set only when the
// socket is done.
func (c *wsConn) readFrame(timeout time.Duration) (f *clientpb.Frame, size int, code clientpb.ErrorCode, err error) {
	if !c.closing.Load() {
		_ = c.ws.SetReadDeadline(time.Now().Add(timeout))
	}
	_, r, err := c.ws.NextReader()
	if err != nil {
		return nil, 0, 0, err
	}
	max := c.srv.cfg.MaxFrameBytes
	buf := readBufs.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= 2*max {
			buf.Reset()
			readBufs.Put(buf)
		}
	}()
	buf.Reset()
	n, err := buf.ReadFrom(io.LimitReader(r, int64(max)+1))
	if err != nil {
		return nil, 0, 0, err
	}
	if n > int64(max) {
		// Skip the rest without buffering it; a frame beyond the hard read
		// limit makes this fail and gorilla closes the socket with 1009.
		if _, err := io.Copy(io.Discard, r); err != nil {
			return nil, 0, 0, err
		}
		c.writeError(0, clientError(clientpb.ErrorCode_ERR_FRAME_TOO_LARGE, "frame exceeds "+strconv.Itoa(max)+" bytes"), 0)
		return nil, 0, clientpb.ErrorCode_ERR_FRAME_TOO_LARGE, nil
	}
	c.srv.metrics.framesIn.WithLabelValues(c.codec.Name()).Inc()
	f, derr := c.codec.Decode(buf.Bytes())
	if derr != nil {
		c.writeError(0, clientError(clientpb.ErrorCode_ERR_BAD_FRAME, derr.Error()), 0)
		return nil, 0, clientpb.ErrorCode_ERR_BAD_FRAME, nil
	}
	return f, int(n), 0, nil
}

// readFailed closes the socket after the read side ended, telling an idle
// client why.
func (c *wsConn) readFailed(err error) {
	var ne interface{ Timeout() bool }
	if errors.As(err, &ne) && ne.Timeout() && !c.closing.Load() {
		c.Close(clientpb.CloseIdle, "idle timeout")
	}
	c.closeNow()
}

// drain reads until the client answers a close frame (or the deadline set
// by Close passes), so the close frame is not lost to a reset.
func (c *wsConn) drain() {
	for {
		if _, _, err := c.ws.NextReader(); err != nil {
			return
		}
	}
}

func (c *wsConn) sendPing() {
	if c.closing.Load() {
		return
	}
	_ = c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(c.srv.cfg.WriteTimeout))
	c.ping.Reset(c.srv.cfg.PingInterval)
}

// newSessionID returns a session id that orders by creation time: 16 hex
// digits of the Unix time in nanoseconds (fixed width until 2262), then 8
// random ones. When two connections of one device meet in a grain, the
// newer login is the greater id.
func newSessionID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%016x%s", time.Now().UnixNano(), hex.EncodeToString(b[:]))
}

func defaultMaxConnections() int {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil || l.Cur > 1<<30 {
		return 100_000
	}
	return max(64, int(l.Cur)-512)
}
