// Package resp is the wire codec of the node's Redis protocol front: a
// Reader that parses client requests (RESP multibulk and inline commands,
// pipelined) and a Writer that encodes replies in RESP2 or RESP3.
//
// It knows no commands: it does not interpret arguments, answer HELLO or
// route keys; the server does, and tells the Writer which protocol a
// connection switched to. What it does own is robustness against any
// input: Limits bounds the inline line, the argument count, one bulk and
// the bytes one command may buffer, with Redis's defaults; malformed input
// is a *ProtocolError carrying Redis's exact wording (Redis 7.0.15,
// src/networking.c), which the server sends as "-ERR Protocol error: ..."
// before closing, as Redis does.
//
// The project writes its own codec rather than using a library such as
// redcon because the server must see a whole pipeline: Reader.TryReadCommand
// returns the commands already buffered without blocking, and their
// arguments stay valid together until the next Reader.ReadCommand, so the
// server can start every pipelined write, flush them as one group commit
// and answer in order, as the native protocol does (lib/rpc
// ServerConfig.Prepare).
package resp
