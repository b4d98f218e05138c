package e2e

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"actorim/apps"
	"actorim/client"
	"actorim/hooks"
	"actorim/protos/clientpb"
)

// pushes returns the push.offline events received, in arrival order.
func (r *receiver) pushes() []hooks.PushData {
	var out []hooks.PushData
	for _, e := range r.received() {
		if e.Event != hooks.EventPushOffline {
			continue
		}
		var d hooks.PushData
		if err := json.Unmarshal(e.Data.(json.RawMessage), &d); err != nil {
			panic(err)
		}
		out = append(out, d)
	}
	return out
}

// pushesAfter waits until more than seen push.offline events arrived and
// returns the new ones, after a moment for stragglers.
func (r *receiver) pushesAfter(t *testing.T, seen int) []hooks.PushData {
	t.Helper()
	waitFor(t, 10*time.Second, "a push.offline event", func() bool { return len(r.pushes()) > seen })
	time.Sleep(150 * time.Millisecond)
	return r.pushes()[seen:]
}

// noPush asserts that no push.offline event arrives for a while: longer
// than the push interval and the batcher's window.
func (r *receiver) noPush(t *testing.T, seen int, what string) {
	t.Helper()
	time.Sleep(1200 * time.Millisecond)
	if got := r.pushes(); len(got) > seen {
		t.Fatalf("%s: pushed %+v", what, got[seen:])
	}
}

// offlineCount is how many user.offline events for user arrived.
func (r *receiver) offlineCount(user string) int {
	n := 0
	for _, e := range r.received() {
		var p hooks.PresenceData
		if e.Event == hooks.EventUserOffline && json.Unmarshal(e.Data.(json.RawMessage), &p) == nil && p.User == user {
			n++
		}
	}
	return n
}

// closeAll closes devices of user and waits until the user's grain knows
// the user offline (the user.offline event).
func (r *receiver) closeAll(t *testing.T, user string, devices ...*device) {
	t.Helper()
	before := r.offlineCount(user)
	for _, d := range devices {
		_ = d.Close()
	}
	waitFor(t, 10*time.Second, user+" offline", func() bool { return r.offlineCount(user) > before })
}

// onePush requires exactly one push of one recipient and returns both.
func onePush(t *testing.T, got []hooks.PushData, what string) (hooks.PushData, hooks.PushRecipient) {
	t.Helper()
	if len(got) != 1 || len(got[0].Recipients) != 1 {
		t.Fatalf("%s: pushes %+v, want one of one recipient", what, got)
	}
	return got[0], got[0].Recipients[0]
}

// devicesOf lists a recipient's pushed devices with their tokens.
func devicesOf(r hooks.PushRecipient) []string {
	var out []string
	for _, t := range r.Tokens {
		out = append(out, t.Device+"="+t.Provider+":"+t.Token)
	}
	slices.Sort(out)
	return out
}

func (d *device) registerPush(t *testing.T, provider, token string) {
	t.Helper()
	if err := d.RegisterPush(ctx(t), provider, token); err != nil {
		t.Fatalf("%s/%s: register push: %v", d.user, d.id, err)
	}
}

// TestOfflinePush: a message to a user none of whose devices is online in
// the foreground reaches the app's push webhook with the registered devices
// that are offline or backgrounded, the preview, and the unread total as
// the badge; messages within the push interval are pushed once, as the
// latest with their count; a muted conversation, a silent message, the
// user's own message and a device online in the foreground push nothing;
// a logout removes the device's registration; a group message's offline
// members are pushed in one batch; registrations are checked.
func TestOfflinePush(t *testing.T) {
	n := startNode(t, nil)
	offlinePush(t, n, n)
}

// TestOfflinePushCluster: the same on two nodes over Redis, the senders on
// one and bob's devices on the other.
func TestOfflinePushCluster(t *testing.T) {
	c := startCluster(t, 2)
	offlinePush(t, c.nodes[0].node(), c.nodes[1].node())
}

// offlinePush runs TestOfflinePush with the senders on n and the pushed
// users' devices on m.
func offlinePush(t *testing.T, n, m *testNode) {
	r := newReceiver(t)
	app := n.webhookApp(t, r, apps.Settings{
		Webhook: apps.Webhook{Events: []string{hooks.EventUserOffline}}, // push.offline is added by Push.Enabled
		Push:    apps.Push{Enabled: true, Preview: "text", MinIntervalMs: 500},
	})
	tok := func(user string) string { return n.appToken(t, app, user) }
	top := t
	alice := n.connectToken(t, n.appUser(t, app, "alice"), "alice", "web")
	carol := n.connectToken(t, n.appUser(t, app, "carol"), "carol", "web")
	n.appUser(t, app, "bob")
	phone := m.connectToken(t, tok("bob"), "bob", "phone")
	tablet := m.connectToken(t, tok("bob"), "bob", "tablet")

	t.Run("refusals", func(t *testing.T) {
		for _, c := range []struct{ provider, token string }{
			{"Bad Provider!", "tok"}, {"", "tok"}, {strings.Repeat("p", 33), "tok"},
			{"fcm", strings.Repeat("t", 4097)}, {"fcm", "has space"}, {"fcm", "line\nbreak"},
		} {
			if err := phone.RegisterPush(ctx(t), c.provider, c.token); client.CodeOf(err) != clientpb.ErrorCode_ERR_BAD_REQUEST {
				t.Fatalf("register push %q %.20q: %v, want ERR_BAD_REQUEST", c.provider, c.token, err)
			}
		}
	})
	phone.registerPush(t, "fcm", "tok-phone")
	tablet.registerPush(t, "apns", "tok-tablet-old")
	tablet.registerPush(t, "apns", "tok-tablet") // replaces the device's earlier token
	both := []string{"phone=fcm:tok-phone", "tablet=apns:tok-tablet"}

	t.Run("online in the foreground: no push", func(t *testing.T) {
		alice.send(t, "bob", "you are online")
		phone.requireText(t, "you are online")
		r.noPush(t, 0, "bob online")
	})
	r.closeAll(t, "bob", phone, tablet)
	badge := 1 // "you are online" is unread

	t.Run("offline: pushed with preview and badge", func(t *testing.T) {
		seen := len(r.pushes())
		ack := alice.send(t, "bob", "one")
		badge++
		p, rc := onePush(t, r.pushesAfter(t, seen), "first message")
		if p.MessageID != strconv.FormatUint(ack.GetMsgId(), 10) || p.From != "alice" || p.ConversationID != "p:alice:bob" || p.ConversationType != "private" ||
			p.Kind != "text" || p.Preview != "one" || p.SentAtMs == 0 {
			t.Fatalf("push %+v for message %d", p, ack.GetMsgId())
		}
		if rc.User != "bob" || rc.Badge != badge || rc.Count != 1 || !slices.Equal(devicesOf(rc), both) {
			t.Fatalf("recipient %+v, want bob, badge %d, count 1, devices %v", rc, badge, both)
		}
	})

	t.Run("rate limited per device: held, then pushed as one", func(t *testing.T) {
		seen := len(r.pushes())
		alice.send(t, "bob", "two")
		alice.send(t, "bob", "three")
		badge += 2
		p, rc := onePush(t, r.pushesAfter(t, seen), "two messages within the interval")
		if p.Preview != "three" || rc.Count != 2 || rc.Badge != badge || !slices.Equal(devicesOf(rc), both) {
			t.Fatalf("push %+v %+v, want the latest (three), count 2, badge %d", p, rc, badge)
		}
	})

	t.Run("muted conversation: no push", func(t *testing.T) {
		d := m.connectToken(t, tok("bob"), "bob", "tablet")
		d.op(t, &clientpb.Frame{Body: &clientpb.Frame_ConversationUpdate{ConversationUpdate: &clientpb.ConversationUpdate{
			ConversationId: "p:alice:bob", Muted: boolp(true)}}})
		r.closeAll(t, "bob", d)
		seen := len(r.pushes())
		alice.send(t, "bob", "muted")
		badge++
		r.noPush(t, seen, "a muted conversation")
	})

	t.Run("silent message and own message: no push", func(t *testing.T) {
		seen := len(r.pushes())
		if _, err := carol.Send(ctx(t), &clientpb.Send{ClientMsgId: cmid(), To: "bob", Content: client.Text("psst"), Silent: true}); err != nil {
			t.Fatal(err)
		}
		badge++
		r.noPush(t, seen, "a silent message")
		// A retry of the silent send that is not silent is another message.
		id := cmid()
		if _, err := carol.Send(ctx(t), &clientpb.Send{ClientMsgId: id, To: "bob", Content: client.Text("x"), Silent: true}); err != nil {
			t.Fatal(err)
		}
		if _, err := carol.Send(ctx(t), &clientpb.Send{ClientMsgId: id, To: "bob", Content: client.Text("x")}); client.CodeOf(err) != clientpb.ErrorCode_ERR_CLIENT_MSG_ID_REUSED {
			t.Fatalf("the same client_msg_id without silent: %v, want ERR_CLIENT_MSG_ID_REUSED", err)
		}
		badge++
		r.noPush(t, seen, "a silent message")
	})

	t.Run("a device in the background is pushed", func(t *testing.T) {
		phone = m.connectToken(top, tok("bob"), "bob", "phone") // used by the next subtest
		seen := len(r.pushes())
		carol.send(t, "bob", "foreground")
		badge++
		phone.requireText(t, "foreground")
		r.noPush(t, seen, "bob's phone in the foreground")
		if err := phone.SetDeviceState(ctx(t), true); err != nil {
			t.Fatal(err)
		}
		carol.send(t, "bob", "background")
		badge++
		phone.requireText(t, "background") // still pushed on the socket
		p, rc := onePush(t, r.pushesAfter(t, seen), "phone in the background")
		if p.Preview != "background" || p.From != "carol" || rc.Badge != badge || rc.Count != 1 || !slices.Equal(devicesOf(rc), both) {
			t.Fatalf("push %+v %+v, want both devices, badge %d", p, rc, badge)
		}
	})

	t.Run("logout removes the registration", func(t *testing.T) {
		d := m.connectToken(t, tok("bob"), "bob", "tablet")
		d.registerPush(t, "apns", "tok-tablet")
		if err := d.Logout(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, "the tablet's logout", func() bool {
			_, err := d.Op(ctx(t), &clientpb.Frame{Body: &clientpb.Frame_Conversations{Conversations: &clientpb.ConversationsRequest{}}})
			return err != nil
		})
		time.Sleep(600 * time.Millisecond) // past the interval
		seen := len(r.pushes())
		ack := carol.send(t, "bob", "after logout")
		badge++
		phone.requireText(t, "after logout")
		_, rc := onePush(t, r.pushesAfter(t, seen), "after the tablet's logout")
		if !slices.Equal(devicesOf(rc), []string{"phone=fcm:tok-phone"}) || rc.Badge != badge {
			t.Fatalf("recipient %+v, want the phone only, badge %d", rc, badge)
		}
		// Reading carol's conversation brings the badge down.
		phone.markRead(t, "p:bob:carol", ack.GetMsgId())
		badge -= 5 // psst, x, foreground, background, after logout
		time.Sleep(600 * time.Millisecond)
		seen = len(r.pushes())
		carol.send(t, "bob", "read")
		badge++
		_, rc = onePush(t, r.pushesAfter(t, seen), "after a read")
		if rc.Badge != badge {
			t.Fatalf("badge %d after reading carol's messages, want %d", rc.Badge, badge)
		}
		r.closeAll(t, "bob", phone)
	})

	t.Run("a group message's offline members in one batch", func(t *testing.T) {
		members := []string{"bob"}
		for _, u := range []string{"dave", "erin", "frank", "grace", "heidi", "ivan", "judy"} {
			d := m.connectToken(t, n.appUser(t, app, u), u, "phone")
			d.registerPush(t, "fcm", "tok-"+u)
			r.closeAll(t, u, d)
			members = append(members, u)
		}
		gid := newGroupID("push")
		carol.createGroup(t, gid, clientpb.JoinPolicy_JOIN_POLICY_OPEN, members...)
		time.Sleep(600 * time.Millisecond) // the group's creation is an event: no push
		seen := len(r.pushes())
		ack := carol.sendGroup(t, gid, "all hands", "bob")
		got := r.pushesAfter(t, seen)
		pushed := map[string]hooks.PushRecipient{}
		for _, p := range got {
			if p.MessageID != strconv.FormatUint(ack.GetMsgId(), 10) || p.ConversationType != "group" || p.Preview != "all hands" {
				t.Fatalf("push %+v", p)
			}
			for _, rc := range p.Recipients {
				if _, twice := pushed[rc.User]; twice {
					t.Fatalf("%s pushed twice", rc.User)
				}
				pushed[rc.User] = rc
			}
		}
		if len(pushed) != len(members) {
			t.Fatalf("pushed %d of %d offline members: %+v", len(pushed), len(members), got)
		}
		if len(got) >= len(members) {
			t.Fatalf("%d members pushed in %d events: not batched", len(members), len(got))
		}
		if !pushed["bob"].Mentioned || pushed["dave"].Mentioned || pushed["dave"].Badge != 1 || pushed["bob"].Badge != badge+1 {
			t.Fatalf("bob %+v (mentioned, badge %d), dave %+v (not mentioned, badge 1)", pushed["bob"], badge+1, pushed["dave"])
		}
		t.Logf("%d offline members pushed in %d push.offline events", len(members), len(got))
	})

	if bad := r.badSignatures(); len(bad) > 0 {
		t.Fatalf("unverifiable deliveries: %v", bad)
	}
}

// TestOfflinePushOff: an app without push (and the default app) pushes
// nothing, though its devices may register.
func TestOfflinePushOff(t *testing.T) {
	n := startNode(t, nil)
	r := newReceiver(t)
	app := n.webhookApp(t, r, apps.Settings{})
	alice := n.connectToken(t, n.appUser(t, app, "alice"), "alice", "web")
	bob := n.connectToken(t, n.appUser(t, app, "bob"), "bob", "phone")
	bob.registerPush(t, "fcm", "tok")
	r.closeAll(t, "bob", bob)
	alice.send(t, "bob", "hi")
	r.noPush(t, 0, "an app without push")
}

// TestAdminPushRegistrations: the admin API lists a user's push
// registrations and removes one, only while it still holds the token
// given; without the admin credential, for an unknown user or a bad device
// id it refuses.
func TestAdminPushRegistrations(t *testing.T) {
	n := startNode(t, nil)
	app := newAppID("pa")
	n.createApp(t, app, apps.Settings{})
	bob := newAppID("bob") // a name the default app has too, for another user
	tok := n.appUser(t, app, bob)
	phone := n.connectToken(t, tok, bob, "phone")
	phone.registerPush(t, "fcm", "tok-phone")
	tablet := n.connectToken(t, n.appToken(t, app, bob), bob, "tablet")
	tablet.registerPush(t, "apns", "tok-tablet")
	// The default app's bob is someone else.
	n.connectToken(t, n.appUser(t, "", bob), bob, "phone").registerPush(t, "fcm", "default-bob")

	adm := n.adminHTTP(t, app)
	regs, err := adm.PushRegistrations(ctx(t), bob)
	if err != nil {
		t.Fatal(err)
	}
	if len(regs) != 2 || regs[0].DeviceID != "phone" || regs[0].Provider != "fcm" || regs[0].Token != "tok-phone" || regs[0].Platform != "web" ||
		regs[0].RegisteredAtMs == 0 || regs[1].DeviceID != "tablet" || regs[1].Token != "tok-tablet" {
		t.Fatalf("registrations %+v", regs)
	}
	// A token the device no longer holds: nothing goes.
	if removed, err := adm.RemovePushRegistration(ctx(t), bob, "phone", "tok-old"); err != nil || removed {
		t.Fatalf("remove with a stale token: %v %v, want nothing removed", removed, err)
	}
	if removed, err := adm.RemovePushRegistration(ctx(t), bob, "phone", "tok-phone"); err != nil || !removed {
		t.Fatalf("remove with the token: %v %v", removed, err)
	}
	if removed, err := adm.RemovePushRegistration(ctx(t), bob, "tablet", ""); err != nil || !removed {
		t.Fatalf("remove without a token: %v %v", removed, err)
	}
	if regs, err := adm.PushRegistrations(ctx(t), bob); err != nil || len(regs) != 0 {
		t.Fatalf("after removals: %+v %v", regs, err)
	}
	if regs, err := n.adminHTTP(t, "").PushRegistrations(ctx(t), bob); err != nil || len(regs) != 1 || regs[0].Token != "default-bob" {
		t.Fatalf("the default app's bob: %+v %v", regs, err)
	}

	for _, c := range []struct {
		name string
		h    *client.HTTP
		user string
		dev  string
		code clientpb.ErrorCode
	}{
		{"no admin credential", &client.HTTP{BaseURL: n.http, App: app}, bob, "phone", clientpb.ErrorCode_ERR_UNAUTHENTICATED},
		{"a user's token", &client.HTTP{BaseURL: n.http, App: app, Token: tok}, bob, "phone", clientpb.ErrorCode_ERR_FORBIDDEN},
		{"unknown user", adm, "nobody", "phone", clientpb.ErrorCode_ERR_NOT_FOUND},
		{"bad device", adm, bob, "b a d", clientpb.ErrorCode_ERR_BAD_REQUEST},
	} {
		if _, err := c.h.RemovePushRegistration(ctx(t), c.user, c.dev, ""); client.CodeOf(err) != c.code {
			t.Fatalf("%s: remove: %v, want %v", c.name, err, c.code)
		}
		if c.dev != "b a d" {
			if _, err := c.h.PushRegistrations(ctx(t), c.user); client.CodeOf(err) != c.code {
				t.Fatalf("%s: list: %v, want %v", c.name, err, c.code)
			}
		}
	}
}

// TestImctlPush: imctl registers the device's push token, lists and
// removes registrations through the admin API, and sends silently.
func TestImctlPush(t *testing.T) {
	bin := buildImctl(t)
	adm := newImctl(t, bin)
	adm.env = []string{"ACTORIM_ADMIN_SECRET=" + testAdminSecret}
	id := newAppID("cp")
	adm.ok("apps", "create", id)
	user := newImctl(t, bin)
	user.ok("--app", id, "register", "ann", "--password", "pw-ann-12")
	user.ok("--app", id, "login", "ann", "--password", "pw-ann-12")
	user.ok("--app", id, "--as", "ann", "push", "register", "fcm", "tok-ann")
	if _, stderr, err := user.run("--app", id, "--as", "ann", "push", "register", "Bad!", "tok"); exitCode(err) != 1 || !strings.Contains(stderr, "ERR_BAD_REQUEST") {
		t.Fatalf("push register with a bad provider: exit %d, stderr %q", exitCode(err), stderr)
	}
	var list struct {
		UserID  string                    `json:"user_id"`
		Devices []client.PushRegistration `json:"devices"`
	}
	adm.okJSON(&list, "--json", "--app", id, "push", "list", "ann")
	if list.UserID != "ann" || len(list.Devices) != 1 || list.Devices[0].Provider != "fcm" || list.Devices[0].Token != "tok-ann" {
		t.Fatalf("push list: %+v", list)
	}
	dev := list.Devices[0].DeviceID
	if out := adm.ok("--app", id, "push", "remove", "ann", dev, "--token", "stale"); !strings.Contains(out, "nothing to remove") {
		t.Fatalf("push remove with a stale token printed %q", out)
	}
	if out := adm.ok("--app", id, "push", "remove", "ann", dev); !strings.Contains(out, "removed") {
		t.Fatalf("push remove printed %q", out)
	}
	if out := adm.ok("--app", id, "push", "list", "ann"); out != "" {
		t.Fatalf("push list after remove printed %q", out)
	}
	user.ok("--app", id, "--as", "ann", "push", "register", "apns", "tok-2")
	user.ok("--app", id, "--as", "ann", "push", "unregister")
	adm.okJSON(&list, "--json", "--app", id, "push", "list", "ann")
	if len(list.Devices) != 0 {
		t.Fatalf("push list after unregister: %+v", list)
	}
	if _, stderr, err := newImctl(t, bin).run("--app", id, "push", "list", "ann"); exitCode(err) != 1 || !strings.Contains(stderr, "admin") {
		t.Fatalf("push list without the admin secret: exit %d, stderr %q", exitCode(err), stderr)
	}
	user.ok("--app", id, "--as", "ann", "send", "ann", "quiet", "please", "--silent")
}

// TestAdminWebhookTest: the admin "test webhook" action sends the app's
// webhook a signed webhook.test event and tells how it answered, through
// the API and imctl; an app without a webhook is 409, an unknown app 404,
// a caller without the admin credential 401.
func TestAdminWebhookTest(t *testing.T) {
	n := shared // imctl talks to the shared node
	r := newReceiver(t)
	app := n.webhookApp(t, r, apps.Settings{})
	adm := n.adminHTTP(t, "")
	res, err := adm.TestWebhook(ctx(t), app)
	if err != nil || !res.OK || res.Status != 204 || res.App != app || res.Error != "" {
		t.Fatalf("test of a working webhook: %+v %v", res, err)
	}
	waitFor(t, 5*time.Second, "the webhook.test event", func() bool { return r.count(hooks.EventTest) == 1 })
	if bad := r.badSignatures(); len(bad) > 0 {
		t.Fatalf("test event not verifiable: %v", bad)
	}
	r.fail.Store(true)
	if res, err := adm.TestWebhook(ctx(t), app); err != nil || res.OK || res.Status != 503 || !strings.Contains(res.Error, "503") {
		t.Fatalf("test of a failing webhook: %+v %v, want ok false, status 503", res, err)
	}

	bin := buildImctl(t)
	cli := newImctl(t, bin)
	cli.env = []string{"ACTORIM_ADMIN_SECRET=" + testAdminSecret}
	if _, stderr, err := cli.run("apps", "test-webhook", app); exitCode(err) != 1 || !strings.Contains(stderr, "status 503") {
		t.Fatalf("imctl apps test-webhook of a failing webhook: exit %d, stderr %q", exitCode(err), stderr)
	}
	r.fail.Store(false)
	var got client.WebhookTest
	cli.okJSON(&got, "--json", "apps", "test-webhook", app)
	if !got.OK || got.Status != 204 {
		t.Fatalf("imctl apps test-webhook: %+v", got)
	}

	plain := newAppID("nw")
	n.createApp(t, plain, apps.Settings{})
	for _, c := range []struct {
		name string
		h    *client.HTTP
		app  string
		code clientpb.ErrorCode
	}{
		{"no webhook", adm, plain, clientpb.ErrorCode_ERR_CONFLICT},
		{"unknown app", adm, "no-such-app", clientpb.ErrorCode_ERR_NOT_FOUND},
		{"no admin credential", &client.HTTP{BaseURL: n.http}, app, clientpb.ErrorCode_ERR_UNAUTHENTICATED},
	} {
		if _, err := c.h.TestWebhook(ctx(t), c.app); client.CodeOf(err) != c.code {
			t.Fatalf("%s: %v, want %v", c.name, err, c.code)
		}
	}
}
