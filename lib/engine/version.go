package engine

// #include "shim.h"
import "C"

import "unsafe"

// RocksDBVersion returns the version of the RocksDB library linked in, as
// it reports it ("7.8.3"): the library's, not the headers' it was compiled
// against.
func RocksDBVersion() string {
	var buf [64]C.char
	C.zp_rocksdb_version(&buf[0], C.size_t(len(buf)))
	return C.GoString((*C.char)(unsafe.Pointer(&buf[0])))
}
