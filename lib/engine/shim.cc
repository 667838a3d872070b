// C++ half of the bridges declared in shim.h.

#include "shim.h"

#include <malloc.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>

#include "rocksdb/env.h"
#include "rocksdb/file_system.h"
#include "rocksdb/options.h"
#include "rocksdb/sst_file_writer.h"
#include "rocksdb/statistics.h"
#include "rocksdb/version.h"
#include "rocksdb/write_buffer_manager.h"

// rocksdb_options_t is opaque in rocksdb/c.h. This is its definition from
// RocksDB's db/c.cc, unchanged from 2013 through RocksDB 7.x;
// zp_options_set_wbm checks two fields before trusting it.
struct rocksdb_options_t {
  rocksdb::Options rep;
};

// rocksdb_ingestexternalfileoptions_t, likewise from db/c.cc;
// zp_ingest_options_keep_files checks two fields before trusting it.
struct rocksdb_ingestexternalfileoptions_t {
  rocksdb::IngestExternalFileOptions rep;
};

struct zp_wbm_t {
  std::shared_ptr<rocksdb::WriteBufferManager> rep;
};

struct zp_stats_t {
  std::shared_ptr<rocksdb::Statistics> rep;
};

struct zp_expiry_clock_t {
  std::atomic<int64_t> now_override{0};
};

struct zp_sstwriter_t {
  // The writer's Options point at env, which must outlive it.
  std::unique_ptr<rocksdb::Env> env;
  std::unique_ptr<rocksdb::SstFileWriter> writer;
};

namespace {

// Value layout, mirrored from value.go: format byte, big-endian expiry in
// unix milliseconds (0 = never), user bytes.
constexpr unsigned char kValueFormat = 1;
constexpr size_t kValueHeader = 9;
constexpr char kDataPrefix = 'd';

unsigned char ExpiryFilter(void* state, int /*level*/, const char* key,
                           size_t key_length, const char* value,
                           size_t value_length, char** /*new_value*/,
                           size_t* /*new_value_length*/,
                           unsigned char* value_changed) {
  *value_changed = 0;
  if (key_length == 0 || key[0] != kDataPrefix) {
    return 0;  // metadata is never filtered
  }
  if (value_length < kValueHeader ||
      static_cast<unsigned char>(value[0]) != kValueFormat) {
    return 0;  // not ours to judge: keep
  }
  uint64_t expire = 0;
  for (size_t i = 1; i < kValueHeader; i++) {
    expire = expire << 8 | static_cast<unsigned char>(value[i]);
  }
  if (expire == 0) {
    return 0;
  }
  auto* clock = static_cast<zp_expiry_clock_t*>(state);
  int64_t now = clock->now_override.load(std::memory_order_relaxed);
  if (now == 0) {
    now = std::chrono::duration_cast<std::chrono::milliseconds>(
              std::chrono::system_clock::now().time_since_epoch())
              .count();
  }
  return now > 0 && expire <= static_cast<uint64_t>(now) ? 1 : 0;
}

const char* ExpiryFilterName(void* /*state*/) {
  return "zeppelin.ExpiryFilter";
}

void ExpiryFilterDestroy(void* state) {
  delete static_cast<zp_expiry_clock_t*>(state);
}

// LayoutMatches reports whether two option values set through the C API
// read back the same through this file's definition of rocksdb_options_t,
// which must hold before the shim writes to it.
bool LayoutMatches(const rocksdb_options_t* opts,
                   size_t expect_write_buffer_size,
                   size_t expect_db_write_buffer_size) {
  return opts->rep.write_buffer_size == expect_write_buffer_size &&
         opts->rep.db_write_buffer_size == expect_db_write_buffer_size;
}

// UnsyncedFile is a writable file whose syncs do nothing.
class UnsyncedFile : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  explicit UnsyncedFile(std::unique_ptr<rocksdb::FSWritableFile>&& t)
      : rocksdb::FSWritableFileOwnerWrapper(std::move(t)) {}
  rocksdb::IOStatus Sync(const rocksdb::IOOptions&,
                         rocksdb::IODebugContext*) override {
    return rocksdb::IOStatus::OK();
  }
  rocksdb::IOStatus Fsync(const rocksdb::IOOptions&,
                          rocksdb::IODebugContext*) override {
    return rocksdb::IOStatus::OK();
  }
  rocksdb::IOStatus RangeSync(uint64_t, uint64_t, const rocksdb::IOOptions&,
                              rocksdb::IODebugContext*) override {
    return rocksdb::IOStatus::OK();
  }
};

// UnsyncedFileSystem opens writable files as UnsyncedFile; the rest is
// the default file system's.
class UnsyncedFileSystem : public rocksdb::FileSystemWrapper {
 public:
  explicit UnsyncedFileSystem(const std::shared_ptr<rocksdb::FileSystem>& t)
      : rocksdb::FileSystemWrapper(t) {}
  const char* Name() const override { return "zeppelin.UnsyncedFileSystem"; }
  rocksdb::IOStatus NewWritableFile(const std::string& f,
                                    const rocksdb::FileOptions& opts,
                                    std::unique_ptr<rocksdb::FSWritableFile>* r,
                                    rocksdb::IODebugContext* dbg) override {
    std::unique_ptr<rocksdb::FSWritableFile> file;
    rocksdb::IOStatus s = target()->NewWritableFile(f, opts, &file, dbg);
    if (s.ok()) r->reset(new UnsyncedFile(std::move(file)));
    return s;
  }
};

void SetError(char** errptr, const std::string& msg) {
  *errptr = strdup(msg.c_str());
}

int StatusResult(const rocksdb::Status& s, char** errptr) {
  if (s.ok()) return 0;
  SetError(errptr, s.ToString());
  return -1;
}

}  // namespace

extern "C" {

zp_wbm_t* zp_wbm_create(size_t buffer_size) {
  try {
    auto* w = new zp_wbm_t;
    w->rep = std::make_shared<rocksdb::WriteBufferManager>(buffer_size);
    return w;
  } catch (...) {
    return nullptr;
  }
}

void zp_wbm_destroy(zp_wbm_t* wbm) { delete wbm; }

size_t zp_wbm_memory_usage(zp_wbm_t* wbm) { return wbm->rep->memory_usage(); }

size_t zp_wbm_buffer_size(zp_wbm_t* wbm) { return wbm->rep->buffer_size(); }

int zp_options_set_wbm(rocksdb_options_t* opts, zp_wbm_t* wbm,
                       size_t expect_write_buffer_size,
                       size_t expect_db_write_buffer_size) {
  if (!LayoutMatches(opts, expect_write_buffer_size,
                     expect_db_write_buffer_size)) {
    return -1;
  }
  opts->rep.write_buffer_manager = wbm->rep;
  return 0;
}

rocksdb_compactionfilter_t* zp_expiry_filter_create(zp_expiry_clock_t** clock) {
  auto* c = new zp_expiry_clock_t;
  *clock = c;
  return rocksdb_compactionfilter_create(c, ExpiryFilterDestroy, ExpiryFilter,
                                         ExpiryFilterName);
}

void zp_expiry_clock_set(zp_expiry_clock_t* clock, int64_t now_ms) {
  clock->now_override.store(now_ms, std::memory_order_relaxed);
}

void zp_rocksdb_version(char* buf, size_t n) {
  if (n == 0) return;
  std::string v = ROCKSDB_NAMESPACE::GetRocksVersionAsString(true);
  size_t k = v.size() < n - 1 ? v.size() : n - 1;
  std::memcpy(buf, v.data(), k);
  buf[k] = 0;
}

zp_stats_t* zp_stats_create(void) {
  try {
    auto* s = new zp_stats_t;
    s->rep = rocksdb::CreateDBStatistics();
    s->rep->set_stats_level(rocksdb::StatsLevel::kExceptHistogramOrTimers);
    return s;
  } catch (...) {
    return nullptr;
  }
}

void zp_stats_destroy(zp_stats_t* stats) { delete stats; }

void zp_stats_block_cache(zp_stats_t* stats, uint64_t* hits,
                          uint64_t* misses) {
  *hits = stats->rep->getTickerCount(rocksdb::BLOCK_CACHE_HIT);
  *misses = stats->rep->getTickerCount(rocksdb::BLOCK_CACHE_MISS);
}

int zp_options_set_stats(rocksdb_options_t* opts, zp_stats_t* stats,
                         size_t expect_write_buffer_size,
                         size_t expect_db_write_buffer_size) {
  if (!LayoutMatches(opts, expect_write_buffer_size,
                     expect_db_write_buffer_size)) {
    return -1;
  }
  opts->rep.statistics = stats->rep;
  return 0;
}

int zp_malloc_set_mmap_threshold(size_t bytes) {
  return mallopt(M_MMAP_THRESHOLD, static_cast<int>(bytes)) == 1 ? 0 : -1;
}

int zp_malloc_would_mmap(size_t bytes) {
  void* p = malloc(bytes);
  if (p == nullptr) return -1;
  // glibc keeps a chunk's size in the word before it; bit 1 (IS_MMAPPED)
  // marks a chunk mapped on its own.
  int mapped = (reinterpret_cast<size_t*>(p)[-1] & 2) != 0;
  free(p);
  return mapped;
}

void zp_malloc_churn(size_t bytes) {
  // The volatile store keeps the compiler from eliding the pair.
  volatile char* p = static_cast<volatile char*>(malloc(bytes));
  if (p != nullptr) p[0] = 1;
  free(const_cast<char*>(p));
}

int zp_malloc_trim(void) { return malloc_trim(0); }

void* zp_malloc_fragment(size_t count, size_t size) {
  if (count == 0) return nullptr;
  void** chunks = static_cast<void**>(malloc(count * sizeof(void*)));
  if (chunks == nullptr) return nullptr;
  for (size_t i = 0; i < count; i++) {
    chunks[i] = malloc(size);
    if (chunks[i] != nullptr) memset(chunks[i], 1, size);
  }
  void* last = chunks[count - 1];
  for (size_t i = 0; i + 1 < count; i++) free(chunks[i]);
  free(chunks);
  return last;
}

void zp_free(void* p) { free(p); }

int zp_ingest_options_keep_files(rocksdb_ingestexternalfileoptions_t* opts,
                                 unsigned char expect_move_files,
                                 unsigned char expect_allow_global_seqno) {
  if (opts->rep.move_files != (expect_move_files != 0) ||
      opts->rep.allow_global_seqno != (expect_allow_global_seqno != 0)) {
    return -1;
  }
  opts->rep.write_global_seqno = false;
  return 0;
}

zp_sstwriter_t* zp_sstwriter_create(const rocksdb_options_t* opts,
                                    size_t expect_write_buffer_size,
                                    size_t expect_db_write_buffer_size,
                                    char** errptr) {
  if (!LayoutMatches(opts, expect_write_buffer_size,
                     expect_db_write_buffer_size)) {
    SetError(errptr, "rocksdb_options_t layout check failed");
    return nullptr;
  }
  try {
    auto* w = new zp_sstwriter_t;
    w->env = rocksdb::NewCompositeEnv(std::make_shared<UnsyncedFileSystem>(
        rocksdb::FileSystem::Default()));
    rocksdb::Options o = opts->rep;
    o.env = w->env.get();
    w->writer = std::make_unique<rocksdb::SstFileWriter>(
        rocksdb::EnvOptions(), o, /*column_family=*/nullptr,
        /*invalidate_page_cache=*/false);
    return w;
  } catch (const std::exception& e) {
    SetError(errptr, e.what());
    return nullptr;
  }
}

int zp_sstwriter_open(zp_sstwriter_t* w, const char* path, char** errptr) {
  return StatusResult(w->writer->Open(path), errptr);
}

int zp_sstwriter_put(zp_sstwriter_t* w, const char* key, size_t key_len,
                     const char* value, size_t value_len, char** errptr) {
  return StatusResult(w->writer->Put(rocksdb::Slice(key, key_len),
                                     rocksdb::Slice(value, value_len)),
                      errptr);
}

int zp_sstwriter_finish(zp_sstwriter_t* w, char** errptr) {
  return StatusResult(w->writer->Finish(), errptr);
}

void zp_sstwriter_destroy(zp_sstwriter_t* w) {
  // The writer first: it holds a file of env's.
  w->writer.reset();
  delete w;
}

}  // extern "C"
