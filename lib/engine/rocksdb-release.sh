#!/usr/bin/env bash
# rocksdb-release.sh DIR: build RocksDB from Debian's own source package with
# release flags into DIR (a cache outside the checkout), once.
#
#   DIR/lib/librocksdb.a   the static library (no debug info)
#   DIR/include/           its headers
#   DIR/ldflags            the libraries it needs, as RocksDB's build detected them
#   DIR/DONE               written last (atomically): the build is complete
#
# With DIR/DONE present it returns at once. Without it, it fetches the source
# with apt (a private sources list with a deb-src entry for this machine's
# Debian suite and mirror, private lists and cache: the system's apt is left
# as it is) and runs RocksDB's own `make static_lib` with release flags,
# printing a progress line every ~10 s. An interrupted build is resumed: the
# newest object files (possibly half written) and the library are deleted and
# make goes on with the rest.
#
# Needs: apt-get, dpkg-source (dpkg-dev), a C++ compiler, and the -dev
# packages of snappy, lz4, zstd, zlib and bzip2 (the Makefile installs them
# for `make ROCKSDB=release ...`).
#
# Environment: ROCKSDB_VERSION (default 7.8.3, the version Debian bookworm
# ships and grocksdb v1.7.15 compiles against), ROCKSDB_DEBIAN_VERSION (the
# source package's version to fetch, e.g. 7.8.3-2; default: the suite's
# current one), ROCKSDB_JOBS (default nproc).
set -euo pipefail

dir=${1:?usage: $0 CACHE_DIR}
version=${ROCKSDB_VERSION:-7.8.3}
jobs=${ROCKSDB_JOBS:-$(nproc)}

log() { echo "rocksdb-release: $*" >&2; }

[ -f "$dir/DONE" ] && exit 0

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
# One build at a time per cache (two `make` runs started together wait here).
exec 9>"$dir/.lock"
if ! flock -n 9; then
	log "another build of $dir is running; waiting for it"
	flock 9
fi
[ -f "$dir/DONE" ] && exit 0

for c in apt-get dpkg-source g++ make ar flock; do
	command -v "$c" >/dev/null || { log "$c is missing (the Makefile's deps target installs what is needed)"; exit 1; }
done

build="$dir/build"
src="$build/rocksdb-$version"

# --- source: Debian's source package of rocksdb for this machine's suite ---
if [ ! -f "$build/.source-ok" ] || [ ! -d "$src" ]; then
	. /etc/os-release
	suite=${VERSION_CODENAME:?no VERSION_CODENAME in /etc/os-release}
	# The mirror the system's apt uses for its main suite (deb822 or
	# one-line format), else deb.debian.org.
	mirror=$(
		{
			grep -hs -E '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' || true
			grep -hs -E '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list |
				sed -E 's/\[[^]]*\]//' | awk '{print $2}'
		} | grep -v -E 'security|/debian-security' | head -n1 || true
	)
	mirror=${mirror:-http://deb.debian.org/debian}
	apt="$dir/apt"
	rm -rf "$apt" "$build"
	mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$build"
	echo "deb-src $mirror $suite main" >"$apt/sources.list"
	aptopts=(-o "Dir::Etc::SourceList=$apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
		-o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache" -o APT::Sandbox::User=root)
	log "fetching Debian's rocksdb source package ($suite from $mirror)"
	apt-get -qq "${aptopts[@]}" update
	pkg=rocksdb${ROCKSDB_DEBIAN_VERSION:+=$ROCKSDB_DEBIAN_VERSION}
	(cd "$build" && apt-get -qq "${aptopts[@]}" source "$pkg" 2>&1 | grep -v '^dpkg-source: info' >&2 || true)
	if [ ! -d "$src" ]; then
		log "apt-get source $pkg did not give rocksdb-$version (got: $(ls "$build" | tr '\n' ' '))"
		exit 1
	fi
	# The Debian version of the package, e.g. 7.8.3-2.
	sed -n 's/^Version: //p' "$build"/rocksdb_*.dsc | head -n1 >"$build/debian-version"
	touch "$build/.source-ok"
fi
debver=$(cat "$build/debian-version")

# --- build: RocksDB's make static_lib with release flags ---
# DEBUG_LEVEL=0 gives -O2 -DNDEBUG. OPT from the environment is prepended to
# RocksDB's own OPT, which comes after its -g on the compiler's command line:
# -g0 leaves debug info out (the .a is ~870 MB with it). SKIP_DEPENDS skips
# the .d files (a g++ -MM of every source, tests and tools included): the
# source does not change under the build. Optional libraries other than the
# compression ones stay off, so that the link needs only those.
makeargs=(static_lib DEBUG_LEVEL=0 PORTABLE=1 DISABLE_WARNING_AS_ERROR=1 SKIP_DEPENDS=1 -j"$jobs")
export OPT=-g0 ROCKSDB_DISABLE_GFLAGS=1 ROCKSDB_DISABLE_JEMALLOC=1 ROCKSDB_DISABLE_TCMALLOC=1 \
	ROCKSDB_DISABLE_NUMA=1 ROCKSDB_DISABLE_TBB=1 ROCKSDB_DISABLE_MEMKIND=1 ROCKSDB_USE_IO_URING=0 \
	ROCKSDB_DISABLE_BENCHMARK=1

cd "$src"
if [ -f "$build/.build-started" ]; then
	# Resumed: the objects being written when it stopped (at most -j of
	# them) are among the newest; delete twice as many to be safe.
	log "resuming an unfinished build in $src"
	find . -name '*.o' -printf '%T@ %p\n' | sort -rn | head -n "$((2 * jobs))" | cut -d' ' -f2- | xargs -r rm -f
	rm -f librocksdb.a
fi
touch "$build/.build-started"

# What is left to compile (a dry run also writes make_config.mk).
make -n "${makeargs[@]}" >"$build/plan.txt" 2>"$build/plan.err" || { cat "$build/plan.err" >&2; exit 1; }
todo=$(grep -c -E '(^| )-c [^ ]+ -o [^ ]+\.o' "$build/plan.txt" || true)
count_objs() { find . -name '*.o' ! -name test.o | wc -l; }
done0=$(count_objs)
total=$((done0 + todo))
log "building librocksdb.a $version (Debian $debver): $todo of $total objects to compile with -j$jobs, log in $build/make.log"

start=$(date +%s)
(
	while sleep 10; do
		n=$(count_objs)
		el=$(($(date +%s) - start))
		made=$((n - done0))
		if [ "$made" -gt 0 ]; then
			eta=$((el * (total - n) / made))
			printf 'rocksdb-release: %d/%d objects (%d%%), %s elapsed, %.1f objects/min, ETA %dm%02ds\n' \
				"$n" "$total" $((100 * n / total)) "$((el / 60))m$((el % 60))s" \
				"$(awk -v m="$made" -v e="$el" 'BEGIN{print m*60/e}')" $((eta / 60)) $((eta % 60)) >&2
		else
			printf 'rocksdb-release: %d/%d objects, %dm%02ds elapsed\n' "$n" "$total" $((el / 60)) $((el % 60)) >&2
		fi
	done
) &
progress=$!
trap 'kill $progress 2>/dev/null || true' EXIT

if ! make "${makeargs[@]}" >"$build/make.log" 2>&1; then
	tail -n 30 "$build/make.log" >&2
	log "make static_lib failed; full log in $build/make.log"
	exit 1
fi
kill $progress 2>/dev/null || true
el=$(($(date +%s) - start))

# --- install into the cache, then DONE ---
platform_ldflags=$(sed -n 's/^PLATFORM_LDFLAGS=//p' make_config.mk | head -n1)
rm -rf "$dir/lib" "$dir/include"
mkdir -p "$dir/lib"
strip --strip-debug -o "$dir/lib/librocksdb.a.tmp" librocksdb.a
mv "$dir/lib/librocksdb.a.tmp" "$dir/lib/librocksdb.a"
cp -r include "$dir/include"
echo "$platform_ldflags" >"$dir/ldflags"
size=$(du -m "$dir/lib/librocksdb.a" | cut -f1)
{
	echo "rocksdb $version, Debian source package $debver"
	echo "make ${makeargs[*]}"
	echo "OPT=$OPT (plus RocksDB's -O2 -DNDEBUG ...)"
	echo "built in $((el / 60))m$((el % 60))s on $(nproc) cores, $(date -u +%FT%TZ)"
	echo "librocksdb.a ${size} MB; link with: -lrocksdb $platform_ldflags"
} >"$dir/DONE.tmp"
mv "$dir/DONE.tmp" "$dir/DONE"
# The source and objects are no longer needed (a rebuild starts afresh).
rm -rf "$build" "$dir/apt"
log "done in $((el / 60))m$((el % 60))s: $dir/lib/librocksdb.a (${size} MB)"
