package persistence

import (
	"errors"
	"fmt"
	"strings"

	"actorim/protos/clientpb"
)

// CopyMessage returns the fields of m a store keeps: everything but the id
// and time it assigns and the flag only reads set (recalled). Silent is kept
// as the sender set it (reads may also set it, for a muted group).
// Content and mentions are shared with m, which callers never modify.
func CopyMessage(m *clientpb.Message) *clientpb.Message {
	return &clientpb.Message{
		ConversationId:   m.ConversationId,
		ConversationType: m.ConversationType,
		From:             m.From,
		To:               m.To,
		FromDevice:       m.FromDevice,
		ClientMsgId:      m.ClientMsgId,
		Content:          m.Content,
		Mentions:         m.Mentions,
		Silent:           m.Silent,
	}
}

// NewResult allocates a result of n entries sharing msg in three
// allocations; the backend fills in the seqs.
func NewResult(msg *clientpb.Message, n int) *AppendResult {
	type slot struct {
		entry clientpb.Entry
		item  clientpb.Entry_Message
	}
	slots := make([]slot, n)
	ptrs := make([]*clientpb.Entry, n)
	for i := range slots {
		sl := &slots[i]
		sl.item.Message = msg
		sl.entry.Item = &sl.item
		ptrs[i] = &sl.entry
	}
	return &AppendResult{Entries: ptrs}
}

// ValidID reports whether s may be a user or conversation id in a store:
// not empty and without '/', which the backends use to separate the parts
// of their keys. No account can have an invalid id.
func ValidID(s string) bool {
	return s != "" && !strings.Contains(s, "/")
}

// CheckAppend rejects a request that no store can accept, before anything
// is decided: no message or no timeline, an invalid sender (when it
// deduplicates) or conversation id, and a timeline of an invalid user id
// (with ErrUnknownUser, since no such account can exist). The error's text
// starts with "append"; backends add their prefix.
func CheckAppend(req *AppendRequest) error {
	switch {
	case req == nil || req.Message == nil:
		return errors.New("append: no message")
	case len(req.Timelines) == 0:
		return errors.New("append: no timeline")
	case req.ClientMsgID != "" && !ValidID(req.Sender):
		return fmt.Errorf("append: invalid sender %q", req.Sender)
	case !ValidID(req.Message.ConversationId):
		return fmt.Errorf("append: invalid conversation id %q", req.Message.ConversationId)
	}
	for _, u := range req.Timelines {
		if !ValidID(u) {
			return fmt.Errorf("append to %q: %w", u, ErrUnknownUser)
		}
	}
	return nil
}
