// C interface to shim.cc: the pieces of RocksDB this package needs that
// RocksDB 7.8's C API (and so grocksdb v1.7.15) does not offer directly.
#ifndef ZEPPELIN_ENGINE_SHIM_H
#define ZEPPELIN_ENGINE_SHIM_H

#include <stddef.h>
#include <stdint.h>

#include "rocksdb/c.h"

#ifdef __cplusplus
extern "C" {
#endif

// ---- Shared write buffer manager (see writebuffer.go) ----

typedef struct zp_wbm_t zp_wbm_t;

// zp_wbm_create returns a WriteBufferManager limiting the memtables of every
// DB it is attached to to buffer_size bytes in total, or NULL on failure.
zp_wbm_t* zp_wbm_create(size_t buffer_size);
void zp_wbm_destroy(zp_wbm_t* wbm);
size_t zp_wbm_memory_usage(zp_wbm_t* wbm);
size_t zp_wbm_buffer_size(zp_wbm_t* wbm);

// zp_options_set_wbm attaches wbm to opts. expect_write_buffer_size and
// expect_db_write_buffer_size must equal the values last set on opts through
// the C API: they let the shim verify that its view of rocksdb_options_t
// matches the library's before writing to it. Returns 0 on success, -1 when
// the layout check fails (nothing is written then).
int zp_options_set_wbm(rocksdb_options_t* opts, zp_wbm_t* wbm,
                       size_t expect_write_buffer_size,
                       size_t expect_db_write_buffer_size);

// ---- Expiry compaction filter (see expiry.go) ----

typedef struct zp_expiry_clock_t zp_expiry_clock_t;

// zp_expiry_filter_create returns a compaction filter that removes data
// values (keys starting with 'd') whose expiry has passed. *clock receives
// a handle to the filter's clock, owned by the filter: it lives until
// rocksdb_compactionfilter_destroy.
rocksdb_compactionfilter_t* zp_expiry_filter_create(zp_expiry_clock_t** clock);

// zp_expiry_clock_set makes the filter use now_ms instead of the wall clock;
// 0 restores the wall clock. For tests.
void zp_expiry_clock_set(zp_expiry_clock_t* clock, int64_t now_ms);

// ---- Version (see version.go) ----

// zp_rocksdb_version writes the linked library's version ("7.8.3") to buf,
// NUL-terminated and cut to n-1 bytes.
void zp_rocksdb_version(char* buf, size_t n);

// ---- Statistics (see stats.go) ----

typedef struct zp_stats_t zp_stats_t;

// zp_stats_create returns a statistics object that counts tickers only
// (StatsLevel kExceptHistogramOrTimers): no histograms and no timers, which
// read the clock several times per operation. NULL on failure.
zp_stats_t* zp_stats_create(void);

// zp_stats_destroy releases this handle; options it was attached to keep
// their own reference.
void zp_stats_destroy(zp_stats_t* stats);

// zp_stats_block_cache reads the block cache hit and miss tickers.
void zp_stats_block_cache(zp_stats_t* stats, uint64_t* hits, uint64_t* misses);

// zp_options_set_stats makes opts count into stats. The same layout check
// as zp_options_set_wbm guards it; returns 0 on success, -1 when the check
// fails (nothing is written then).
int zp_options_set_stats(rocksdb_options_t* opts, zp_stats_t* stats,
                         size_t expect_write_buffer_size,
                         size_t expect_db_write_buffer_size);

// ---- C allocator (see malloc.go) ----

// zp_malloc_set_mmap_threshold makes glibc's malloc map every allocation of
// at least bytes on its own (and unmap it on free), and stops it from
// raising that threshold as it frees mapped chunks. Returns 0 on success.
int zp_malloc_set_mmap_threshold(size_t bytes);

// zp_malloc_would_mmap allocates and frees bytes and reports whether glibc
// mapped them on their own (1), did not (0), or failed (-1). For tests.
int zp_malloc_would_mmap(size_t bytes);

// zp_malloc_churn allocates and frees bytes. For tests: freeing a mapped
// chunk is what raises glibc's dynamic threshold.
void zp_malloc_churn(size_t bytes);

// zp_malloc_trim returns the free memory of every glibc arena to the OS
// (malloc_trim(0)): 1 if any was released, 0 if none.
int zp_malloc_trim(void);

// zp_malloc_fragment allocates count chunks of size bytes, writes to each,
// and frees all but the last, which it returns (free it with free): the
// freed memory is resident and not at the top of its heap, so only a trim
// returns it. For tests.
void* zp_malloc_fragment(size_t count, size_t size);

// zp_free frees p. For tests.
void zp_free(void* p);

// ---- Bulk load ingestion (see sstfile.go) ----

// zp_ingest_options_keep_files sets write_global_seqno to false on opts, so
// that an ingested file is never written to (RocksDB keeps its sequence
// number in the MANIFEST): the file can be hard-linked into the DB and
// still match its checksum. expect_move_files and expect_allow_global_seqno
// must be the values last set through the C API; returns -1 (writing
// nothing) when they do not read back through the shim's definition.
int zp_ingest_options_keep_files(rocksdb_ingestexternalfileoptions_t* opts,
                                 unsigned char expect_move_files,
                                 unsigned char expect_allow_global_seqno);

// ---- Table files for bulk loads (see sstfile.go) ----

typedef struct zp_sstwriter_t zp_sstwriter_t;

// zp_sstwriter_create returns a table file writer with opts' table format
// whose file is never synced and whose pages are not dropped from the page
// cache: a scratch file, read back at once (a bulk load ships it to the
// replicas and deletes it), needs neither, and syncing it made a load write
// every byte to disk once more. The same layout check as
// zp_options_set_wbm guards the read of opts; NULL when it fails or on
// failure (*errptr set, free it).
zp_sstwriter_t* zp_sstwriter_create(const rocksdb_options_t* opts,
                                    size_t expect_write_buffer_size,
                                    size_t expect_db_write_buffer_size,
                                    char** errptr);
// zp_sstwriter_open, _put and _finish are SstFileWriter's Open, Put and
// Finish: 0 on success, -1 with *errptr set (free it).
int zp_sstwriter_open(zp_sstwriter_t* w, const char* path, char** errptr);
int zp_sstwriter_put(zp_sstwriter_t* w, const char* key, size_t key_len,
                     const char* value, size_t value_len, char** errptr);
int zp_sstwriter_finish(zp_sstwriter_t* w, char** errptr);
void zp_sstwriter_destroy(zp_sstwriter_t* w);

#ifdef __cplusplus
}
#endif

#endif
