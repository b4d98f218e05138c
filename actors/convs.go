package actors

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"actorim/ids"
	"actorim/protos/actorpb"
	"actorim/protos/clientpb"
	"actorim/protos/storepb"
)

// The conversation list of a user is an index of the user's timeline, kept
// in the store ("uc/<user>") up to indexed_seq and brought up to date from
// the timeline whenever it is read. Nothing on the send path maintains it,
// so it costs nothing per message and cannot drift: a lost notification
// changes nothing, since the timeline is the truth.

// loadConvs reads the user's conversation index on first use.
func (g *userGrain) loadConvs() bool {
	if g.convs != nil {
		return true
	}
	st := &storepb.ConvState{}
	if _, err := g.d.loadState(convKey(g.id), st); err != nil {
		g.d.log.Error("conversations: load", "user", g.id, "err", err)
		return false
	}
	if st.Convs == nil {
		st.Convs = map[string]*storepb.ConvRecord{}
	}
	g.convs = st
	return true
}

func (g *userGrain) saveConvs() error { return g.d.saveState(convKey(g.id), g.convs) }

// indexConvs applies the timeline entries after indexed_seq to the index.
func (g *userGrain) indexConvs() error {
	if !g.loadConvs() {
		return errors.New("conversations unavailable")
	}
	changed := false
	for {
		sctx, cancel := g.d.storeCtx()
		page, err := g.d.timelines.ReadTimeline(sctx, g.id, g.convs.IndexedSeq, maxPageLimit)
		cancel()
		if err != nil {
			return err
		}
		for _, e := range page {
			g.indexEntry(e)
			g.convs.IndexedSeq = e.GetSeq()
			changed = true
		}
		if len(page) < maxPageLimit {
			break
		}
	}
	if changed {
		return g.saveConvs()
	}
	return nil
}

func (g *userGrain) conv(id string) *storepb.ConvRecord {
	c := g.convs.Convs[id]
	if c == nil {
		c = &storepb.ConvRecord{}
		g.convs.Convs[id] = c
	}
	return c
}

func (g *userGrain) indexEntry(e *clientpb.Entry) {
	m := e.GetMessage()
	if m == nil || m.GetConversationId() == "" {
		return
	}
	c := g.conv(m.GetConversationId())
	ev := m.GetContent().GetEvent()
	switch ev.GetType() {
	case clientpb.EventType_EVENT_READ:
		if ev.GetActor() == g.id {
			g.markReadUpTo(c, m.GetConversationId(), ev.GetMsgId())
		}
		return // a read mark is not a conversation's last message
	case clientpb.EventType_EVENT_CONVERSATION_UPDATED:
		c.Pinned, c.Muted = ev.GetPinned(), ev.GetMuted()
		return
	case clientpb.EventType_EVENT_RECALLED:
		if from := ev.GetUsers(); len(from) > 0 && from[0] != g.id && ev.GetMsgId() > c.ReadMsgId && c.Unread > 0 {
			c.Unread--
		}
		if c.LastMessage.GetId() == ev.GetMsgId() {
			lm := proto.Clone(c.LastMessage).(*clientpb.Message)
			lm.Recalled, lm.Content = true, nil
			c.LastMessage = lm
		}
	}
	c.LastMessage, c.LastSeq = m, e.GetSeq()
	if ev == nil && m.GetFrom() != g.id && m.GetId() > c.ReadMsgId {
		c.Unread++
		if slices.Contains(m.GetMentions(), g.id) || slices.Contains(m.GetMentions(), "all") {
			c.Mentioned = true
		}
	}
}

// markReadUpTo moves a conversation's read mark and recounts its unread
// messages: none when the mark reaches the last message, else those after
// the mark, counted from the conversation's history.
func (g *userGrain) markReadUpTo(c *storepb.ConvRecord, conv string, msgID uint64) {
	if msgID <= c.ReadMsgId {
		return
	}
	c.ReadMsgId = msgID
	if msgID >= c.LastMessage.GetId() {
		c.Unread, c.Mentioned = 0, false
		return
	}
	var unread uint32
	mentioned := false
	g.d.scanBack(g.id, conv, func(e *clientpb.Entry) bool {
		m := e.GetMessage()
		if m.GetId() <= msgID {
			return false
		}
		if m.GetContent().GetEvent() == nil && m.GetFrom() != g.id {
			unread++
			mentioned = mentioned || slices.Contains(m.GetMentions(), g.id) || slices.Contains(m.GetMentions(), "all")
		}
		return true
	})
	c.Unread, c.Mentioned = unread, mentioned
}

// scanLimit bounds the entries scanBack visits.
const scanLimit = 5000

// findEntry returns the entry of timeline whose message has id msgID, nil
// when there is none. Message ids increase with seq within any timeline, so
// a binary search over the seqs finds it in O(log n) point reads, all
// within one Config.StoreTimeout (and ctx).
func (d *deps) findEntry(ctx context.Context, timeline string, msgID uint64) (*clientpb.Entry, error) {
	sctx, cancel := context.WithTimeout(ctx, d.cfg.StoreTimeout)
	defer cancel()
	hi, err := d.timelines.LastSeq(sctx, timeline)
	if err != nil {
		return nil, err
	}
	for lo := uint64(1); lo <= hi; {
		mid := lo + (hi-lo)/2
		page, err := d.timelines.ReadTimeline(sctx, timeline, mid-1, 1)
		if err != nil || len(page) == 0 {
			return nil, err
		}
		// A trimmed timeline answers with the first entry after mid.
		e := page[0]
		switch id := e.GetMessage().GetId(); {
		case id == msgID:
			return e, nil
		case id < msgID:
			lo = e.GetSeq() + 1
		default:
			hi = mid - 1
		}
	}
	return nil, nil
}

// ownMessage returns the message (not an event) of conversation conv with
// id msgID from the user's timeline, nil when the user has no such message.
func (g *userGrain) ownMessage(conv string, msgID uint64) (*clientpb.Message, *actorpb.OpResult) {
	e, err := g.d.findEntry(context.Background(), g.id, msgID)
	if err != nil {
		g.d.log.Error("find message", "user", g.id, "err", err)
		return nil, failed(errStoreUnavailable)
	}
	m := e.GetMessage()
	if m == nil || m.GetConversationId() != conv || m.GetContent().GetEvent() != nil {
		return nil, nil
	}
	return m, nil
}

// scanBack visits the entries of conversation conv in timeline, newest
// first, until visit returns false, the conversation's first entry, a read
// error or scanLimit entries.
func (d *deps) scanBack(timeline, conv string, visit func(*clientpb.Entry) bool) {
	sctx, cancel := d.storeCtx()
	defer cancel()
	before := uint64(0)
	for scanned := 0; scanned < scanLimit; {
		page, err := d.timelines.ReadConversation(sctx, timeline, conv, before, 200)
		if err != nil || len(page) == 0 {
			return
		}
		for _, e := range page {
			if !visit(e) {
				return
			}
		}
		scanned += len(page)
		before = page[len(page)-1].GetSeq()
	}
}

func (g *userGrain) onConversations(ctx actor.Context) *actorpb.OpResult {
	if err := g.indexConvs(); err != nil {
		g.d.log.Error("conversations: index", "user", g.id, "err", err)
		return failed(errStoreUnavailable)
	}
	list := &clientpb.ConversationList{}
	cutoff := g.d.expiredBefore()
	for id, c := range g.convs.Convs {
		if c.LastMessage == nil {
			continue // only settings so far
		}
		if c.LastMessage.GetSentAtMs() < cutoff {
			continue // its messages are past the app's retention
		}
		ct := c.LastMessage.GetConversationType()
		list.Conversations = append(list.Conversations, &clientpb.Conversation{
			ConversationId: id, ConversationType: ct, LastMessage: c.LastMessage, LastSeq: c.LastSeq,
			Unread: c.Unread, ReadMsgId: c.ReadMsgId, Mentioned: c.Mentioned, Muted: c.Muted, Pinned: c.Pinned,
		})
	}
	slices.SortFunc(list.Conversations, func(a, b *clientpb.Conversation) int {
		switch {
		case a.Pinned != b.Pinned:
			if a.Pinned {
				return -1
			}
			return 1
		case a.LastSeq != b.LastSeq:
			if a.LastSeq > b.LastSeq {
				return -1
			}
			return 1
		}
		return 0
	})
	return &actorpb.OpResult{Result: &clientpb.Result{Data: &clientpb.Result_Conversations{Conversations: list}}}
}

// mutedConvs lists the conversations the user muted, for the connections.
func (g *userGrain) mutedConvs() []string {
	if !g.loadConvs() {
		return nil
	}
	var out []string
	for id, c := range g.convs.Convs {
		if c.Muted {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// memberOf asks a group grain whether user belongs to the group.
func (d *deps) memberOf(ctx context.Context, groupID, user string) (*actorpb.MemberOfResult, *clientpb.Error) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	res, err := d.member.Request(ctx, groupID, KindGroup, &actorpb.MemberOf{User: user})
	if err != nil {
		return nil, errGroupUnreachable
	}
	m := res.(*actorpb.MemberOfResult)
	switch {
	case !m.GetExists():
		return nil, errNoGroup
	case !m.GetMember():
		return nil, errNotMember
	}
	return m, nil
}

// parseOwnConversation checks that the caller takes part in conv.
func (g *userGrain) parseOwnConversation(conv string) (ids.Conversation, *actorpb.OpResult) {
	c, err := ids.Parse(conv)
	if err != nil {
		return c, opError(clientpb.ErrorCode_ERR_BAD_REQUEST, "conversation_id must be p:<a>:<b>, g:<group> or s:<channel>")
	}
	// A broadcast channel is in every timeline it reached: the caller's own.
	if c.Group == "" && c.System == "" && !c.Has(g.id) {
		return c, opError(clientpb.ErrorCode_ERR_FORBIDDEN, "not a member of this conversation")
	}
	return c, nil
}

func (g *userGrain) onConversationUpdate(ctx actor.Context, u *clientpb.ConversationUpdate) *actorpb.OpResult {
	c, bad := g.parseOwnConversation(u.GetConversationId())
	if bad != nil {
		return bad
	}
	if c.Group != "" {
		if _, e := g.d.memberOf(context.Background(), c.Group, g.id); e != nil {
			return failed(e)
		}
	}
	if err := g.indexConvs(); err != nil {
		return failed(errStoreUnavailable)
	}
	// A conversation without entries yet has no record: nothing set so far.
	rec := g.convs.Convs[u.GetConversationId()]
	pinned, muted := rec.GetPinned(), rec.GetMuted()
	if u.Pinned != nil {
		pinned = u.GetPinned()
	}
	if u.Muted != nil {
		muted = u.GetMuted()
	}
	ctype := clientpb.ConversationType_CONVERSATION_TYPE_PRIVATE
	switch {
	case c.Group != "":
		ctype = clientpb.ConversationType_CONVERSATION_TYPE_GROUP
	case c.System != "":
		ctype = clientpb.ConversationType_CONVERSATION_TYPE_SYSTEM
	}
	// The change is an event in the user's own timeline, so the user's other
	// devices, online or not, learn it through the same sync.
	entries, err := g.d.appendEvent(u.GetConversationId(), ctype, g.id, g.id, &clientpb.Event{
		Type: clientpb.EventType_EVENT_CONVERSATION_UPDATED, Actor: g.id,
		ConversationId: u.GetConversationId(), Pinned: pinned, Muted: muted,
	}, []string{g.id})
	if err != nil {
		return failed(errStoreUnavailable)
	}
	g.notify(ctx, entries, "")
	if err := g.indexConvs(); err != nil {
		return failed(errStoreUnavailable)
	}
	mc := &actorpb.MutedChanged{Muted: g.mutedConvs()}
	for _, d := range g.devices {
		ctx.Send(d.conn, mc)
	}
	return nil
}

// onMarkRead moves the user's read mark of a conversation. The mark must
// name a message of the conversation (the group's, or one in the user's
// timeline), and only a real advance stores anything: one EVENT_READ for the
// user, and in a private conversation one for the other party unless either
// blocked the other. So a reader costs others at most one event per message
// of the conversation.
func (g *userGrain) onMarkRead(ctx actor.Context, r *clientpb.MarkRead) *actorpb.OpResult {
	c, bad := g.parseOwnConversation(r.GetConversationId())
	if bad != nil {
		return bad
	}
	if r.GetMsgId() == 0 {
		return opError(clientpb.ErrorCode_ERR_BAD_REQUEST, "read: msg_id is required")
	}
	if err := g.indexConvs(); err != nil {
		g.d.log.Error("read: index", "user", g.id, "err", err)
		return failed(errStoreUnavailable)
	}
	if r.GetMsgId() <= g.convs.Convs[r.GetConversationId()].GetReadMsgId() {
		return nil // read already: nothing to store or tell
	}
	ev := &clientpb.Event{Type: clientpb.EventType_EVENT_READ, Actor: g.id, MsgId: r.GetMsgId()}
	if c.Group != "" {
		if res := g.askGroup(ctx, c.Group, &actorpb.GroupRead{User: g.id, MsgId: r.GetMsgId()}); res.GetError() != nil {
			return res
		}
		ev.GroupId = c.Group
		entries, err := g.d.appendEvent(r.GetConversationId(), clientpb.ConversationType_CONVERSATION_TYPE_GROUP, g.id, c.Group, ev, []string{g.id})
		if err != nil {
			return failed(errStoreUnavailable)
		}
		g.notify(ctx, entries, "")
		return nil
	}
	if msg, res := g.ownMessage(r.GetConversationId(), r.GetMsgId()); res != nil || msg == nil {
		if res == nil {
			res = opError(clientpb.ErrorCode_ERR_NOT_FOUND, "read: no such message in this conversation")
		}
		return res
	}
	if c.System != "" { // nobody to tell but the reader's devices
		entries, err := g.d.appendEvent(r.GetConversationId(), clientpb.ConversationType_CONVERSATION_TYPE_SYSTEM, g.id, g.id, ev, []string{g.id})
		if err != nil {
			return failed(errStoreUnavailable)
		}
		g.notify(ctx, entries, "")
		return nil
	}
	other := c.A
	if other == g.id {
		other = c.B
	}
	timelines := []string{g.id}
	if other != g.id && !g.blocks(other) {
		pol, err := g.d.policy(other)
		if err != nil {
			return failed(errStoreUnavailable)
		}
		if !pol.GetBlocked()[g.id] { // a receipt is not forced on one who blocked the reader
			timelines = append(timelines, other)
		}
	}
	entries, err := g.d.appendEvent(r.GetConversationId(), clientpb.ConversationType_CONVERSATION_TYPE_PRIVATE, g.id, other, ev, timelines)
	if err != nil {
		return failed(errStoreUnavailable)
	}
	g.notify(ctx, entries[:1], "")
	g.d.deliverEntries(ctx, g.id, timelines, entries, "")
	return nil
}

// askGroup sends msg to a group grain and waits for its OpResult. A dead
// letter (the grain just stopped) is asked once more at a fresh PID.
func (g *userGrain) askGroup(ctx actor.Context, groupID string, msg any) *actorpb.OpResult {
	for attempt := 0; attempt < 2; attempt++ {
		pid, err := g.groupPID(groupID)
		if err != nil {
			return failed(errStoreUnavailable)
		}
		res, err := ctx.RequestFuture(pid, msg, opTimeout).Result()
		if r, ok := res.(*actorpb.OpResult); ok && err == nil {
			return r
		}
		if !errors.Is(err, actor.ErrDeadLetter) {
			break
		}
		g.d.member.Evict(groupID, KindGroup, pid)
	}
	return failed(errStoreUnavailable)
}

func (g *userGrain) groupPID(groupID string) (*actor.PID, error) {
	ctx, cancel := context.WithTimeout(context.Background(), g.d.member.RequestTimeout())
	defer cancel()
	return g.d.member.Get(ctx, groupID, KindGroup)
}

func (g *userGrain) onRecall(ctx actor.Context, r *clientpb.Recall) *actorpb.OpResult {
	c, bad := g.parseOwnConversation(r.GetConversationId())
	if bad != nil {
		return bad
	}
	if c.Group != "" {
		return g.askGroup(ctx, c.Group, &actorpb.GroupRecall{User: g.id, MsgId: r.GetMsgId()})
	}
	if c.System != "" {
		return opError(clientpb.ErrorCode_ERR_FORBIDDEN, "recall: broadcasts are withdrawn by the server only")
	}
	msg, res := g.ownMessage(r.GetConversationId(), r.GetMsgId())
	if res != nil {
		return res
	}
	if msg == nil {
		return opError(clientpb.ErrorCode_ERR_NOT_FOUND, "recall: no such message in this conversation")
	}
	if msg.GetFrom() != g.id {
		return opError(clientpb.ErrorCode_ERR_FORBIDDEN, "recall: only the sender may recall a private message")
	}
	if done, res := g.d.recalled(r.GetConversationId(), msg.GetId()); res != nil || done {
		return res // recalled already: nothing more to store or tell
	}
	if res := g.d.checkRecallWindow(msg); res != nil {
		return res
	}
	if res := g.d.markRecalled(r.GetConversationId(), msg.GetId()); res != nil {
		return res
	}
	other := msg.GetTo()
	timelines := []string{g.id, other}
	if other == g.id {
		timelines = timelines[:1]
	}
	entries, err := g.d.appendEvent(r.GetConversationId(), clientpb.ConversationType_CONVERSATION_TYPE_PRIVATE, g.id, other,
		&clientpb.Event{Type: clientpb.EventType_EVENT_RECALLED, Actor: g.id, Users: []string{g.id}, MsgId: msg.GetId()}, timelines)
	if err != nil {
		return failed(errStoreUnavailable)
	}
	g.notify(ctx, entries[:1], "")
	g.d.deliverEntries(ctx, g.id, timelines, entries, "")
	return nil
}

// checkRecallWindow refuses to recall msg once Config.RecallWindow passed.
func (d *deps) checkRecallWindow(msg *clientpb.Message) *actorpb.OpResult {
	sent := time.UnixMilli(int64(msg.GetSentAtMs()))
	if time.Since(sent) > d.cfg.RecallWindow {
		return opError(clientpb.ErrorCode_ERR_RECALL_EXPIRED, "recall: the window of "+d.cfg.RecallWindow.String()+" has passed")
	}
	return nil
}

// recalled reports whether a message of conv was recalled.
func (d *deps) recalled(conv string, msgID uint64) (bool, *actorpb.OpResult) {
	sctx, cancel := d.storeCtx()
	defer cancel()
	set, err := d.sets.SetMembers(sctx, recallSet(conv))
	if err != nil {
		d.log.Error("recall: read", "conv", conv, "err", err)
		return false, failed(errStoreUnavailable)
	}
	return slices.Contains(set, strconv.FormatUint(msgID, 10)), nil
}

// markRecalled records a recall so that reads show the message recalled.
func (d *deps) markRecalled(conv string, msgID uint64) *actorpb.OpResult {
	sctx, cancel := d.storeCtx()
	defer cancel()
	if err := d.sets.AddToSet(sctx, recallSet(conv), strconv.FormatUint(msgID, 10)); err != nil {
		d.log.Error("recall: mark", "conv", conv, "err", err)
		return failed(errStoreUnavailable)
	}
	return nil
}

// flagRecalled returns entries with recalled messages replaced by copies
// flagged recalled and without content. One set read per conversation.
func (d *deps) flagRecalled(ctx context.Context, entries []*clientpb.Entry) ([]*clientpb.Entry, error) {
	sets := map[string]map[uint64]bool{}
	out := entries
	copied := false
	for i, e := range entries {
		m := e.GetMessage()
		if m == nil || m.GetContent().GetEvent() != nil {
			continue
		}
		set, ok := sets[m.GetConversationId()]
		if !ok {
			members, err := d.sets.SetMembers(ctx, recallSet(m.GetConversationId()))
			if err != nil {
				return nil, err
			}
			set = map[uint64]bool{}
			for _, s := range members {
				if id, err := strconv.ParseUint(s, 10, 64); err == nil {
					set[id] = true
				}
			}
			sets[m.GetConversationId()] = set
		}
		if !set[m.GetId()] {
			continue
		}
		if !copied {
			out, copied = slices.Clone(entries), true
		}
		cm := proto.Clone(m).(*clientpb.Message)
		cm.Recalled, cm.Content = true, nil
		out[i] = &clientpb.Entry{Seq: e.GetSeq(), Item: &clientpb.Entry_Message{Message: cm}}
	}
	return out, nil
}

func (g *userGrain) onTyping(ctx actor.Context, t *clientpb.Typing) *actorpb.OpResult {
	if !ids.ValidUser(t.GetTo()) {
		return opError(clientpb.ErrorCode_ERR_BAD_REQUEST, "typing: invalid to")
	}
	if t.GetConversationType() == clientpb.ConversationType_CONVERSATION_TYPE_GROUP {
		sig := &clientpb.Signal{Kind: &clientpb.Signal_Typing{Typing: &clientpb.TypingSignal{
			From: g.id, ConversationId: ids.Group(t.GetTo()), Typing: t.GetTyping()}}}
		m, e := g.d.memberOf(context.Background(), t.GetTo(), g.id)
		if e != nil {
			return failed(e)
		}
		if m.GetDissolved() {
			return failed(errDissolved)
		}
		pid, err := g.groupPID(t.GetTo())
		if err != nil {
			return failed(errStoreUnavailable)
		}
		ctx.Send(pid, &actorpb.GroupSignal{User: g.id, Signal: sig})
		return nil
	}
	if e := g.mayMessage(t.GetTo()); e != nil {
		return failed(e)
	}
	// Only an online user is told; an offline one's grain is not woken.
	if !g.d.online(t.GetTo()) {
		return nil
	}
	sig := &clientpb.Signal{Kind: &clientpb.Signal_Typing{Typing: &clientpb.TypingSignal{
		From: g.id, ConversationId: ids.Private(g.id, t.GetTo()), Typing: t.GetTyping()}}}
	pid, err := g.d.member.Get(context.Background(), t.GetTo(), KindUser)
	if err != nil {
		return failed(errStoreUnavailable)
	}
	ctx.Send(pid, &actorpb.SignalDevices{Signal: sig, From: g.id})
	return nil
}
