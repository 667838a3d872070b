package resp

import "errors"

// ProtocolError is malformed client input. Msg holds Redis's own wording
// (src/networking.c of Redis 7.0.15), so a server answers
// "-ERR Protocol error: <Msg>" and closes the connection, as Redis does;
// the Reader is unusable afterwards.
type ProtocolError struct {
	Msg string
}

// Error returns "Protocol error: " and Msg, the text Redis sends after "-ERR ".
func (e *ProtocolError) Error() string { return "Protocol error: " + e.Msg }

// The protocol errors whose text does not depend on the input. Match them
// with errors.Is, or any protocol error with errors.As.
var (
	// ErrTooBigInline is an inline request line longer than Limits.MaxInline.
	ErrTooBigInline = &ProtocolError{"too big inline request"}
	// ErrUnbalancedQuotes is an inline request that sdssplitargs refuses:
	// an unterminated quote, or a closing quote followed by a non-space.
	ErrUnbalancedQuotes = &ProtocolError{"unbalanced quotes in request"}
	// ErrTooBigMultibulkCount is a "*<count>" line longer than Limits.MaxInline.
	ErrTooBigMultibulkCount = &ProtocolError{"too big mbulk count string"}
	// ErrInvalidMultibulkLength is a count that is not a number, or is
	// above Limits.MaxArgs.
	ErrInvalidMultibulkLength = &ProtocolError{"invalid multibulk length"}
	// ErrTooBigBulkCount is a "$<length>" line longer than Limits.MaxInline.
	ErrTooBigBulkCount = &ProtocolError{"too big bulk count string"}
	// ErrInvalidBulkLength is a bulk length that is not a number, is
	// negative, is above Limits.MaxBulk, or does not match the data (the
	// bulk is not followed by CRLF; Redis does not check this and
	// silently desynchronizes, we refuse it with the nearest Redis text).
	ErrInvalidBulkLength = &ProtocolError{"invalid bulk length"}
	// ErrUnauthMultibulkLength is a count above 10 before authentication
	// (see Reader.SetUnauthenticated).
	ErrUnauthMultibulkLength = &ProtocolError{"unauthenticated multibulk length"}
	// ErrUnauthBulkLength is a bulk above 16384 bytes before
	// authentication (see Reader.SetUnauthenticated).
	ErrUnauthBulkLength = &ProtocolError{"unauthenticated bulk length"}
)

// expectedDollar is Redis's "expected '$', got '%c'": an argument of a
// multibulk request that is not a bulk string (a nested array, garbage).
// The byte is kept raw, as Redis's %c does; Writer.WriteError turns CR and
// LF into spaces as Redis's addReplyErrorFormat does.
func expectedDollar(c byte) *ProtocolError {
	return &ProtocolError{"expected '$', got '" + string([]byte{c}) + "'"}
}

// ErrQueryBufferLimit is a command that buffered Limits.MaxQueryBuffer bytes
// and is still incomplete. Redis closes such a client without a reply
// ("closing client that reached max query buffer length"); so should the
// server. It is not a ProtocolError.
var ErrQueryBufferLimit = errors.New("resp: command exceeds the query buffer limit")
