// Package buildinfo holds what the build stamps into the binaries with
// -ldflags -X, for the binaries to report (zpnode's metrics, zpbench's
// benchmark page).
package buildinfo

// RocksDB says which build of RocksDB the binary was linked with, e.g.
// "debian librocksdb-dev 7.8.3-2" or a release build's description. The
// Makefile sets it from its ZP_ROCKSDB_BUILD variable:
//
//	go build -ldflags "-X 'github.com/zeppelin-kv/zeppelin/lib/buildinfo.RocksDB=debian librocksdb-dev 7.8.3-2'"
//
// Empty in a binary built without it (go build, go test).
var RocksDB string
