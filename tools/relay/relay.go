// Package relay is imbench's reference server: a minimal WebSocket relay
// that speaks just enough of the actorim protocol (docs/protocol.md) for
// the pairs workload, with nothing durable behind it. imbench runs the same
// workload against it and against actorim and reports the ratios, so that
// targets stated as ratios to it hold on any machine.
//
// It is a benchmark reference, not product code, and promises nothing:
//
//   - Login: any token is accepted; the user id is the token's "sub" claim,
//     read without checking the signature or the expiry. LoginOK answers.
//   - Send: the message gets an id and, per recipient user, the next seq
//     (in memory, from 1); it is pushed at once to each of the recipient's
//     open connections as one Push. A recipient with no connection open
//     misses it: there is no storage, no resync, no retry. The sender gets
//     a SendAck right away, because imbench's closed loop waits for one; it
//     means only "relayed", not "stored".
//   - PushAck is ignored; Ping gets a Pong; any other frame an Error.
//
// Both subprotocols ("actorim.v1.proto" and "actorim.v1.json") are served:
// binary with the node's generated (vtprotobuf) codec, JSON's hot frames
// with encoding/json and the content passed through untouched (json.go),
// the rest with the node's codecs (package wire). Each connection has a reader (gorilla/websocket) and a
// writer goroutine, which writes the frames that queued up meanwhile in one
// system call.
package relay

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"actorim/protos/clientpb"
	"actorim/wire"
)

// Server is the relay.
type Server struct {
	upgrader websocket.Upgrader
	mu       sync.Mutex
	users    map[string]*user
	nextID   atomic.Uint64
}

// user is one user's seq counter and open connections; pushes to the user
// are numbered and queued under mu, so each connection sees them in order.
type user struct {
	mu    sync.Mutex
	seq   uint64
	conns map[*conn]struct{}
}

// conn is one client connection; out feeds its writer goroutine.
type conn struct {
	ws    *websocket.Conn
	codec wire.Codec
	op    byte // of data frames: opBinary or opText
	out   chan frame
	done  chan struct{} // closed when the reader is done
}

// New returns a relay.
func New() *Server {
	return &Server{users: map[string]*user{}, upgrader: websocket.Upgrader{
		ReadBufferSize: 4096, WriteBufferSize: 4096,
		Subprotocols: []string{wire.SubprotocolProto, wire.SubprotocolJSON},
		CheckOrigin:  func(*http.Request) bool { return true },
	}}
}

// Handler serves the relay's WebSocket on /ws and /readyz (200).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", s.serveWS)
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	return mux
}

// ListenAndServe serves on addr until ctx ends.
func (s *Server) ListenAndServe(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = hs.Close()
	}()
	if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func (s *Server) user(id string) *user {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[id]
	if u == nil {
		u = &user{conns: map[*conn]struct{}{}}
		s.users[id] = u
	}
	return u
}

func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	c := &conn{ws: ws, codec: wire.CodecFor(ws.Subprotocol()), out: make(chan frame, 1024), done: make(chan struct{}), op: opBinary}
	if c.codec.MessageType() == websocket.TextMessage {
		c.op = opText
	}
	// gorilla would answer pings and closes itself, on this goroutine, in
	// the middle of writeLoop's frames: they go through the queue instead.
	ws.SetPingHandler(func(data string) error { c.queue(frame{op: opPong, b: []byte(data)}); return nil })
	ws.SetCloseHandler(func(code int, _ string) error {
		c.queue(frame{op: opClose, b: websocket.FormatCloseMessage(code, "")})
		return nil
	})
	go c.writeLoop()
	defer close(c.done) // writeLoop writes what is queued and closes the socket
	var me string
	var mine *user
	defer func() {
		if mine != nil {
			mine.mu.Lock()
			delete(mine.conns, c)
			mine.mu.Unlock()
		}
	}()
	for {
		_, data, err := ws.ReadMessage()
		if err != nil {
			return
		}
		if mine != nil && c.op == opText && s.fastJSON(c, me, data) {
			continue
		}
		f, err := c.codec.Decode(data)
		if err != nil {
			return
		}
		switch b := f.GetBody().(type) {
		case *clientpb.Frame_Login:
			if mine != nil {
				c.reply(f.GetId(), errFrame("already logged in"))
				continue
			}
			if me = subject(b.Login.GetToken()); me == "" {
				c.reply(f.GetId(), errFrame("no sub claim in the token"))
				return
			}
			mine = s.user(me)
			mine.mu.Lock()
			mine.conns[c] = struct{}{}
			seq := mine.seq
			mine.mu.Unlock()
			c.reply(f.GetId(), &clientpb.Frame{Body: &clientpb.Frame_LoginOk{LoginOk: &clientpb.LoginOK{
				UserId: me, SessionId: "relay", LatestSeq: seq, StreamFromSeq: seq + 1,
				ServerTimeMs: uint64(time.Now().UnixMilli()), HeartbeatMs: 60_000, MaxFrameBytes: 1 << 20}}})
		case *clientpb.Frame_Send:
			if mine == nil {
				c.reply(f.GetId(), errFrame("login first"))
				continue
			}
			s.relay(c, f.GetId(), me, b.Send.GetTo(), b.Send.GetClientMsgId(), b.Send.GetContent(), nil)
		case *clientpb.Frame_PushAck:
		case *clientpb.Frame_Ping:
			c.reply(f.GetId(), &clientpb.Frame{Body: &clientpb.Frame_Pong{Pong: &clientpb.Pong{}}})
		default:
			c.reply(f.GetId(), errFrame("the relay does not serve this frame"))
		}
	}
}

// relay pushes one message to its recipient's connections and acks it.
// The content comes as a proto (binary sender) or as raw JSON (JSON
// sender); the other form is made only when a recipient needs it.
func (s *Server) relay(c *conn, id uint32, from, to, clientMsgID string, content *clientpb.Content, raw json.RawMessage) {
	now := uint64(time.Now().UnixMilli())
	a, b := from, to
	if b < a {
		a, b = b, a
	}
	msgID, conv := s.nextID.Add(1), "p:"+a+":"+b
	u := s.user(to)
	u.mu.Lock()
	u.seq++
	var bin, js []byte // each encoded once
	for rc := range u.conns {
		if rc.op == opText {
			if js == nil {
				content, raw = bothContents(content, raw)
				var f jsonPushFrame
				f.Push.Entries[0] = jsonEntry{Seq: u.seq, Message: jsonMessage{ID: msgID, ConversationID: conv,
					ConversationType: "CONVERSATION_TYPE_PRIVATE", From: from, To: to, FromDevice: "d",
					ClientMsgID: clientMsgID, SentAtMs: now, Content: raw}}
				js, _ = json.Marshal(&f)
			}
			rc.send(js)
			continue
		}
		if bin == nil {
			content, raw = bothContents(content, raw)
			push := &clientpb.Frame{Body: &clientpb.Frame_Push{Push: &clientpb.Push{Entries: []*clientpb.Entry{
				{Seq: u.seq, Item: &clientpb.Entry_Message{Message: &clientpb.Message{Id: msgID, ConversationId: conv,
					ConversationType: clientpb.ConversationType_CONVERSATION_TYPE_PRIVATE, From: from, To: to,
					FromDevice: "d", ClientMsgId: clientMsgID, SentAtMs: now, Content: content}}}}}}}
			bin, _ = push.MarshalVT()
		}
		rc.send(bin)
	}
	u.mu.Unlock()
	if c.op == opText {
		ack, _ := json.Marshal(&jsonAckFrame{ID: id, SendAck: jsonSendAck{ClientMsgID: clientMsgID, MsgID: msgID, SentAtMs: now, ConversationID: conv}})
		c.send(ack)
		return
	}
	c.reply(id, &clientpb.Frame{Body: &clientpb.Frame_SendAck{SendAck: &clientpb.SendAck{
		ClientMsgId: clientMsgID, MsgId: msgID, SentAtMs: now, ConversationId: conv}}})
}

func errFrame(msg string) *clientpb.Frame {
	return &clientpb.Frame{Body: &clientpb.Frame_Error{Error: &clientpb.Error{
		Code: clientpb.ErrorCode_ERR_BAD_REQUEST, Message: "relay: " + msg}}}
}

// reply sends f as the answer to request id.
func (c *conn) reply(id uint32, f *clientpb.Frame) {
	f.Id = id
	b, err := c.codec.Encode(f)
	if err == nil {
		c.send(b)
	}
}

// send queues a data frame; it waits while the queue is full (a slow
// reader slows its senders) and drops it once the connection is gone.
func (c *conn) send(b []byte) { c.queue(frame{op: c.op, b: b}) }

func (c *conn) queue(f frame) {
	select {
	case c.out <- f:
	case <-c.done:
	}
}

// frame is a WebSocket frame to write: its opcode and payload.
type frame struct {
	op byte
	b  []byte
}

// The opcodes of RFC 6455.
const (
	opText   = 1
	opBinary = 2
	opClose  = 8
	opPong   = 10
)

// writeLoop writes the queued frames in order. gorilla reads the socket;
// writing is done here, by hand (a server's frames are unmasked: a header
// and the payload), so that the frames queued while one system call was
// under way all go in the next one instead of one write each. Once the
// reader is done it writes what is left and closes the socket.
func (c *conn) writeLoop() {
	nc := c.ws.NetConn()
	defer nc.Close()
	w := bufio.NewWriterSize(nc, 32<<10)
	put := func(f frame) {
		var h [10]byte
		h[0] = 0x80 | f.op // FIN
		n := 2
		switch l := len(f.b); {
		case l < 126:
			h[1] = byte(l)
		case l <= 0xffff:
			h[1] = 126
			binary.BigEndian.PutUint16(h[2:], uint16(l))
			n = 4
		default:
			h[1] = 127
			binary.BigEndian.PutUint64(h[2:], uint64(l))
			n = 10
		}
		_, _ = w.Write(h[:n])
		_, _ = w.Write(f.b)
	}
	drain := func() {
		for {
			select {
			case f := <-c.out:
				put(f)
			default:
				return
			}
		}
	}
	for {
		select {
		case f := <-c.out:
			put(f)
			drain()
			if w.Flush() != nil {
				return
			}
		case <-c.done:
			drain()
			_ = w.Flush()
			return
		}
	}
}

// subject returns the "sub" claim of a JWT, unverified.
func subject(token string) string {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return ""
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var claims struct {
		Sub string `json:"sub"`
	}
	if json.Unmarshal(raw, &claims) != nil {
		return ""
	}
	return claims.Sub
}
