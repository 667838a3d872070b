# Zeppelin-Go. `make run` starts a local cluster, `make test` runs the suite.
SHELL := /bin/bash
export PATH := $(PATH):/usr/local/go/bin

GO        ?= go
BIN       := $(CURDIR)/bin
VAR       := $(CURDIR)/var
BINARIES  := zpmeta zpnode zpctl zpbench
META_PORTS := 9221 9222 9223
NODE_PORTS := 9231 9232 9233
# Prometheus /metrics of each daemon started by `make run`, in the same order.
META_METRICS_PORTS := 9321 9322 9323
NODE_METRICS_PORTS := 9331 9332 9333
# RESP (Redis protocol) port of each node started by `make run`.
NODE_REDIS_PORTS := 9241 9242 9243
META_ADDRS := 127.0.0.1:9221,127.0.0.1:9222,127.0.0.1:9223

PROTOC_GEN_GO_VERSION := v1.36.12
TEST_TIMEOUT ?= 18m

# ZP_ROCKSDB_BUILD says which RocksDB the binaries link: zpnode reports it in
# zeppelin_node_build_info and the benchmark page prints it. Stamped with
# -ldflags -X; a release build of RocksDB sets it to describe itself.
ZP_ROCKSDB_BUILD ?= debian librocksdb-dev $(shell dpkg-query -W -f='$${Version}' librocksdb-dev 2>/dev/null)
GO_LDFLAGS := -X 'github.com/zeppelin-kv/zeppelin/lib/buildinfo.RocksDB=$(ZP_ROCKSDB_BUILD)'

# apt packages the build needs; root installs them, others get sudo.
APT_PACKAGES := librocksdb-dev build-essential
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all build deps run stop clean test test-short test-race fuzz vet proto bench bench-soak

all: build

deps:
	@command -v $(GO) >/dev/null || { echo "Go 1.26 or newer is needed (https://go.dev/dl)" >&2; exit 1; }
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing$$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

# ROCKSDB=release (`make ROCKSDB=release build`, and run, test, bench...)
# links the binaries statically against RocksDB built from Debian's own
# source package with release flags (-O2 -DNDEBUG, no debug info), built once
# by lib/engine/rocksdb-release.sh into ROCKSDB_RELEASE_DIR, outside the
# checkout (docs/build.md). Unset, they link Debian's librocksdb-dev (shared).
# 7.8.3 is what Debian bookworm ships and what grocksdb v1.7.15 compiles against.
ROCKSDB ?=
ROCKSDB_VERSION := 7.8.3
ROCKSDB_DEBIAN_VERSION := 7.8.3-2
ROCKSDB_RELEASE_DIR ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/zeppelin/rocksdb-$(ROCKSDB_VERSION)-release
ROCKSDB_DEP :=
ifeq ($(ROCKSDB),release)
# dpkg-dev unpacks the source package (dpkg-source); the -dev packages of the
# compression libraries RocksDB is built with are also what the link needs.
APT_PACKAGES := build-essential dpkg-dev libsnappy-dev liblz4-dev libzstd-dev zlib1g-dev libbz2-dev
ROCKSDB_DEP := rocksdb-release
# (`make ZP_ROCKSDB_BUILD=...` still wins over this.)
ZP_ROCKSDB_BUILD := release $(ROCKSDB_VERSION) (Debian source $(ROCKSDB_DEBIAN_VERSION), make static_lib DEBUG_LEVEL=0 PORTABLE=1: -O2 -DNDEBUG, static)
GO_LDFLAGS := -X 'github.com/zeppelin-kv/zeppelin/lib/buildinfo.RocksDB=$(ZP_ROCKSDB_BUILD)'
# The libraries after -lrocksdb are those RocksDB's build detects with its
# optional ones (jemalloc, numa, tbb, liburing...) turned off, as the script
# does (it writes them to ROCKSDB_RELEASE_DIR/ldflags).
export CGO_CFLAGS := -g -O2 -I$(ROCKSDB_RELEASE_DIR)/include
export CGO_CXXFLAGS := -g -O2 -I$(ROCKSDB_RELEASE_DIR)/include
export CGO_LDFLAGS := -g -O2 -L$(ROCKSDB_RELEASE_DIR)/lib -lrocksdb -lpthread -lrt -ldl -lsnappy -lz -lbz2 -llz4 -lzstd -lstdc++ -lm
else ifneq ($(ROCKSDB),)
$(error ROCKSDB=$(ROCKSDB): only ROCKSDB=release is known (leave it unset for Debian's librocksdb-dev))
endif

# ZP_VERSION is the version every binary reports (--version, zpctl version,
# node list, meta list, INFO): lib/buildinfo.Version. Unset outside a git
# checkout, the binaries fall back to what Go recorded (lib/buildinfo).
ZP_VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null)
GO_LDFLAGS += $(if $(ZP_VERSION),-X 'github.com/zeppelin-kv/zeppelin/lib/buildinfo.Version=$(ZP_VERSION)')

# rocksdb-release builds RocksDB for ROCKSDB=release once (about 11 minutes on
# 2 idle cores; it prints its progress) and returns at once when it is built.
.PHONY: rocksdb-release
rocksdb-release: deps
	@ROCKSDB_VERSION=$(ROCKSDB_VERSION) ROCKSDB_DEBIAN_VERSION=$(ROCKSDB_DEBIAN_VERSION) \
		lib/engine/rocksdb-release.sh $(ROCKSDB_RELEASE_DIR)

build: deps $(ROCKSDB_DEP)
	@mkdir -p $(BIN)
	$(GO) build -ldflags "$(GO_LDFLAGS)" -o $(BIN)/ $(addprefix ./,$(BINARIES))

# run starts 3 zpmeta and 3 zpnode on 127.0.0.1 in the background (data in
# var/data, logs in var/log, pids in var/run), each with Prometheus metrics
# on its own port, creates table `default` and waits until it is writable.
# Running it again while the cluster is up starts only what is missing.
run: build
	@mkdir -p $(VAR)/data $(VAR)/log $(VAR)/run
	@i=0; for port in $(META_PORTS); do i=$$((i+1)); name=zpmeta-$$i; \
		metrics=$$(echo $(META_METRICS_PORTS) | cut -d' ' -f$$i); \
		if [ -f $(VAR)/run/$$name.pid ] && kill -0 $$(cat $(VAR)/run/$$name.pid) 2>/dev/null; then continue; fi; \
		nohup $(BIN)/zpmeta --addr 127.0.0.1:$$port --peers $(META_ADDRS) --data $(VAR)/data/$$name \
			--metrics-addr 127.0.0.1:$$metrics >>$(VAR)/log/$$name.log 2>&1 & echo $$! >$(VAR)/run/$$name.pid; \
		echo "started $$name on 127.0.0.1:$$port, metrics on 127.0.0.1:$$metrics (pid $$(cat $(VAR)/run/$$name.pid))"; \
	done
	@i=0; for port in $(NODE_PORTS); do i=$$((i+1)); name=zpnode-$$i; \
		metrics=$$(echo $(NODE_METRICS_PORTS) | cut -d' ' -f$$i); \
		redis=$$(echo $(NODE_REDIS_PORTS) | cut -d' ' -f$$i); \
		if [ -f $(VAR)/run/$$name.pid ] && kill -0 $$(cat $(VAR)/run/$$name.pid) 2>/dev/null; then continue; fi; \
		nohup $(BIN)/zpnode --addr 127.0.0.1:$$port --meta $(META_ADDRS) --data $(VAR)/data/$$name \
			--metrics-addr 127.0.0.1:$$metrics --redis-addr 127.0.0.1:$$redis >>$(VAR)/log/$$name.log 2>&1 & echo $$! >$(VAR)/run/$$name.pid; \
		echo "started $$name on 127.0.0.1:$$port, RESP on 127.0.0.1:$$redis, metrics on 127.0.0.1:$$metrics (pid $$(cat $(VAR)/run/$$name.pid))"; \
	done
	@$(BIN)/zpctl --meta $(META_ADDRS) --timeout 60s node wait --count 3 >/dev/null
	@$(BIN)/zpctl --meta $(META_ADDRS) --timeout 60s table create default --partitions 16 --replicas 3 --if-not-exists --wait
	@# Nodes take up the table's epoch with their next PING: wait until
	@# checkup agrees (up to 30 s), so that a script can check right after.
	@for i in $$(seq 1 30); do $(BIN)/zpctl --meta $(META_ADDRS) checkup >/dev/null 2>&1 && exit 0; sleep 1; done; \
		echo "the cluster is up but checkup still reports:"; $(BIN)/zpctl --meta $(META_ADDRS) checkup
	@echo
	@echo "Zeppelin is running: meta 127.0.0.1:{9221,9222,9223}, nodes 127.0.0.1:{9231,9232,9233}, RESP 127.0.0.1:{9241,9242,9243}."
	@echo "Metrics at http://127.0.0.1:PORT/metrics: meta {9321,9322,9323}, nodes {9331,9332,9333}"
	@echo "(Prometheus scrape config, dashboard and alerts: playbooks/monitoring/)."
	@echo "  bin/zpctl set default k v       # write"
	@echo "  bin/zpctl get default k         # read"
	@echo "  bin/zpctl table list            # tables"
	@echo "  bin/zpctl node list             # nodes"
	@echo "  bin/zpctl slowlog               # slow requests"
	@echo "  redis-cli -c -p 9241            # Redis Cluster protocol, table default"
	@echo "  bin/zpbench --meta $(META_ADDRS) --duration 10s   # load generator (makes table bench, drops it after)"
	@echo "Logs in var/log/, data in var/data/. Stop with 'make stop'; 'make clean' also deletes var/."

stop:
	@for f in $(VAR)/run/*.pid; do [ -f "$$f" ] || continue; \
		pid=$$(cat $$f); name=$$(basename $$f .pid); \
		if kill $$pid 2>/dev/null; then \
			for _ in $$(seq 1 100); do kill -0 $$pid 2>/dev/null || break; sleep 0.1; done; \
			kill -9 $$pid 2>/dev/null || true; echo "stopped $$name"; \
		fi; rm -f $$f; \
	done

clean: stop
	rm -rf $(VAR) $(BIN)

# test builds the binaries once and runs the whole suite against them:
# every package's tests, then the race run and the fuzz run (below),
# beside the playbooks test (the longest, 11-14 minutes, most of it
# Ansible's per-task work), whose output is printed when it ends; the
# exit status is the first failure's. CI has 20 minutes on 2 cores from a
# fresh machine, where compiling is a third of the CPU the suite needs
# (`make build` 3.5 CPU-minutes, the test binaries 3, their race build
# 6.3) and the cores are nearly always busy: a third lane (the race run
# beside the others) only slowed each of them. The packages mostly wait on
# their clusters (lib/testcluster: 210 CPU-seconds in 305 s), so three run
# at a time. A package of RACE_PACKAGES
# whose tests never look at testing.Short() runs whole in the race run,
# so the plain run leaves it out (RACE_ONLY) rather than compile and run
# it twice.
PLAYBOOK_PACKAGES := ./playbooks/...
RACE_ONLY = $(shell $(GO) list -f '{{.ImportPath}} {{.Dir}}' $(RACE_PACKAGES) | \
	while read p d; do ls $$d/*_test.go >/dev/null 2>&1 && ! grep -q 'testing.Short()' $$d/*_test.go && echo $$p; done)
OTHER_PACKAGES = $(filter-out $(RACE_ONLY),$(shell $(GO) list ./... | grep -v '/playbooks'))
TEST_PARALLEL ?= 3
TEST_FUZZTIME ?= 10s
test: build
	@echo "go test $(PLAYBOOK_PACKAGES): in the background, printed when it ends"; \
	log=$$(mktemp); \
	ZP_BIN_DIR=$(BIN) $(GO) test -timeout $(TEST_TIMEOUT) $(PLAYBOOK_PACKAGES) >$$log 2>&1 & pb=$$!; \
	status=0; \
	{ ZP_BIN_DIR=$(BIN) $(GO) test -p $(TEST_PARALLEL) -timeout $(TEST_TIMEOUT) $(OTHER_PACKAGES) && \
	  $(MAKE) --no-print-directory test-race && \
	  $(MAKE) --no-print-directory fuzz FUZZTIME=$(TEST_FUZZTIME); } || status=$$?; \
	wait $$pb || { [ $$status -ne 0 ] || status=1; }; \
	cat $$log; rm -f $$log; \
	exit $$status

test-short: build
	ZP_BIN_DIR=$(BIN) $(GO) test -short ./...

# test-race runs the packages with concurrency of their own under the race
# detector (group commit, replication, the rpc pipeline, the client's
# retries and refreshes, Raft and the meta server, whole clusters in one
# process with lib/inproc). lib/testcluster and
# playbooks are left out: their servers are separate processes. All run
# with -short: make test runs the long tests (whole clusters under load,
# splits of 16 partitions, processes driven by zpctl and zpbench) without
# the detector, their short forms exercise the same concurrent code under
# it, and the whole CI suite has 20 minutes on 2 cores (the long forms
# under -race took 109 s for zpmeta/tests alone).
RACE_PACKAGES := ./lib/rpc/... ./lib/binlog/... ./lib/engine/... ./lib/client/... ./lib/inproc/... \
	./zpnode/... ./zpmeta/... ./zpctl/... ./zpbench/...
test-race: build
	ZP_BIN_DIR=$(BIN) $(GO) test -race -short -timeout $(TEST_TIMEOUT) $(RACE_PACKAGES)

# fuzz runs each fuzz test for a short while on top of its committed corpus
# (`go test` alone replays the corpus only).
FUZZTIME ?= 20s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzReader$$' -fuzztime $(FUZZTIME) ./zpnode/resp

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }

# proto regenerates proto/zppb with pinned protoc (Debian's 3.21.12) and
# protoc-gen-go.
proto:
	@command -v protoc >/dev/null || { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq protobuf-compiler; }
	GOBIN=$(BIN) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	cd proto && PATH=$(BIN):$$PATH protoc --proto_path=. --go_out=zppb --go_opt=paths=source_relative *.proto

# bench runs the benchmark suite on this machine, in one go (about 12 minutes
# on 2 vCPUs): the Go micro-benchmarks, then SET and GET at pipeline 1 and 16
# against the no-op server (loopback ceiling), zpnode 1 node/1 replica,
# 3 nodes/3 replicas async, 3 nodes min_sync_replicas=1, Redis with AOF
# everysec and a one-node Redis Cluster (redis-server and redis-tools are
# apt-installed when missing), all started on free loopback ports under a
# temporary directory, measured in alternating rounds, and stopped at the
# end, failure or not. zpnode's RESP front is measured by redis-benchmark and
# zpbench's go-redis ClusterClient beside its native protocol; redis-benchmark
# measures the plain Redis too, for issue 15's goals. Each cell reports the
# servers' CPU per operation (zpnode's process_cpu_seconds_total, /proc for the
# others). Then a fresh 1-node zpnode is loaded with 1M records for the memory
# section (RSS, block cache, memtables, Go heap; --memory-keys 0 leaves it
# out). It writes docs/benchmarks.md. `bin/zpbench suite --help` lists
# BENCH_FLAGS, e.g. BENCH_FLAGS='--duration 3s --systems noop,redis' or
# '--clients zpbench' (the native cells only, about 6 minutes).
# bench-soak is bench plus a SOAK-long (default 10m) mixed run on the memory
# node (--soak; 80% GET, 20% SET), its RSS sampled every 5 s and reported
# with whether it kept growing in the second half.
# ZP_ROCKSDB_BUILD (above) names the RocksDB build on the page.
BENCH_FLAGS ?=
bench: build
	@command -v redis-server >/dev/null || { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq redis-server; }
	@command -v redis-benchmark >/dev/null || { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq redis-tools; }
	$(BIN)/zpbench suite --bin-dir $(BIN) --go $(GO) --out docs/benchmarks.md $(BENCH_FLAGS)

SOAK ?= 10m
bench-soak:
	$(MAKE) bench BENCH_FLAGS='$(BENCH_FLAGS) --soak $(SOAK)'
