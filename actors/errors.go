package actors

import (
	"actorim/protos/actorpb"
	"actorim/protos/clientpb"
)

type pbPID = actorpb.PID

// clientError builds the Error a client receives.
func clientError(code clientpb.ErrorCode, msg string) *clientpb.Error {
	return &clientpb.Error{Code: code, Message: msg}
}

func errorFrame(id uint32, e *clientpb.Error) *clientpb.Frame {
	return &clientpb.Frame{Id: id, Body: &clientpb.Frame_Error{Error: e}}
}

func opError(code clientpb.ErrorCode, msg string) *actorpb.OpResult {
	return &actorpb.OpResult{Error: clientError(code, msg)}
}

var errUnavailable = opError(clientpb.ErrorCode_ERR_UNAVAILABLE, "store unavailable, retry")
