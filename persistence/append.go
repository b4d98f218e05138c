package persistence

import "actorim/protos/clientpb"

// CopyMessage returns the fields of m a store keeps: everything but the id
// and time it assigns and the flags only reads set (recalled, silent).
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
