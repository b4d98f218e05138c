package e2e

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"actorim/client"
	"actorim/protos/clientpb"
	"actorim/wire"
)

// Users and a group every fuzzed connection can name in its frames.
const (
	fuzzUser  = "fuzz-me"
	fuzzPeer  = "fuzz-peer"
	fuzzGroup = "fuzz-group"
)

// fuzzMaxFrames bounds the frames of one input (well under the request burst).
const fuzzMaxFrames = 64

// FuzzConnection fuzzes whole connections, not only the decoder: an input
// is a sequence of frames (each a big-endian uint16 length and that many
// bytes of binary protobuf) written to a logged-in connection of the shared
// node, after which a Ping must be answered (or the connection closed with
// a documented code) and the node must have logged no actor panic. The seeds
// cover every client frame kind, valid and slightly wrong; `go test` runs
// them, `make fuzz-conn` explores further.
func FuzzConnection(f *testing.F) {
	for _, seq := range connSeeds() {
		f.Add(encodeSeq(seq...))
	}
	f.Add([]byte{0, 3, 0xff, 0xff, 0xff})             // undecodable frame
	f.Add([]byte{0, 0})                               // empty frame
	f.Add(append([]byte{0, 2}, 0x7a, 0x00))           // unknown field
	f.Add(encodeSeq(&clientpb.Frame{Id: 1}))          // no body
	f.Add(encodeSeq(&clientpb.Frame{Id: 0xFFFFFFF0})) // the id the probe uses
	f.Fuzz(func(t *testing.T, data []byte) {
		frames := splitSeq(data)
		if len(frames) == 0 || len(frames) > fuzzMaxFrames {
			return
		}
		fuzzSetup.Do(func() { fuzzErr = setupFuzz(shared) })
		if fuzzErr != nil {
			t.Fatalf("fuzz setup: %v", fuzzErr)
		}
		before := sharedPanics()
		ws := fuzzLogin(t)
		defer ws.Close()
		for _, fr := range frames {
			_ = ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if err := ws.WriteMessage(websocket.BinaryMessage, fr); err != nil {
				break // closed by the node: the probe below reads why
			}
		}
		probe(t, ws)
		if n := sharedPanics(); n > before {
			t.Fatalf("the node logged %d actor panic(s) for this input", n-before)
		}
	})
}

// connSeeds are frame sequences that reach every handler of a connection.
func connSeeds() [][]*clientpb.Frame {
	text := func(s string) *clientpb.Content { return &clientpb.Content{Kind: &clientpb.Content_Text{Text: s}} }
	group := func(r *clientpb.GroupRequest) *clientpb.Frame {
		r.GroupId = fuzzGroup
		return &clientpb.Frame{Id: 9, Body: &clientpb.Frame_Group{Group: r}}
	}
	private := "p:" + fuzzUser + ":" + fuzzPeer
	frames := []*clientpb.Frame{
		{Id: 2, Body: &clientpb.Frame_Send{Send: &clientpb.Send{ClientMsgId: "f1", To: fuzzPeer, Content: text("hi")}}},
		{Id: 3, Body: &clientpb.Frame_Send{Send: &clientpb.Send{ClientMsgId: "f1", To: fuzzUser, Content: text("reused")}}},
		{Id: 4, Body: &clientpb.Frame_Send{Send: &clientpb.Send{ClientMsgId: "f2", To: fuzzGroup,
			ConversationType: clientpb.ConversationType_CONVERSATION_TYPE_GROUP, Content: text("g"), Mentions: []string{fuzzPeer}}}},
		{Id: 5, Body: &clientpb.Frame_PushAck{PushAck: &clientpb.PushAck{Seq: 1 << 40}}},
		{Id: 6, Body: &clientpb.Frame_Sync{Sync: &clientpb.SyncRequest{AfterSeq: 0, Limit: 500}}},
		{Id: 7, Body: &clientpb.Frame_History{History: &clientpb.HistoryRequest{ConversationId: private, Limit: 5}}},
		{Id: 8, Body: &clientpb.Frame_History{History: &clientpb.HistoryRequest{ConversationId: "g:" + fuzzGroup}}},
		{Id: 10, Body: &clientpb.Frame_Login{Login: &clientpb.Login{Token: "x", DeviceId: "d", Platform: clientpb.Platform_PLATFORM_WEB}}},
		{Id: 11, Body: &clientpb.Frame_FriendRequest{FriendRequest: &clientpb.FriendRequest{To: fuzzPeer, Note: "hello"}}},
		{Id: 12, Body: &clientpb.Frame_FriendRespond{FriendRespond: &clientpb.FriendRespond{From: fuzzPeer, Accept: true}}},
		{Id: 13, Body: &clientpb.Frame_FriendDelete{FriendDelete: &clientpb.FriendDelete{User: fuzzPeer}}},
		{Id: 14, Body: &clientpb.Frame_FriendUpdate{FriendUpdate: &clientpb.FriendUpdate{User: fuzzPeer, Remark: ptr("r"), Category: ptr("c")}}},
		{Id: 15, Body: &clientpb.Frame_Category{Category: &clientpb.CategoryOp{Op: clientpb.CategoryOp_OP_CREATE, Name: "c"}}},
		{Id: 16, Body: &clientpb.Frame_FriendList{FriendList: &clientpb.FriendListRequest{}}},
		{Id: 17, Body: &clientpb.Frame_Block{Block: &clientpb.BlockUser{User: fuzzPeer, Blocked: true}}},
		{Id: 18, Body: &clientpb.Frame_Block{Block: &clientpb.BlockUser{User: fuzzPeer, Blocked: false}}},
		{Id: 19, Body: &clientpb.Frame_Settings{Settings: &clientpb.UpdateSettings{FriendsOnly: ptrBool(true)}}},
		{Id: 20, Body: &clientpb.Frame_PresenceQuery{PresenceQuery: &clientpb.PresenceQuery{Users: []string{fuzzPeer, fuzzUser}}}},
		{Id: 21, Body: &clientpb.Frame_Typing{Typing: &clientpb.Typing{To: fuzzPeer, Typing: true}}},
		{Id: 22, Body: &clientpb.Frame_Typing{Typing: &clientpb.Typing{To: fuzzGroup, ConversationType: clientpb.ConversationType_CONVERSATION_TYPE_GROUP}}},
		{Id: 23, Body: &clientpb.Frame_Read{Read: &clientpb.MarkRead{ConversationId: private, MsgId: 1}}},
		{Id: 24, Body: &clientpb.Frame_Read{Read: &clientpb.MarkRead{ConversationId: "p:" + fuzzUser + ":nobody", MsgId: 1 << 50}}},
		{Id: 25, Body: &clientpb.Frame_Recall{Recall: &clientpb.Recall{ConversationId: private, MsgId: 1}}},
		{Id: 26, Body: &clientpb.Frame_Conversations{Conversations: &clientpb.ConversationsRequest{}}},
		// A conversation not yet in the index (this once panicked the grain).
		{Id: 27, Body: &clientpb.Frame_ConversationUpdate{ConversationUpdate: &clientpb.ConversationUpdate{
			ConversationId: "p:" + fuzzUser + ":never-talked", Pinned: ptrBool(true)}}},
		{Id: 28, Body: &clientpb.Frame_ConversationUpdate{ConversationUpdate: &clientpb.ConversationUpdate{
			ConversationId: "g:" + fuzzGroup, Muted: ptrBool(true)}}},
		group(&clientpb.GroupRequest{Op: &clientpb.GroupRequest_Create_{Create: &clientpb.GroupRequest_Create{Name: "g", Members: []string{fuzzPeer, fuzzPeer}}}}),
		group(&clientpb.GroupRequest{Op: &clientpb.GroupRequest_Info{Info: &clientpb.GroupRequest_Empty{}}}),
		group(&clientpb.GroupRequest{Op: &clientpb.GroupRequest_Members{Members: &clientpb.GroupRequest_Empty{}}}),
		group(&clientpb.GroupRequest{Op: &clientpb.GroupRequest_Invite{Invite: &clientpb.GroupRequest_Users{Users: []string{fuzzPeer, "no-such-user"}}}}),
		group(&clientpb.GroupRequest{Op: &clientpb.GroupRequest_Readers{Readers: &clientpb.GroupRequest_MsgID{MsgId: 1}}}),
		group(&clientpb.GroupRequest{Op: &clientpb.GroupRequest_ReadStatus{ReadStatus: &clientpb.GroupRequest_MsgIDs{MsgIds: []uint64{1, 2, 1 << 60}}}}),
		group(&clientpb.GroupRequest{Op: &clientpb.GroupRequest_Kick{Kick: &clientpb.GroupRequest_Users{Users: []string{fuzzUser}}}}),
		group(&clientpb.GroupRequest{Op: &clientpb.GroupRequest_Ban{Ban: &clientpb.GroupRequest_BanUsers{Users: []string{fuzzPeer}, Banned: true}}}),
		group(&clientpb.GroupRequest{Op: &clientpb.GroupRequest_Leave{Leave: &clientpb.GroupRequest_Empty{}}}),
		group(&clientpb.GroupRequest{Op: &clientpb.GroupRequest_Dissolve{Dissolve: &clientpb.GroupRequest_Empty{}}}),
		group(&clientpb.GroupRequest{}),
		{Id: 29, Body: &clientpb.Frame_Ping{Ping: &clientpb.Ping{}}},
		{Id: 30, Body: &clientpb.Frame_Pong{Pong: &clientpb.Pong{}}}, // a server frame from a client
		{Id: 31, Body: &clientpb.Frame_Logout{Logout: &clientpb.Logout{}}},
	}
	seqs := make([][]*clientpb.Frame, 0, len(frames)+1)
	for _, fr := range frames {
		seqs = append(seqs, []*clientpb.Frame{fr})
	}
	return append(seqs, frames[:len(frames)-1]) // all of them on one connection
}

func ptr(s string) *string { return &s }
func ptrBool(b bool) *bool { return &b }

// sharedPanics counts the actor panics the shared node logged so far.
func sharedPanics() int {
	b, _ := os.ReadFile(sharedLog)
	return strings.Count(string(b), "[ACTOR] Recovering")
}

func encodeSeq(frames ...*clientpb.Frame) []byte {
	var out []byte
	for _, fr := range frames {
		b, err := wire.ProtoCodec{}.Encode(fr)
		if err != nil {
			panic(err)
		}
		out = binary.BigEndian.AppendUint16(out, uint16(len(b)))
		out = append(out, b...)
	}
	return out
}

// splitSeq cuts an input into frames; a truncated last frame is kept as
// the bytes there are.
func splitSeq(data []byte) [][]byte {
	var out [][]byte
	for len(data) >= 2 {
		n := int(binary.BigEndian.Uint16(data))
		data = data[2:]
		n = min(n, len(data))
		out = append(out, data[:n])
		data = data[n:]
	}
	return out
}

var (
	fuzzSetup  sync.Once
	fuzzErr    error
	fuzzDevice atomic.Int64
)

// setupFuzz registers the users the seeds name (they may exist from an
// earlier run on the same node) and creates the group as the peer.
func setupFuzz(n *testNode) error {
	h := &client.HTTP{BaseURL: n.http}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, u := range []string{fuzzUser, fuzzPeer} {
		if err := h.Register(ctx, u, "password-"+u); err != nil && client.CodeOf(err) != clientpb.ErrorCode_ERR_CONFLICT {
			return fmt.Errorf("register %s: %w", u, err)
		}
	}
	tok, _, err := n.tokens.Issue(fuzzPeer, false)
	if err != nil {
		return err
	}
	c, err := client.Dial(ctx, n.ws, client.Options{})
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Login(ctx, tok, "setup", clientpb.Platform_PLATFORM_WEB, nil); err != nil {
		return err
	}
	_, err = c.Group(ctx, fuzzGroup, &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Create_{Create: &clientpb.GroupRequest_Create{
		Name: "fuzz", Members: []string{fuzzUser}, JoinPolicy: clientpb.JoinPolicy_JOIN_POLICY_OPEN}}})
	if err != nil && client.CodeOf(err) != clientpb.ErrorCode_ERR_CONFLICT {
		return fmt.Errorf("create group: %w", err)
	}
	return nil
}

// fuzzLogin logs fuzzUser in on a fresh device of the shared node.
func fuzzLogin(t *testing.T) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{Subprotocols: []string{wire.SubprotocolProto}}
	ws, resp, err := d.Dial(shared.ws, nil)
	specCheck.RecordResponse(resp)
	if err != nil {
		if resp != nil {
			t.Fatalf("dial: %v (HTTP %d)", err, resp.StatusCode)
		}
		t.Fatalf("dial: %v", err)
	}
	tok, _, err := shared.tokens.Issue(fuzzUser, false)
	if err != nil {
		t.Fatal(err)
	}
	login, _ := wire.ProtoCodec{}.Encode(&clientpb.Frame{Id: 1, Body: &clientpb.Frame_Login{Login: &clientpb.Login{
		Token: tok, DeviceId: fmt.Sprintf("fz%d", fuzzDevice.Add(1)), Platform: clientpb.Platform_PLATFORM_DESKTOP}}})
	_ = ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := ws.WriteMessage(websocket.BinaryMessage, login); err != nil {
		t.Fatal(err)
	}
	for {
		f := readFuzzFrame(t, ws)
		if f.GetLoginOk() != nil {
			return ws
		}
		if e := f.GetError(); e != nil && f.GetId() == 1 {
			t.Fatalf("login refused: %v", e)
		}
	}
}

const probeID = 0xFFFFFFF0

// closedAsDocumented lists the close codes a client's own frames can earn.
var closedAsDocumented = map[int]bool{
	1000: true, clientpb.CloseProtocol: true, clientpb.CloseRateLimited: true, clientpb.CloseKicked: true,
	clientpb.CloseTryAgain: true, websocket.CloseMessageTooBig: true,
}

// probe checks the connection still serves after the fuzzed frames: a Ping
// must be answered, then a request to the user grain and one to the group
// grain. Each grain handles its mailbox in order, so their answers also mean
// that the fuzzed requests before them were handled (and a panic among them
// logged). A close with a documented code is an answer too.
func probe(t *testing.T, ws *websocket.Conn) {
	t.Helper()
	probes := []*clientpb.Frame{
		{Id: probeID, Body: &clientpb.Frame_Ping{Ping: &clientpb.Ping{}}},
		{Id: probeID + 1, Body: &clientpb.Frame_FriendList{FriendList: &clientpb.FriendListRequest{}}},
		{Id: probeID + 2, Body: &clientpb.Frame_Group{Group: &clientpb.GroupRequest{GroupId: fuzzGroup,
			Op: &clientpb.GroupRequest_Info{Info: &clientpb.GroupRequest_Empty{}}}}},
	}
	waiting := map[uint32]bool{}
	for _, p := range probes {
		b, _ := wire.ProtoCodec{}.Encode(p)
		_ = ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
		_ = ws.WriteMessage(websocket.BinaryMessage, b) // a closed socket shows in the reads
		waiting[p.GetId()] = true
	}
	deadline := time.Now().Add(15 * time.Second)
	for len(waiting) > 0 {
		_ = ws.SetReadDeadline(deadline)
		_, data, err := ws.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) && closedAsDocumented[ce.Code] {
				return
			}
			t.Fatalf("probes %v unanswered: %v", waiting, err)
		}
		f, err := wire.ProtoCodec{}.Decode(data)
		if err != nil {
			t.Fatalf("the node sent an undecodable frame: %v", err)
		}
		if f.GetPong() != nil || f.GetResult() != nil || f.GetError() != nil {
			delete(waiting, f.GetId())
		}
	}
}

func readFuzzFrame(t *testing.T, ws *websocket.Conn) *clientpb.Frame {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, data, err := ws.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	f, err := wire.ProtoCodec{}.Decode(data)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	return f
}
