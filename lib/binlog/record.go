package binlog

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// Record is one entry of the log.
type Record struct {
	// Term is the term of the master that wrote the record. Terms never
	// decrease along a log.
	Term uint64
	// LSN is the record's position: the previous record's LSN plus one.
	// LSN 0 is never used; it stands for "nothing".
	LSN uint64
	// Payload is opaque to the log (the node stores a zppb.WriteRecord).
	// Append copies it; a Reader returns a fresh slice the caller owns.
	Payload []byte
}

// MaxPayloadSize bounds a record's payload. It is far above any write the
// node accepts; its job is to keep a corrupt length field from turning into
// a huge allocation.
const MaxPayloadSize = 1 << 30

// recordHeaderSize is the size of the record header: crc, length, term, lsn.
const recordHeaderSize = 4 + 4 + 8 + 8

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// appendRecord appends the encoding of rec to b.
func appendRecord(b []byte, rec Record) []byte {
	start := len(b)
	var h [recordHeaderSize]byte
	binary.LittleEndian.PutUint32(h[4:8], uint32(len(rec.Payload)))
	binary.LittleEndian.PutUint64(h[8:16], rec.Term)
	binary.LittleEndian.PutUint64(h[16:24], rec.LSN)
	b = append(b, h[:]...)
	b = append(b, rec.Payload...)
	crc := crc32.Checksum(b[start+4:], castagnoli)
	binary.LittleEndian.PutUint32(b[start:start+4], crc)
	return b
}

// encodedSize is the number of bytes rec takes on disk.
func encodedSize(rec Record) int64 { return recordHeaderSize + int64(len(rec.Payload)) }

// recordHeader is a decoded record header.
type recordHeader struct {
	crc  uint32
	size uint32 // payload length
	term uint64
	lsn  uint64
}

func decodeRecordHeader(b []byte) recordHeader {
	_ = b[recordHeaderSize-1]
	return recordHeader{
		crc:  binary.LittleEndian.Uint32(b[0:4]),
		size: binary.LittleEndian.Uint32(b[4:8]),
		term: binary.LittleEndian.Uint64(b[8:16]),
		lsn:  binary.LittleEndian.Uint64(b[16:24]),
	}
}

// verify checks the CRC of a record given its full header bytes and payload.
func (h recordHeader) verify(header, payload []byte) error {
	crc := crc32.Update(crc32.Checksum(header[4:recordHeaderSize], castagnoli), castagnoli, payload)
	if crc != h.crc {
		return fmt.Errorf("crc mismatch on lsn %d: stored %#08x, computed %#08x", h.lsn, h.crc, crc)
	}
	return nil
}
