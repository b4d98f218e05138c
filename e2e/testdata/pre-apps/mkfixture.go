// Command mkfixture writes e2e/testdata/pre-apps: it runs the pre-apps
// imnode (built from f9f940f) on a fresh data directory, fills it through
// the Go client, records what the users read (expected.json), and stops
// the node with SIGTERM. It builds only inside a checkout of f9f940f (it
// uses that commit's client); see README.md. Under testdata, the go
// tool ignores it.
//
//	go run ./internal/mkfixture <imnode-old> <data dir> <expected.json>
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"actorim/auth"
	"actorim/client"
	"actorim/protos/clientpb"
)

const (
	authSecret  = "e2e-secret-0123456789abcdef0123456789"
	adminSecret = "e2e-admin-secret-0123456789abcdef0123"
)

var bg = context.Background()

func must(err error, what string) {
	if err != nil {
		log.Fatalf("%s: %v", what, err)
	}
}

func main() {
	bin, data, out := os.Args[1], os.Args[2], os.Args[3]
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(bin, "--data", data, "--listen", addr)
	cmd.Env = append(os.Environ(), "ACTORIM_AUTH_SECRET="+authSecret, "ACTORIM_ADMIN_SECRET="+adminSecret)
	logf, _ := os.Create(filepath.Join(os.TempDir(), "mkfixture-imnode.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	must(cmd.Start(), "start")
	for i := 0; ; i++ {
		if r, err := http.Get("http://" + addr + "/readyz"); err == nil && r.StatusCode == 200 {
			r.Body.Close()
			break
		}
		if i > 300 {
			log.Fatal("not ready")
		}
		time.Sleep(50 * time.Millisecond)
	}
	base := "http://" + addr
	ws := "ws://" + addr + "/ws"
	admTok, _ := auth.NewTokens([]byte(adminSecret), time.Hour)
	at, _, _ := admTok.Issue("ops", true)
	adm := &client.HTTP{BaseURL: base, Token: at}
	h := &client.HTTP{BaseURL: base}

	must(h.Register(bg, "alice", "password-alice"), "register alice")
	must(h.Register(bg, "bob", "password-bob"), "register bob")
	must(adm.Provision(bg, "carol", ""), "provision carol")

	connect := func(user, dev string) *client.Conn {
		tok, err := h.Login(bg, user, "password-"+user)
		must(err, "login "+user)
		c, err := client.Dial(bg, ws, client.Options{})
		must(err, "dial")
		_, err = c.Login(bg, tok.Token, dev, clientpb.Platform_PLATFORM_WEB, nil)
		must(err, "ws login "+user)
		go func() {
			for p := range c.Pushes() {
				if es := p.GetEntries(); len(es) > 0 {
					_ = c.Ack(es[len(es)-1].GetSeq())
				}
			}
		}()
		return c
	}
	a, b := connect("alice", "phone"), connect("bob", "laptop")
	pause := func() { time.Sleep(50 * time.Millisecond) }
	op := func(c *client.Conn, f *clientpb.Frame) *clientpb.Result {
		r, err := c.Op(bg, f)
		must(err, fmt.Sprintf("op %T", f.GetBody()))
		pause()
		return r
	}
	n := 0
	send := func(c *client.Conn, to, text string) *clientpb.SendAck {
		n++
		ack, err := c.SendText(bg, to, fmt.Sprintf("fx-%d", n), text)
		must(err, "send "+text)
		pause()
		return ack
	}
	sendGroup := func(c *client.Conn, gid, text string) *clientpb.SendAck {
		n++
		ack, err := c.Send(bg, &clientpb.Send{ClientMsgId: fmt.Sprintf("fx-%d", n), To: gid, Content: client.Text(text),
			ConversationType: clientpb.ConversationType_CONVERSATION_TYPE_GROUP})
		must(err, "send group "+text)
		pause()
		return ack
	}
	req := func(c *client.Conn, f *clientpb.Frame) *clientpb.Result {
		r, err := c.Request(bg, f)
		must(err, fmt.Sprintf("request %T", f.GetBody()))
		pause()
		return r.GetResult()
	}

	// Friends.
	req(a, &clientpb.Frame{Body: &clientpb.Frame_FriendRequest{FriendRequest: &clientpb.FriendRequest{To: "bob", Note: "it's alice"}}})
	req(b, &clientpb.Frame{Body: &clientpb.Frame_FriendRespond{FriendRespond: &clientpb.FriendRespond{From: "alice", Accept: true}}})
	// Private messages both ways, one recalled.
	send(a, "bob", "hello bob")
	send(b, "alice", "hi alice")
	howAreYou := send(a, "bob", "how are you?")
	send(b, "alice", "fine, thanks")
	oops := send(a, "bob", "oops, wrong chat")
	op(a, &clientpb.Frame{Body: &clientpb.Frame_Recall{Recall: &clientpb.Recall{ConversationId: "p:alice:bob", MsgId: oops.GetMsgId()}}})
	// A group of both and its messages.
	_, err := a.Group(bg, "team", &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Create_{Create: &clientpb.GroupRequest_Create{
		Name: "the team", JoinPolicy: clientpb.JoinPolicy_JOIN_POLICY_OPEN, Members: []string{"bob"}}}})
	must(err, "create group")
	pause()
	sendGroup(a, "team", "welcome to the team")
	glad := sendGroup(b, "team", "glad to be here")
	// The provisioned user writes through the admin API.
	n++
	_, err = adm.SendAs(bg, "carol", &clientpb.Send{ClientMsgId: fmt.Sprintf("fx-%d", n), To: "alice", Content: client.Text("hello from carol")})
	must(err, "send as carol")
	pause()
	// Read marks: bob read alice's private messages up to "how are you?",
	// alice the group up to "glad to be here".
	op(b, &clientpb.Frame{Body: &clientpb.Frame_Read{Read: &clientpb.MarkRead{ConversationId: "p:alice:bob", MsgId: howAreYou.GetMsgId()}}})
	op(a, &clientpb.Frame{Body: &clientpb.Frame_Read{Read: &clientpb.MarkRead{ConversationId: "g:team", MsgId: glad.GetMsgId()}}})
	time.Sleep(300 * time.Millisecond)

	// What the users read, for the test to compare with.
	userTok, _ := auth.NewTokens([]byte(authSecret), time.Hour)
	ct, _, _ := userTok.IssueFor("carol", false, time.Hour)
	c, err := client.Dial(bg, ws, client.Options{})
	must(err, "dial carol")
	_, err = c.Login(bg, ct, "tablet", clientpb.Platform_PLATFORM_WEB, nil)
	must(err, "carol login")
	expected := map[string]map[string]json.RawMessage{}
	pj := func(m proto.Message) json.RawMessage {
		b, err := protojson.MarshalOptions{Indent: "  "}.Marshal(m)
		must(err, "protojson")
		return b
	}
	for user, conn := range map[string]*client.Conn{"alice": a, "bob": b, "carol": c} {
		e := map[string]json.RawMessage{}
		s, err := conn.Sync(bg, 0, 500)
		must(err, "sync "+user)
		e["sync"] = pj(s)
		e["conversations"] = pj(op(conn, &clientpb.Frame{Body: &clientpb.Frame_Conversations{Conversations: &clientpb.ConversationsRequest{}}}).GetConversations())
		e["friends"] = pj(req(conn, &clientpb.Frame{Body: &clientpb.Frame_FriendList{FriendList: &clientpb.FriendListRequest{}}}).GetFriends())
		if user != "carol" {
			for _, conv := range []string{"p:alice:bob", "g:team"} {
				hr, err := conn.History(bg, conv, 0, 100)
				must(err, "history")
				e["history "+conv] = pj(hr)
			}
			gi, err := conn.Group(bg, "team", &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Info{Info: &clientpb.GroupRequest_Empty{}}})
			must(err, "group info")
			e["group"] = pj(gi.GetGroup())
			gm, err := conn.Group(bg, "team", &clientpb.GroupRequest{Op: &clientpb.GroupRequest_Members{Members: &clientpb.GroupRequest_Empty{}}})
			must(err, "group members")
			e["members"] = pj(gm.GetMembers())
		}
		expected[user] = e
	}
	js, _ := json.MarshalIndent(expected, "", "  ")
	must(os.WriteFile(out, append(js, '\n'), 0o644), "write expected")
	a.Close()
	b.Close()
	c.Close()
	time.Sleep(200 * time.Millisecond)

	must(cmd.Process.Signal(syscall.SIGTERM), "sigterm")
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		log.Printf("imnode exited: %v", err)
	case <-time.After(30 * time.Second):
		log.Fatal("imnode did not exit within 30s")
	}
}
