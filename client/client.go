// Package client is a Go client of the actorim protocol: a WebSocket
// connection with request/response correlation, a push channel, and the HTTP
// calls for registration and login. imctl, imbench and the end-to-end tests
// use it; docs/protocol.md describes the protocol it speaks.
package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"actorim/protos/clientpb"
	"actorim/wire"
)

// Error is an Error frame (or HTTP error) from the server.
type Error struct {
	Code       clientpb.ErrorCode
	Message    string
	RetryAfter time.Duration
	// Status is the HTTP status of an HTTP error; 0 for an Error frame.
	Status int
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// CodeOf returns the protocol error code of err, or ERR_UNSPECIFIED.
func CodeOf(err error) clientpb.ErrorCode {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return clientpb.ErrorCode_ERR_UNSPECIFIED
}

// ErrClosed reports a request on a closed connection.
var ErrClosed = errors.New("client: connection closed")

// Options configure Dial. Zero values are the defaults.
type Options struct {
	// JSON selects the JSON subprotocol; the default is binary protobuf.
	JSON bool
	// TLS configures wss:// connections.
	TLS *tls.Config
	// NetDial dials the TCP connection (e.g. from a chosen source address).
	NetDial func(ctx context.Context, network, addr string) (net.Conn, error)
	// PushBuffer is the capacity of the Pushes channel. Default 1024. When it
	// is full the connection stops reading, which is the server's cue that
	// this client is slow.
	PushBuffer int
	// AutoAck acknowledges pushes as they are read from the socket (before
	// the application sees them): at once, or with AckDelay after the first
	// unacknowledged push, one cumulative ack covering all that arrived.
	AutoAck bool
	// AckDelay delays automatic acks to coalesce them, as TCP delays ACKs.
	// Keep it well under the server's first resend (2 s by default).
	AckDelay time.Duration
	// OnPush, when set, receives each Push on the connection's read
	// goroutine instead of the Pushes channel. It must not block for long.
	OnPush func(*clientpb.Push)
	// HandshakeTimeout bounds the WebSocket handshake. Default 10s.
	HandshakeTimeout time.Duration
	// Header is added to the handshake request.
	Header http.Header
	// OnHandshake, when set, is given the handshake's HTTP answer (its
	// Request is the handshake request), a refusal's included, before Dial
	// returns: e.g. for a test to check it against docs/openapi.yaml.
	OnHandshake func(*http.Response)
}

// Conn is one WebSocket connection to a node.
type Conn struct {
	ws    *websocket.Conn
	codec wire.Codec
	opts  Options

	wmu     sync.Mutex
	nextID  atomic.Uint32
	pmu     sync.Mutex
	pending map[uint32]chan *clientpb.Frame

	pushes  chan *clientpb.Push
	errs    chan *clientpb.Error
	signals chan *clientpb.Signal
	done    chan struct{}

	ackMu      sync.Mutex
	ackSeq     uint64 // highest seq to acknowledge
	ackPending bool   // a delayed ack is scheduled

	closeMu   sync.Mutex
	closeCode int
	closeText string
	kick      *clientpb.Kick
	readErr   error
}

// Dial opens a WebSocket connection to url (ws://host:port/ws or wss://...).
func Dial(ctx context.Context, url string, opts Options) (*Conn, error) {
	if opts.PushBuffer <= 0 {
		opts.PushBuffer = 1024
	}
	if opts.HandshakeTimeout <= 0 {
		opts.HandshakeTimeout = 10 * time.Second
	}
	sub := wire.SubprotocolProto
	if opts.JSON {
		sub = wire.SubprotocolJSON
	}
	d := websocket.Dialer{
		Subprotocols:     []string{sub},
		TLSClientConfig:  opts.TLS,
		NetDialContext:   opts.NetDial,
		HandshakeTimeout: opts.HandshakeTimeout,
		ReadBufferSize:   4096,
		WriteBufferSize:  4096,
	}
	ws, resp, err := d.DialContext(ctx, url, opts.Header)
	if opts.OnHandshake != nil && resp != nil {
		opts.OnHandshake(resp)
	}
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("client: dial %s: %w (HTTP %d)", url, err, resp.StatusCode)
		}
		return nil, fmt.Errorf("client: dial %s: %w", url, err)
	}
	c := &Conn{
		ws:      ws,
		codec:   wire.CodecFor(ws.Subprotocol()),
		opts:    opts,
		pending: map[uint32]chan *clientpb.Frame{},
		pushes:  make(chan *clientpb.Push, opts.PushBuffer),
		errs:    make(chan *clientpb.Error, 64),
		signals: make(chan *clientpb.Signal, 256),
		done:    make(chan struct{}),
	}
	ws.SetCloseHandler(func(code int, text string) error {
		c.closeMu.Lock()
		c.closeCode, c.closeText = code, text
		c.closeMu.Unlock()
		_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, ""), time.Now().Add(time.Second))
		return nil
	})
	go c.readLoop()
	return c, nil
}

// Subprotocol is the negotiated subprotocol.
func (c *Conn) Subprotocol() string { return c.ws.Subprotocol() }

// Pushes delivers Push frames in the order received. It is closed when the
// connection ends.
func (c *Conn) Pushes() <-chan *clientpb.Push { return c.pushes }

// Errors delivers Error frames that answer no request (id 0), such as
// ERR_BAD_FRAME or ERR_FRAME_TOO_LARGE. Dropped when nobody reads them.
func (c *Conn) Errors() <-chan *clientpb.Error { return c.errs }

// IsClosed reports whether the connection has ended.
// Signals delivers ephemeral notices (typing, presence). The newest 256
// unread ones are kept; more are dropped.
func (c *Conn) Signals() <-chan *clientpb.Signal { return c.signals }

// Op sends one of the requests answered by a Result (friends, groups,
// conversations...) and returns the Result or the server's *Error.
func (c *Conn) Op(ctx context.Context, f *clientpb.Frame) (*clientpb.Result, error) {
	res, err := c.Request(ctx, f)
	if err != nil {
		return nil, err
	}
	r := res.GetResult()
	if r == nil {
		return nil, fmt.Errorf("client: unexpected answer %T", res.GetBody())
	}
	return r, nil
}

// Group sends a group request for groupID.
func (c *Conn) Group(ctx context.Context, groupID string, req *clientpb.GroupRequest) (*clientpb.Result, error) {
	req.GroupId = groupID
	return c.Op(ctx, &clientpb.Frame{Body: &clientpb.Frame_Group{Group: req}})
}

func (c *Conn) IsClosed() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// Done is closed when the connection has ended.
func (c *Conn) Done() <-chan struct{} { return c.done }

// CloseStatus reports the close code and reason the server sent (0 if none)
// and the Kick frame that preceded a kick. Valid after Done.
func (c *Conn) CloseStatus() (code int, reason string, kick *clientpb.Kick) {
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	return c.closeCode, c.closeText, c.kick
}

func (c *Conn) readLoop() {
	defer func() {
		c.pmu.Lock()
		for id, ch := range c.pending {
			close(ch)
			delete(c.pending, id)
		}
		c.pmu.Unlock()
		close(c.pushes)
		close(c.done)
		_ = c.ws.Close()
	}()
	for {
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			c.closeMu.Lock()
			if errors.As(err, &ce) {
				c.closeCode, c.closeText = ce.Code, ce.Text
			}
			c.readErr = err
			c.closeMu.Unlock()
			return
		}
		f, err := c.codec.Decode(data)
		if err != nil {
			continue // a server never sends these; skip rather than die
		}
		switch b := f.GetBody().(type) {
		case *clientpb.Frame_Push:
			if es := b.Push.GetEntries(); c.opts.AutoAck && len(es) > 0 {
				c.autoAck(es[len(es)-1].GetSeq())
			}
			if c.opts.OnPush != nil {
				c.opts.OnPush(b.Push)
			} else {
				c.pushes <- b.Push
			}
			continue
		case *clientpb.Frame_Signal:
			select { // ephemeral: dropped when nobody reads them
			case c.signals <- b.Signal:
			default:
			}
			continue
		case *clientpb.Frame_Kick:
			c.closeMu.Lock()
			c.kick = b.Kick
			c.closeMu.Unlock()
			continue
		}
		if f.GetId() == 0 {
			if e := f.GetError(); e != nil {
				select {
				case c.errs <- e:
				default:
				}
			}
			continue
		}
		c.pmu.Lock()
		ch := c.pending[f.GetId()]
		delete(c.pending, f.GetId())
		c.pmu.Unlock()
		if ch != nil {
			ch <- f
		}
	}
}

// Write sends a frame without waiting for anything.
func (c *Conn) Write(f *clientpb.Frame) error {
	data, err := c.codec.Encode(f)
	if err != nil {
		return err
	}
	return c.WriteRaw(c.codec.MessageType(), data)
}

// WriteRaw sends raw bytes as one WebSocket message (for tests of bad input).
func (c *Conn) WriteRaw(messageType int, data []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return c.ws.WriteMessage(messageType, data)
}

// Request sends f with a fresh id and waits for the frame answering it. An
// Error answer is returned as *Error.
func (c *Conn) Request(ctx context.Context, f *clientpb.Frame) (*clientpb.Frame, error) {
	id := c.nextID.Add(1)
	if id == 0 {
		id = c.nextID.Add(1)
	}
	f.Id = id
	ch := make(chan *clientpb.Frame, 1)
	c.pmu.Lock()
	select {
	case <-c.done:
		c.pmu.Unlock()
		return nil, ErrClosed
	default:
	}
	c.pending[id] = ch
	c.pmu.Unlock()
	forget := func() {
		c.pmu.Lock()
		delete(c.pending, id)
		c.pmu.Unlock()
	}
	if err := c.Write(f); err != nil {
		forget()
		return nil, err
	}
	select {
	case res, ok := <-ch:
		if !ok {
			return nil, ErrClosed
		}
		if e := res.GetError(); e != nil {
			return res, &Error{Code: e.GetCode(), Message: e.GetMessage(), RetryAfter: time.Duration(e.GetRetryAfterMs()) * time.Millisecond}
		}
		return res, nil
	case <-ctx.Done():
		forget()
		return nil, ctx.Err()
	}
}

// Login authenticates the connection. lastSeq is the resume point: nil to
// start at the end of the timeline, or the highest seq already processed.
func (c *Conn) Login(ctx context.Context, token, deviceID string, platform clientpb.Platform, lastSeq *uint64) (*clientpb.LoginOK, error) {
	res, err := c.Request(ctx, &clientpb.Frame{Body: &clientpb.Frame_Login{Login: &clientpb.Login{
		Token: token, DeviceId: deviceID, Platform: platform, LastSeq: lastSeq,
	}}})
	if err != nil {
		return nil, err
	}
	ok := res.GetLoginOk()
	if ok == nil {
		return nil, fmt.Errorf("client: unexpected answer to login: %v", res)
	}
	return ok, nil
}

// Send sends a message and waits for its ack. Retrying with the same
// clientMsgID is safe: the server answers with the original ack.
func (c *Conn) Send(ctx context.Context, s *clientpb.Send) (*clientpb.SendAck, error) {
	res, err := c.Request(ctx, &clientpb.Frame{Body: &clientpb.Frame_Send{Send: s}})
	if err != nil {
		return nil, err
	}
	if ack := res.GetSendAck(); ack != nil {
		return ack, nil
	}
	return nil, fmt.Errorf("client: unexpected answer to send: %v", res)
}

// SendText sends a text message to a user.
func (c *Conn) SendText(ctx context.Context, to, clientMsgID, text string) (*clientpb.SendAck, error) {
	return c.Send(ctx, &clientpb.Send{ClientMsgId: clientMsgID, To: to, Content: Text(text)})
}

// autoAck acknowledges seq now, or after AckDelay together with whatever
// arrives meanwhile.
func (c *Conn) autoAck(seq uint64) {
	if c.opts.AckDelay <= 0 {
		_ = c.Ack(seq)
		return
	}
	c.ackMu.Lock()
	defer c.ackMu.Unlock()
	c.ackSeq = max(c.ackSeq, seq)
	if c.ackPending {
		return
	}
	c.ackPending = true
	time.AfterFunc(c.opts.AckDelay, func() {
		c.ackMu.Lock()
		seq := c.ackSeq
		c.ackPending = false
		c.ackMu.Unlock()
		_ = c.Ack(seq)
	})
}

// Ack acknowledges every pushed entry up to and including seq.
func (c *Conn) Ack(seq uint64) error {
	return c.Write(&clientpb.Frame{Body: &clientpb.Frame_PushAck{PushAck: &clientpb.PushAck{Seq: seq}}})
}

// Sync reads the timeline after afterSeq (limit 0: the server's default).
func (c *Conn) Sync(ctx context.Context, afterSeq uint64, limit uint32) (*clientpb.SyncResult, error) {
	res, err := c.Request(ctx, &clientpb.Frame{Body: &clientpb.Frame_Sync{Sync: &clientpb.SyncRequest{AfterSeq: afterSeq, Limit: limit}}})
	if err != nil {
		return nil, err
	}
	return res.GetSyncResult(), nil
}

// History pages a conversation backwards from beforeSeq (0: the newest).
func (c *Conn) History(ctx context.Context, conversationID string, beforeSeq uint64, limit uint32) (*clientpb.HistoryResult, error) {
	res, err := c.Request(ctx, &clientpb.Frame{Body: &clientpb.Frame_History{History: &clientpb.HistoryRequest{
		ConversationId: conversationID, BeforeSeq: beforeSeq, Limit: limit,
	}}})
	if err != nil {
		return nil, err
	}
	return res.GetHistoryResult(), nil
}

// Ping measures a round trip.
func (c *Conn) Ping(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	_, err := c.Request(ctx, &clientpb.Frame{Body: &clientpb.Frame_Ping{Ping: &clientpb.Ping{}}})
	return time.Since(start), err
}

// Logout ends the device's session; the server closes the connection.
func (c *Conn) Logout() error {
	return c.Write(&clientpb.Frame{Body: &clientpb.Frame_Logout{Logout: &clientpb.Logout{}}})
}

// Close closes the connection with 1000 and waits briefly for the server's answer.
func (c *Conn) Close() error {
	c.wmu.Lock()
	err := c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	c.wmu.Unlock()
	select {
	case <-c.done:
	case <-time.After(2 * time.Second):
		_ = c.ws.Close()
		<-c.done
	}
	return err
}

// Abort drops the TCP connection without a close handshake, as a crashed
// client or a lost network would.
func (c *Conn) Abort() {
	_ = c.ws.NetConn().Close()
	<-c.done
}

// Text returns text content.
func Text(s string) *clientpb.Content {
	return &clientpb.Content{Kind: &clientpb.Content_Text{Text: s}}
}

// Emoji returns emoji content.
func Emoji(code string) *clientpb.Content {
	return &clientpb.Content{Kind: &clientpb.Content_Emoji{Emoji: code}}
}

// Custom returns application-defined content carrying a JSON document.
func Custom(typ, json string) *clientpb.Content {
	return &clientpb.Content{Kind: &clientpb.Content_Custom{Custom: &clientpb.Custom{Type: typ, Json: json}}}
}
