// Package buildinfo holds what the build stamps into the binaries with
// -ldflags -X, for the binaries to report (--version, `zpctl version`, INFO,
// the meta servers' node and member lists, zpnode's metrics, zpbench's
// benchmark page).
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// RocksDB says which build of RocksDB the binary was linked with, e.g.
// "debian librocksdb-dev 7.8.3-2" or a release build's description. The
// Makefile sets it from its ZP_ROCKSDB_BUILD variable:
//
//	go build -ldflags "-X 'github.com/zeppelin-kv/zeppelin/lib/buildinfo.RocksDB=debian librocksdb-dev 7.8.3-2'"
//
// Empty in a binary built without it (go build, go test).
var RocksDB string

// Version is the version of Zeppelin-Go the binary was built from, the same
// in every binary of one build. The Makefile stamps it from its ZP_VERSION
// variable (by default `git describe --tags --always --dirty`):
//
//	go build -ldflags "-X 'github.com/zeppelin-kv/zeppelin/lib/buildinfo.Version=v1.2.0'"
//
// A binary built without it (plain go build, go install, go test) gets what
// the Go toolchain recorded instead (see fromBuildInfo), so that it is
// never empty.
var Version string

func init() {
	if Version == "" {
		bi, ok := debug.ReadBuildInfo()
		if !ok {
			bi = nil
		}
		Version = fromBuildInfo(bi)
	}
}

// FeatureSlotRanges: the node routes a key to the partition whose slot
// range in the topology holds the key's slot (Partition.slot_begin and
// slot_end), not by the partition count, so it follows a split
// (docs/topology.md, "Split").
const FeatureSlotRanges = "slot-ranges"

// Features are what this release of zpnode can do that an older one
// cannot, as its PINGs report them (PingRequest.features). Versions are
// commit names, which say nothing of order, so the meta leader gates on
// these instead: it refuses what a node of the cluster could not follow.
var Features = []string{FeatureSlotRanges}

// Unknown is the Version of a binary that carries no version at all: not
// stamped, built outside a module's VCS checkout (as by go test).
const Unknown = "devel"

// fromBuildInfo is the version the Go toolchain recorded: the main module's
// version (go install module@v1.2.0 records v1.2.0; go build in a git
// checkout records a pseudo-version from the commit, with +dirty for local
// changes), else the VCS revision (-dirty when modified), else Unknown.
func fromBuildInfo(bi *debug.BuildInfo) string {
	if bi == nil {
		return Unknown
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev string
	var dirty bool
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return Unknown
	}
	rev = rev[:min(len(rev), 12)]
	if dirty {
		rev += "-dirty"
	}
	return rev
}

// Info is the build as `zpctl version --output json` prints it.
type Info struct {
	Version string `json:"version"`
	// Go is the Go release that built the binary, e.g. "go1.26.8".
	Go string `json:"go"`
	// Platform is GOOS/GOARCH, e.g. "linux/amd64".
	Platform string `json:"platform"`
}

// Get returns this binary's build.
func Get() Info {
	return Info{Version: Version, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
}

// Line is what every binary's --version prints: "zpnode v1.2.0 (go1.26.8
// linux/amd64)".
func Line(binary string) string {
	i := Get()
	return fmt.Sprintf("%s %s (%s %s)", binary, i.Version, i.Go, i.Platform)
}
