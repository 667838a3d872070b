package server

import (
	"encoding/binary"
	"hash/fnv"

	"github.com/zeppelin-kv/zeppelin/proto/zppb"
)

// partID is the request id under which one partition's share of a
// multi-key request is logged. A client sends one id for a whole MSET, but
// the call may reach a replica in several requests (a large call is split,
// and keys are regrouped after a MOVE), so the id alone would make a later
// share look like a retry of the first. Mixing in the share's keys means a
// retry is recognised only when it carries exactly the keys that were
// written; any other share is written, as a retry of SET would be without
// an id.
func partID(id []byte, rec *zppb.WriteRecord) []byte {
	if len(id) == 0 {
		return nil
	}
	h := fnv.New128a()
	h.Write(id)
	var n [binary.MaxVarintLen64]byte
	for _, m := range rec.Mutations {
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(m.Key)))])
		h.Write(m.Key)
	}
	return h.Sum(nil)
}
