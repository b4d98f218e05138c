package actors

import (
	"context"
	"time"

	"actorim/ids"
	"actorim/protos/clientpb"
)

// Reading back: sync (a connection's Sync frame) reads the timeline after a
// seq; history (a History frame, or Service.History for HTTP) pages one
// conversation backwards. Both flag recalled messages (convs.go).

// Page size limits of Sync and History.
const (
	defaultSyncLimit    = 100
	defaultHistoryLimit = 50
	maxPageLimit        = 500
)

func pageLimit(asked uint32, def int) (int, *clientpb.Error) {
	switch {
	case asked == 0:
		return def, nil
	case asked > maxPageLimit:
		return 0, clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, "limit must be at most 500")
	}
	return int(asked), nil
}

// sync reads the user's timeline after a seq, oldest first (a connection's
// Sync frame).
func (d *deps) sync(ctx context.Context, userID string, req *clientpb.SyncRequest) (*clientpb.SyncResult, *clientpb.Error) {
	limit, e := pageLimit(req.GetLimit(), defaultSyncLimit)
	if e != nil {
		return nil, e
	}
	ctx, cancel := context.WithTimeout(ctx, d.cfg.StoreTimeout)
	defer cancel()
	entries, err := d.timelines.ReadTimeline(ctx, userID, req.GetAfterSeq(), limit+1)
	if err != nil {
		d.log.Error("sync: read timeline", "user", userID, "err", err)
		return nil, errStoreUnavailable
	}
	latest, err := d.timelines.LastSeq(ctx, userID)
	if err != nil {
		d.log.Error("sync: last seq", "user", userID, "err", err)
		return nil, errStoreUnavailable
	}
	res := &clientpb.SyncResult{LatestSeq: latest}
	if len(entries) > limit {
		entries, res.HasMore = entries[:limit], true
	}
	if res.Entries, err = d.flagRecalled(ctx, entries); err != nil {
		d.log.Error("sync: recalled", "user", userID, "err", err)
		return nil, errStoreUnavailable
	}
	res.Entries, _ = d.dropExpired(res.Entries)
	return res, nil
}

// history pages one of the user's conversations backwards, newest first.
// It reads the user's own timeline only, which holds what the user received:
// so History and Sync agree. For a group, what a member received while a
// member stays theirs (a member who left or was removed reads it, and
// nothing sent after); a user who never was a member gets ERR_NOT_MEMBER.
func (d *deps) history(ctx context.Context, userID string, req *clientpb.HistoryRequest) (*clientpb.HistoryResult, *clientpb.Error) {
	conv, err := ids.Parse(req.GetConversationId())
	if err != nil {
		return nil, clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, "history: conversation_id must be p:<a>:<b> or g:<group>")
	}
	limit, e := pageLimit(req.GetLimit(), defaultHistoryLimit)
	if e != nil {
		return nil, e
	}
	ctx, cancel := context.WithTimeout(ctx, d.cfg.StoreTimeout)
	defer cancel()
	if conv.Group != "" {
		// Whoever holds entries of the group (a member, or a former one)
		// reads them; the group decides the answer for anyone else.
		had, err := d.timelines.ReadConversation(ctx, userID, req.GetConversationId(), 0, 1)
		if err != nil {
			d.log.Error("history: read", "user", userID, "err", err)
			return nil, errStoreUnavailable
		}
		if len(had) == 0 {
			if _, e := d.memberOf(ctx, conv.Group, userID); e != nil {
				return nil, e
			}
		}
	} else if conv.System == "" && !conv.Has(userID) { // "s:" reads only the caller's own timeline
		return nil, clientError(clientpb.ErrorCode_ERR_FORBIDDEN, "history: not a member of this conversation")
	}
	entries, err := d.timelines.ReadConversation(ctx, userID, req.GetConversationId(), req.GetBeforeSeq(), limit+1)
	if err != nil {
		d.log.Error("history: read", "user", userID, "err", err)
		return nil, errStoreUnavailable
	}
	res := &clientpb.HistoryResult{}
	if len(entries) > limit {
		entries, res.HasMore = entries[:limit], true
	}
	if res.Entries, err = d.flagRecalled(ctx, entries); err != nil {
		d.log.Error("history: recalled", "user", userID, "err", err)
		return nil, errStoreUnavailable
	}
	// Older pages are older still: past an expired entry there is nothing.
	var dropped bool
	if res.Entries, dropped = d.dropExpired(res.Entries); dropped {
		res.HasMore = false
	}
	return res, nil
}

// expiredBefore is the time (Unix ms) before which the app's messages are
// past its retention (apps.Settings.RetentionMs); 0 when they are kept.
// The retention sweep (node/retention.go) deletes them from the hot store;
// reads hide them meanwhile, and those the store keeps (a timeline's
// newest entry) or the archive serves.
func (d *deps) expiredBefore() uint64 {
	if ms := d.settings.RetentionMs; ms > 0 {
		return uint64(time.Now().UnixMilli() - ms)
	}
	return 0
}

// dropExpired returns entries without those past the app's retention, and
// whether there were any.
func (d *deps) dropExpired(entries []*clientpb.Entry) ([]*clientpb.Entry, bool) {
	cutoff := d.expiredBefore()
	if cutoff == 0 {
		return entries, false
	}
	out := entries[:0:0]
	for _, e := range entries {
		if e.GetMessage().GetSentAtMs() >= cutoff {
			out = append(out, e)
		}
	}
	return out, len(out) < len(entries)
}
