package redisstore

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"actorim/protos/clientpb"
)

// Key layout. Every key starts with Options.Prefix (P below):
//
//	P m                         hash: id = last msg id handed out,
//	                            ts = highest SentAtMs handed out
//	P a/<user>                  hash: pw, ct = the account (password hash,
//	                            created-at ms); seq = last seq of the timeline
//	P t/<user>                  zset, the timeline: score seq, member
//	                            "<seq>:<msgid>:<sentAtMs>:" + Message (see encodeEntry)
//	P c/<user>/<conversation>   zset, conversation index into t/: score seq,
//	                            member "<seq>"
//	P d/<sender>/<clientMsgID>  string "<seq>:<msgid>": the original's seq in
//	                            its first timeline; PX DedupTTL when set
//	P s/<user>                  hash, sessions: device id -> "<expiresAtMs>:" +
//	                            JSON; PEXPIREs with the latest session
//
// EraseUser (erase.go) deletes a/<user>, t/<user> and s/<user> at once,
// then what SCAN finds of c/<user>/* and d/<user>/*.
//
// The timeline's seq counter lives in the account hash, so "the user has an
// account" and "the timeline may be written" are one key, and the counter can
// never exist for an unknown user.
//
// User and conversation ids never contain '/' (see persistence.ValidID), so
// c/<user>/<conversation> cannot be read two ways. Client message ids may
// contain '/': they sit last in their key, which is only read by exact name.
//
// The scripts touch keys of many users at once, so they are not Redis Cluster
// compatible (declared with the no-cluster flag): this backend targets a
// single primary, optionally with replicas. The media keys (media.go) are
// laid out for Cluster already.
type keys struct{ prefix string }

func (k keys) meta() string                { return k.prefix + "m" }
func (k keys) account(user string) string  { return k.prefix + "a/" + user }
func (k keys) timeline(user string) string { return k.prefix + "t/" + user }
func (k keys) sessions(user string) string { return k.prefix + "s/" + user }

func (k keys) conversation(user, conv string) string {
	return k.prefix + "c/" + user + "/" + conv
}

func (k keys) dedup(sender, clientMsgID string) string {
	return k.prefix + "d/" + sender + "/" + clientMsgID
}

// A timeline member is "<seq>:<msgid>:<sentAtMs>:" followed by the Message
// marshalled without its id and time, which the append script does not know
// until it runs. A decimal head is cheap to build in Lua; the body stays the
// bytes the caller marshalled.

var errCorruptEntry = errors.New("corrupt timeline entry")

// decodeEntry turns a timeline member back into an Entry.
func decodeEntry(member string) (*clientpb.Entry, error) {
	var head [3]uint64 // seq, msg id, sent at
	rest := member
	for i := range head {
		j := strings.IndexByte(rest, ':')
		if j <= 0 {
			return nil, errCorruptEntry
		}
		n, err := strconv.ParseUint(rest[:j], 10, 64)
		if err != nil {
			return nil, errCorruptEntry
		}
		head[i], rest = n, rest[j+1:]
	}
	msg := new(clientpb.Message)
	if err := msg.UnmarshalVT([]byte(rest)); err != nil {
		return nil, fmt.Errorf("%w: %w", errCorruptEntry, err)
	}
	msg.Id, msg.SentAtMs = head[1], head[2]
	return &clientpb.Entry{Seq: head[0], Item: &clientpb.Entry_Message{Message: msg}}, nil
}

// decodeEntries decodes the members of a script or range reply.
func decodeEntries(members []string) ([]*clientpb.Entry, error) {
	out := make([]*clientpb.Entry, len(members))
	for i, m := range members {
		e, err := decodeEntry(m)
		if err != nil {
			return nil, err
		}
		out[i] = e
	}
	return out, nil
}
