package embedded

import "encoding/binary"

// Key layout. Every key starts with a one-letter kind and a '/':
//
//	a/<user>                      -> storepb.AccountRecord
//	t/<user>/<seq>                -> clientpb.Entry (the timeline)
//	c/<user>/<conversation>/<seq> -> empty (conversation index into t/)
//	d/<sender>/<clientMsgID>      -> storepb.DedupRecord (seq in the first timeline, msg id)
//	m/msgid                       -> highest msg id handed out, 8 bytes big-endian
//
// EraseUser (erase.go) deletes a/<user> and the ranges t/<user>/,
// c/<user>/ and d/<user>/.
//
// <seq> is 8 bytes big-endian so that byte order is numeric order and a
// timeline or conversation is one contiguous, ordered key range. User and
// conversation ids never contain '/' (see persistence.ValidID), so "t/<user>/"
// is a prefix of that user's keys only; the range ends just before
// "t/<user>0" because '0' is the byte after '/'. Client message ids may
// contain '/': they sit last in their key, which is only ever read by exact
// match.

var msgIDKey = []byte("m/msgid")

const seqLen = 8

func accountKey(dst []byte, user string) []byte {
	dst = append(dst, "a/"...)
	return append(dst, user...)
}

func timelinePrefix(dst []byte, user string) []byte {
	dst = append(dst, "t/"...)
	dst = append(dst, user...)
	return append(dst, '/')
}

func timelineKey(dst []byte, user string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(timelinePrefix(dst, user), seq)
}

func convPrefix(dst []byte, user, conv string) []byte {
	dst = append(dst, "c/"...)
	dst = append(dst, user...)
	dst = append(dst, '/')
	dst = append(dst, conv...)
	return append(dst, '/')
}

func convKey(dst []byte, user, conv string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(convPrefix(dst, user, conv), seq)
}

func dedupKey(dst []byte, sender, clientMsgID string) []byte {
	dst = append(dst, "d/"...)
	dst = append(dst, sender...)
	dst = append(dst, '/')
	return append(dst, clientMsgID...)
}

// prefixEnd returns the exclusive upper bound of the keys starting with
// prefix, which must end in '/'.
func prefixEnd(prefix []byte) []byte {
	end := append([]byte(nil), prefix...)
	end[len(end)-1] = '/' + 1
	return end
}

// seqOf decodes the seq that ends a t/ or c/ key.
func seqOf(key []byte) uint64 {
	if len(key) < seqLen {
		return 0
	}
	return binary.BigEndian.Uint64(key[len(key)-seqLen:])
}
