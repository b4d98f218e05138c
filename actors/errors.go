package actors

import (
	"actorim/protos/actorpb"
	"actorim/protos/clientpb"
)

// The errors clients get from the actors, each defined once when more than
// one place answers with it. Errors that name their data (a user, a limit)
// are built where the data is, with clientError or opError. The values are
// shared: nothing may modify them.
var (
	// errStoreUnavailable: a store call failed or timed out; nothing changed
	// that a retry would repeat.
	errStoreUnavailable = clientError(clientpb.ErrorCode_ERR_UNAVAILABLE, "store unavailable, retry")
	// errStoreUnavailableSend: as errStoreUnavailable, on the send path.
	errStoreUnavailableSend = clientError(clientpb.ErrorCode_ERR_UNAVAILABLE, "store unavailable, retry with the same client_msg_id")
	// errNotStored: a send's append failed; the message may or may not be
	// stored, and a retry with its client_msg_id finds out without a copy.
	errNotStored = clientError(clientpb.ErrorCode_ERR_UNAVAILABLE, "message not stored, retry with the same client_msg_id")
	// errNoAnswer: a grain did not answer in time.
	errNoAnswer = clientError(clientpb.ErrorCode_ERR_UNAVAILABLE, "no answer in time, retry")
	// errDefaultGroups: the store cannot list the default app's groups
	// (Service.Groups).
	errDefaultGroups = clientError(clientpb.ErrorCode_ERR_UNSUPPORTED, "this store cannot list the default app's groups")
	// errUnexpectedAnswer: a grain answered a request with the wrong type.
	errUnexpectedAnswer = clientError(clientpb.ErrorCode_ERR_INTERNAL, "unexpected answer")
	// errNoAnswerSend: a grain did not answer a send in time.
	errNoAnswerSend = clientError(clientpb.ErrorCode_ERR_UNAVAILABLE, "no answer in time; retry with the same client_msg_id")
	// errGroupUnreachable: no PID for the group's grain could be found.
	errGroupUnreachable = clientError(clientpb.ErrorCode_ERR_UNAVAILABLE, "group unreachable, retry")
	// errGroupUnreachableSend: as errGroupUnreachable, for a group send.
	errGroupUnreachableSend = clientError(clientpb.ErrorCode_ERR_UNAVAILABLE, "group unreachable, retry with the same client_msg_id")
	// errSessionMoving: the connection is re-attaching to its user grain.
	errSessionMoving = clientError(clientpb.ErrorCode_ERR_UNAVAILABLE, "session moving, retry")
	// errSessionMovingSend: as errSessionMoving, for a send.
	errSessionMovingSend = clientError(clientpb.ErrorCode_ERR_UNAVAILABLE, "session moving, retry with the same client_msg_id")
	// errBroadcastUnavailable: a broadcast stopped on a store error; a retry
	// with the same id resumes it.
	errBroadcastUnavailable = clientError(clientpb.ErrorCode_ERR_UNAVAILABLE, "store unavailable; retry with the same id")

	// errMsgIDReused: a client_msg_id already named another message.
	errMsgIDReused = clientError(clientpb.ErrorCode_ERR_CLIENT_MSG_ID_REUSED,
		"client_msg_id already used for a different message: a retry repeats the original send, a new message needs a new id")
	// errToNotGroup: a group send whose 'to' is no group id.
	errToNotGroup = clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, "send: to must be a group id")
	// errTokenRevoked: a login with a token issued before the revocation.
	errTokenRevoked = clientError(clientpb.ErrorCode_ERR_UNAUTHENTICATED, "token revoked: log in again")
	// errUserDisabled: a login (password or token) of a disabled user.
	errUserDisabled = clientError(clientpb.ErrorCode_ERR_FORBIDDEN, "user disabled")

	errGroupTaken         = clientError(clientpb.ErrorCode_ERR_CONFLICT, "group id already taken")
	errGroupFieldsTooLong = clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, "group: name, avatar_url or notice too long")
	errNoGroup            = clientError(clientpb.ErrorCode_ERR_NOT_FOUND, "no such group")
	errNotMember          = clientError(clientpb.ErrorCode_ERR_NOT_MEMBER, "not a member of this group")
	errNotManager         = clientError(clientpb.ErrorCode_ERR_FORBIDDEN, "only the owner or an admin may do this")
	errNotOwner           = clientError(clientpb.ErrorCode_ERR_FORBIDDEN, "only the owner may do this")
	errDissolved          = clientError(clientpb.ErrorCode_ERR_GROUP_DISSOLVED, "the group has been dissolved")
	errNoOperation        = clientError(clientpb.ErrorCode_ERR_BAD_REQUEST, "group: no operation given")
)

// clientError builds the Error a client receives.
func clientError(code clientpb.ErrorCode, msg string) *clientpb.Error {
	return &clientpb.Error{Code: code, Message: msg}
}

// opError builds the OpResult of a refused request.
func opError(code clientpb.ErrorCode, msg string) *actorpb.OpResult {
	return failed(clientError(code, msg))
}

// failed is the OpResult of a request refused with e.
func failed(e *clientpb.Error) *actorpb.OpResult { return &actorpb.OpResult{Error: e} }

func errorFrame(id uint32, e *clientpb.Error) *clientpb.Frame {
	return &clientpb.Frame{Id: id, Body: &clientpb.Frame_Error{Error: e}}
}

type pbPID = actorpb.PID
