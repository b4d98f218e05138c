package actors

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"

	"github.com/asynkron/protoactor-go/actor"

	"actorim/ids"
	"actorim/persistence"
	"actorim/protos/actorpb"
	"actorim/protos/clientpb"
)

// BroadcastRequest is a server message to every user, or every online user,
// in conversation "s:<Channel>".
type BroadcastRequest struct {
	// App is the application whose users it reaches (empty: the default).
	App string
	// ID makes the broadcast idempotent: a retry with the same ID resumes
	// where an interrupted one stopped and a finished one is not repeated.
	// 1 to 48 printable ASCII characters other than '/'; empty for none.
	ID string
	// Channel names the conversation; default "system".
	Channel    string
	Content    *clientpb.Content
	OnlineOnly bool
}

// BroadcastResult counts the users a broadcast reached.
type BroadcastResult struct {
	ConversationID string `json:"conversation_id"`
	// Users whose timelines hold the message.
	Users int `json:"users"`
	// Of them, users that had an online device when it was appended.
	Online int `json:"online"`
	// Duplicate reports a broadcast ID that had finished before.
	Duplicate bool `json:"duplicate"`
}

// broadcastChunk is the number of timelines in one Append.
const broadcastChunk = 500

// broadcastProgress is the record "bc/<id>": where a broadcast got to.
type broadcastProgress struct {
	After  string `json:"after"`
	Users  int    `json:"users"`
	Online int    `json:"online"`
	Done   bool   `json:"done"`
}

// broadcast appends a message to the timeline of every user (or every user
// with a device session), a chunk of users per Append, and notifies the
// online devices straight from the stored sessions, so that no grain is
// activated for it. Users offline get it through sync.
//
// Each chunk's Append is deduplicated by the broadcast id and the chunk's
// starting cursor, and the cursor is recorded after each chunk, so a retry
// with the same ID never appends twice to anyone (users registered meanwhile
// may or may not be included).
func (d *deps) broadcast(ctx context.Context, req BroadcastRequest) (BroadcastResult, *clientpb.Error) {
	if req.Channel == "" {
		req.Channel = "system"
	}
	res := BroadcastResult{ConversationID: ids.System(req.Channel)}
	switch {
	case !ids.ValidUser(req.Channel):
		return res, clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, "broadcast: channel must be 1 to 64 characters [A-Za-z0-9_.@-]")
	case req.ID != "" && (!ids.ValidClientMsgID(req.ID) || len(req.ID) > 48):
		return res, clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, "broadcast: id must be 1 to 48 printable ASCII characters other than '/'")
	}
	if m, _ := mediaOf(req.Content); m != nil {
		// A file belongs to its uploader; the server uploads none.
		return res, clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, "broadcast: content must be text, emoji or custom")
	}
	if e := validateContent(req.Content, d.cfg.MaxContentBytes); e != nil {
		return res, e
	}

	var prog broadcastProgress
	track := req.ID != ""
	if !track {
		var b [12]byte
		_, _ = rand.Read(b[:])
		req.ID = "auto-" + hex.EncodeToString(b[:])
	} else {
		sctx, cancel := context.WithTimeout(ctx, d.cfg.StoreTimeout)
		b, err := d.records.GetState(sctx, broadcastKey(req.ID))
		cancel()
		switch {
		case errors.Is(err, persistence.ErrNotFound):
		case err != nil:
			return res, errBroadcastUnavailable
		case json.Unmarshal(b, &prog) != nil:
			return res, clientError(clientpb.ErrorCode_ERR_INTERNAL, "broadcast: progress record unreadable")
		}
		if prog.Done {
			res.Users, res.Online, res.Duplicate = prog.Users, prog.Online, true
			return res, nil
		}
	}
	msg := &clientpb.Message{
		ConversationId:   res.ConversationID,
		ConversationType: clientpb.ConversationType_CONVERSATION_TYPE_SYSTEM,
		ClientMsgId:      req.ID,
		Content:          req.Content,
	}
	root := d.member.System().Root
	for {
		if ctx.Err() != nil {
			return res, clientError(clientpb.ErrorCode_ERR_UNAVAILABLE, "broadcast interrupted; retry with the same id to resume")
		}
		sctx, cancel := context.WithTimeout(ctx, d.cfg.StoreTimeout)
		users, err := d.accounts.Users(sctx, prog.After, broadcastChunk)
		cancel()
		if err != nil {
			return res, errBroadcastUnavailable
		}
		if len(users) == 0 {
			break
		}
		targets, online, err := d.broadcastTargets(ctx, users, req.OnlineOnly)
		if err != nil {
			return res, errBroadcastUnavailable
		}
		if len(targets) > 0 {
			sctx, cancel := context.WithTimeout(ctx, d.cfg.StoreTimeout)
			ar, err := d.timelines.Append(sctx, &persistence.AppendRequest{
				Sender: broadcastSender, ClientMsgID: req.ID + ":" + prog.After, Message: msg, Timelines: targets,
			})
			cancel()
			if err != nil {
				d.log.Error("broadcast: append", "id", req.ID, "err", err)
				return res, errBroadcastUnavailable
			}
			if !ar.Duplicate {
				for i, u := range targets {
					for _, s := range online[u] {
						root.Send(actor.NewPID(s.Node, s.ConnID), &actorpb.Notify{Entries: ar.Entries[i : i+1]})
					}
				}
			}
			prog.Users += len(targets)
			prog.Online += len(online)
		}
		prog.After = users[len(users)-1]
		if e := d.saveProgress(ctx, track, req.ID, prog); e != nil {
			return res, e
		}
	}
	prog.Done = true
	if e := d.saveProgress(ctx, track, req.ID, prog); e != nil {
		return res, e
	}
	res.Users, res.Online = prog.Users, prog.Online
	return res, nil
}

// broadcastTargets reads the sessions of users and returns the users to
// append to (all, or only those online) and the sessions of the online ones.
func (d *deps) broadcastTargets(ctx context.Context, users []string, onlineOnly bool) ([]string, map[string][]persistence.Session, error) {
	targets := make([]string, 0, len(users))
	online := map[string][]persistence.Session{}
	for _, u := range users {
		sctx, cancel := context.WithTimeout(ctx, d.cfg.StoreTimeout)
		ss, err := d.sessions.Sessions(sctx, u)
		cancel()
		if err != nil {
			return nil, nil, err
		}
		if len(ss) > 0 {
			online[u] = ss
		} else if onlineOnly {
			continue
		}
		targets = append(targets, u)
	}
	return targets, online, nil
}

func (d *deps) saveProgress(ctx context.Context, track bool, id string, p broadcastProgress) *clientpb.Error {
	if !track {
		return nil
	}
	b, _ := json.Marshal(p)
	sctx, cancel := context.WithTimeout(ctx, d.cfg.StoreTimeout)
	defer cancel()
	if err := d.records.PutState(sctx, broadcastKey(id), b); err != nil {
		d.log.Error("broadcast: save progress", "id", id, "err", err)
		return errBroadcastUnavailable
	}
	return nil
}
