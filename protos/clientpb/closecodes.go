package clientpb

// WebSocket close codes the server uses, beside the standard 1000 (normal,
// after Logout), 1001 (server going away), 1009 (frame far too large) and
// 1011 (internal error). Codes 4000-4999 are actorim's own.
const (
	// CloseUnauthenticated: the Login token was refused.
	CloseUnauthenticated = 4001
	// CloseLoginTimeout: no Login arrived in time.
	CloseLoginTimeout = 4002
	// CloseKicked: a Kick frame explains why (device replaced or device policy).
	CloseKicked = 4003
	// CloseIdle: nothing was received within the idle timeout.
	CloseIdle = 4004
	// CloseProtocol: too many invalid frames in a row.
	CloseProtocol = 4005
	// CloseRateLimited: the client kept sending requests faster than its
	// request rate after ERR_RATE_LIMITED told it to wait.
	CloseRateLimited = 4007
	// CloseSlowConsumer: the client does not read fast enough.
	CloseSlowConsumer = 4006
	// CloseTryAgain: the server cannot serve this session now; reconnect after a pause.
	CloseTryAgain = 4008
	// CloseReconnectElsewhere: this node is draining; reconnect (to any node).
	CloseReconnectElsewhere = 4009
)
