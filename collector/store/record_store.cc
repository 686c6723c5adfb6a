#include "collector/store/record_store.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "collector/store/record_chunk.h"
#include "meshtel/v1/store.pb.h"
#include "rocksdb/compaction_filter.h"
#include "rocksdb/convenience.h"
#include "rocksdb/db.h"
#include "rocksdb/env.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/options.h"
#include "rocksdb/slice_transform.h"
#include "rocksdb/table.h"
#include "rocksdb/write_batch.h"
#include "spdlog/spdlog.h"

namespace meshtel::collector {
namespace {

// The order of the handles Open() gets back.
enum FamilyIndex : size_t {
  kDefault,
  kLogs,
  kSpans,
  kCursors,
  kDeadLetter,
  kMeta,
  kTraceIndex,
  kFamilyCount
};
constexpr const char* kFamilyNames[kFamilyCount] = {"default",     "logs", "spans",      "cursors",
                                                    "dead_letter", "meta", "trace_index"};
constexpr size_t kTraceIdSize = 16;
constexpr size_t kSpanIdSize = 8;
// trace_index keys: format 4 keys one entry per run of a trace's spans stored one after the
// other (trace id + the first span's key; the value holds the run's span ids, 8 bytes each, in
// key order); formats up to 3 keyed one empty entry per span (trace id + span id + its key).
constexpr size_t kTraceRunKeySize = kTraceIdSize + StoreKey::kEncodedSize;
constexpr size_t kTraceIndexKeySize = kTraceIdSize + kSpanIdSize + StoreKey::kEncodedSize;

// Calls `span(key, span_id)` for each span a trace_index entry lists; false for an entry of
// neither form.
template <typename SpanFn>
bool ForEachIndexedSpan(const rocksdb::Slice& key, const rocksdb::Slice& value, SpanFn&& span) {
  if (key.size() == kTraceRunKeySize) {
    std::optional<StoreKey> first =
        StoreKey::Decode(std::string_view(key.data() + kTraceIdSize, StoreKey::kEncodedSize));
    if (!first || value.size() % kSpanIdSize != 0) return false;
    for (size_t i = 0; i < value.size() / kSpanIdSize; ++i) {
      span(StoreKey{first->time_unix_nano, first->sequence + i},
           std::string_view(value.data() + i * kSpanIdSize, kSpanIdSize));
    }
    return true;
  }
  if (key.size() == kTraceIndexKeySize) {
    std::optional<StoreKey> stored = StoreKey::Decode(
        std::string_view(key.data() + kTraceIdSize + kSpanIdSize, StoreKey::kEncodedSize));
    if (!stored) return false;
    span(*stored, std::string_view(key.data() + kTraceIdSize, kSpanIdSize));
    return true;
  }
  return false;
}
constexpr const char* kFormatVersionKey = "format_version";
constexpr const char* kEpochKey = "epoch";
constexpr const char* kInstancePrefix = "instance/";
constexpr const char* kReadHighPrefix = "read_high/";
constexpr std::string_view kRejectedPrefix = "rejected/";
constexpr int kCounterBits = 40;

// Memory and disk bounds scale with the store's byte limit, so that a small store's write-ahead
// log and memtables cannot by themselves exceed it.
uint64_t Clamp(uint64_t value, uint64_t low, uint64_t high) {
  return std::min(std::max(value, low), high);
}

// RocksDB's own messages go to the collector's log (spdlog), not to a LOG file in the data
// directory. On a full filesystem RocksDB's file logger fails, and any later message through it
// aborts the process (an assertion in RocksDB's file writer, enabled in Debian's build): a
// collector whose disk is full must keep running, or refuse to start, and say why.
class SpdlogLogger : public rocksdb::Logger {
 public:
  explicit SpdlogLogger(rocksdb::InfoLogLevel level) : rocksdb::Logger(level) {}

  void Logv(const char* format, va_list ap) override {
    Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap);
  }
  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override {
    if (level < GetInfoLogLevel() || level >= rocksdb::InfoLogLevel::HEADER_LEVEL) return;
    char buffer[1024];
    va_list copy;
    va_copy(copy, ap);
    const int length = std::vsnprintf(buffer, sizeof(buffer), format, copy);
    va_end(copy);
    if (length < 0) return;
    std::string text;
    if (static_cast<size_t>(length) < sizeof(buffer)) {
      text.assign(buffer, static_cast<size_t>(length));
    } else {
      text.resize(static_cast<size_t>(length) + 1);
      std::vsnprintf(text.data(), text.size(), format, ap);
      text.resize(static_cast<size_t>(length));
    }
    spdlog::log(level == rocksdb::InfoLogLevel::DEBUG_LEVEL   ? spdlog::level::debug
                : level == rocksdb::InfoLogLevel::INFO_LEVEL  ? spdlog::level::info
                : level == rocksdb::InfoLogLevel::WARN_LEVEL  ? spdlog::level::warn
                : level == rocksdb::InfoLogLevel::ERROR_LEVEL ? spdlog::level::err
                                                              : spdlog::level::critical,
                "rocksdb: {}", text);
  }
};

rocksdb::DBOptions DatabaseOptions(uint64_t max_bytes) {
  rocksdb::DBOptions options;
  options.create_if_missing = true;
  options.create_missing_column_families = true;
  options.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;
  options.info_log = std::make_shared<SpdlogLogger>(options.info_log_level);
  // Replay the WAL up to the last consistent write after a crash; never refuse to start over a
  // torn tail record.
  options.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  // Memory must not grow with the size of the backlog: bounded open files (each open table
  // holds its index and filter blocks), bounded WAL before memtables are flushed.
  options.max_open_files = 256;
  options.max_total_wal_size = Clamp(max_bytes / 16, 4ull << 20, 256ull << 20);
  // A write group's WAL write (and sync) overlaps the previous group's memtable inserts: with
  // `durability: fsync` the appends of many streams then wait less behind one another. A write
  // still returns only after both.
  options.enable_pipelined_write = true;
  // Table files (flushes, compactions) go to the disk as they are written, 1 MiB at a time,
  // instead of all at once when the file is closed: a burst of table data otherwise lands in
  // the same journal commit as a WAL sync and makes that sync, and every write waiting on it,
  // slower.
  options.bytes_per_sync = 1 << 20;
  // One write group (one WAL write and, with fsync, one sync) may take up to 16 MiB of waiting
  // writes instead of RocksDB's 1 MiB: with many streams a sync then covers every batch queued
  // behind the one before, and the disk sees fewer, larger syncs.
  options.max_write_batch_group_size_bytes = 16 << 20;
  return options;
}

// Room RocksDB needs beside the records it keeps: the write-ahead log, full memtables being
// flushed, and compaction outputs that exist before their inputs are deleted.
uint64_t WorkingReserve(uint64_t max_bytes) {
  const uint64_t wal = Clamp(max_bytes / 16, 4ull << 20, 256ull << 20);
  const uint64_t memtables = 3 * Clamp(max_bytes / 64, 1ull << 20, 32ull << 20);
  // Two compactions at a time (RocksDB's background jobs), each writing at most
  // max_compaction_bytes (2 table files) before its inputs go, plus room for the next flushes.
  const uint64_t compaction = 6 * Clamp(max_bytes / 32, 2ull << 20, 64ull << 20);
  return std::min(wal + 2 * memtables + compaction, max_bytes / 2);
}

std::vector<rocksdb::ColumnFamilyDescriptor> FamilyDescriptors(
    uint64_t max_bytes, const rocksdb::CompactionFilter* trace_index_filter) {
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  for (const char* name : kFamilyNames) {
    rocksdb::ColumnFamilyOptions options;
    if (std::string_view(name) == kFamilyNames[kTraceIndex]) {
      options.compaction_filter = trace_index_filter;
      // Every read of the family is by trace id (ReadTrace, HasSpan: after a restart, for each
      // record read again): its table files have a Bloom filter of trace ids, so a lookup reads
      // only the files that may hold the trace.
      options.prefix_extractor.reset(rocksdb::NewFixedPrefixTransform(kTraceIdSize));
      rocksdb::BlockBasedTableOptions table;
      table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
      table.whole_key_filtering = false;
      options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
    }
    // The record families' table files are LZ4-compressed: about the size Snappy gives, for less
    // of the CPU that flushing every stored byte and reading it back for delivery take. The logs
    // family's chunks are LZ4-compressed already (record_chunk.h); compressing their table files
    // again cost no measurable ingest throughput, and without it the trace pipeline's reads were
    // slower in the benchmarks (docs/benchmarks.md, fifth session).
    if (std::string_view(name) == kFamilyNames[kLogs] ||
        std::string_view(name) == kFamilyNames[kSpans]) {
      options.compression = rocksdb::kLZ4Compression;
    }
    options.write_buffer_size = Clamp(max_bytes / 64, 1ull << 20, 32ull << 20);
    options.max_write_buffer_number = 3;
    options.target_file_size_base = Clamp(max_bytes / 32, 2ull << 20, 64ull << 20);
    // A compaction's output exists beside its inputs until it finishes: keep each one small.
    options.max_compaction_bytes = 2 * options.target_file_size_base;
    families.emplace_back(name, options);
  }
  return families;
}

std::string EncodeProgress(const InstanceProgress& progress) {
  return absl::StrCat(progress.highest_sequence, " ", progress.dropped_records_total);
}

bool ParseUnsigned(std::string_view text, uint64_t& value) {
  return !text.empty() && std::from_chars(text.data(), text.data() + text.size(), value).ptr ==
                              text.data() + text.size();
}

bool DecodeProgress(std::string_view text, InstanceProgress& progress) {
  const size_t space = text.find(' ');
  return space != std::string_view::npos &&
         ParseUnsigned(text.substr(0, space), progress.highest_sequence) &&
         ParseUnsigned(text.substr(space + 1), progress.dropped_records_total);
}

// A write failed because the filesystem is full (ENOSPC), however RocksDB passed it on.
bool IsNoSpace(const rocksdb::Status& status) {
  return status.IsNoSpace() ||
         status.ToString().find("No space left on device") != std::string::npos;
}

uint64_t NowUnixNano() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

// Puts `records` (keys first, first + 1, ...) into `write` as chunks in `family` (record_chunk.h):
// each chunk closed at kRecordChunkMaxRecords records or kRecordChunkMaxBytes bytes, compressed by
// `writer`.
void PutChunks(rocksdb::WriteBatch& write, rocksdb::ColumnFamilyHandle* family,
               const StoreKey& first, std::span<const std::string_view> records,
               RecordChunkWriter& writer) {
  const size_t count = records.size();
  char key[StoreKey::kEncodedSize];
  for (size_t begin = 0; begin < count;) {
    size_t end = begin + 1;
    size_t chunk_bytes = records[begin].size();
    while (end < count && end - begin < kRecordChunkMaxRecords &&
           chunk_bytes + records[end].size() <= kRecordChunkMaxBytes) {
      chunk_bytes += records[end].size();
      ++end;
    }
    const std::string_view value = writer.Encode(records.subspan(begin, end - begin));
    StoreKey{first.time_unix_nano, first.sequence + begin}.EncodeTo(key);
    write.Put(family, rocksdb::Slice(key, sizeof(key)), rocksdb::Slice(value.data(), value.size()));
    begin = end;
  }
}

// An iterator over the values of a record family that can hold records with after < key < limit:
// it starts at the value holding `after` (a chunk's later records come after it), or at the first
// value when none does, and never passes `limit`. Holds the bound it reads with: not movable.
class ValuesBetween {
 public:
  ValuesBetween(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* family, const StoreKey& after,
                const StoreKey& limit)
      : upper_(limit.Encode()), upper_slice_(upper_) {
    rocksdb::ReadOptions options;
    options.iterate_upper_bound = &upper_slice_;
    it_.reset(db.NewIterator(options, family));
    const std::string start = after.Encode();
    it_->SeekForPrev(start);
    if (!it_->Valid() && it_->status().ok()) it_->Seek(start);
  }
  ValuesBetween(const ValuesBetween&) = delete;
  ValuesBetween& operator=(const ValuesBetween&) = delete;

  rocksdb::Iterator* operator->() const { return it_.get(); }

 private:
  const std::string upper_;
  const rocksdb::Slice upper_slice_;
  std::unique_ptr<rocksdb::Iterator> it_;
};

}  // namespace

// Drops trace_index entries whose span retention has deleted: those stored before the oldest
// span still kept. Called by RocksDB's compaction threads.
class RecordStore::TraceIndexFilter : public rocksdb::CompactionFilter {
 public:
  bool Filter(int /*level*/, const rocksdb::Slice& key, const rocksdb::Slice& value,
              std::string* /*new_value*/, bool* /*value_changed*/) const override {
    // The spans of an entry share one storage time (one write's keys).
    bool deleted = false;
    const bool readable = ForEachIndexedSpan(key, value, [&](const StoreKey& span_key, auto) {
      deleted = span_key.time_unix_nano < oldest_span_time_.load(std::memory_order_relaxed);
    });
    return !readable || deleted;
  }
  const char* Name() const override { return "meshtel.TraceIndexFilter"; }
  void set_oldest_span_time(uint64_t time) {
    oldest_span_time_.store(time, std::memory_order_relaxed);
  }

 private:
  std::atomic<uint64_t> oldest_span_time_{0};
};

std::string_view RecordFamilyName(RecordFamily family) {
  return family == RecordFamily::kLogs ? "logs" : "spans";
}

RecordStore::RecordStore(const StoreConfig& config,
                         std::unique_ptr<TraceIndexFilter> trace_index_filter,
                         std::unique_ptr<rocksdb::DB> db,
                         std::vector<rocksdb::ColumnFamilyHandle*> handles,
                         prometheus::Registry& registry)
    : data_dir_(config.data_dir),
      sync_writes_(config.durability == "fsync"),
      max_bytes_(config.max_bytes),
      retainable_bytes_(config.max_bytes - WorkingReserve(config.max_bytes)),
      trace_index_filter_(std::move(trace_index_filter)),
      db_(std::move(db)),
      handles_(std::move(handles)),
      wal_sync_([this]() -> absl::Status {
        const rocksdb::Status synced = db_->SyncWAL();
        if (synced.ok()) return absl::OkStatus();
        return absl::UnavailableError(absl::StrCat("WAL sync failed: ", synced.ToString()));
      }),
      records_written_(prometheus::BuildCounter()
                           .Name("meshtel_store_records_written_total")
                           .Help("Records written to the store (acknowledged to proxies).")
                           .Register(registry)
                           .Add({})),
      bytes_written_(prometheus::BuildCounter()
                         .Name("meshtel_store_bytes_written_total")
                         .Help("Bytes of record values written to the store.")
                         .Register(registry)
                         .Add({})),
      write_errors_(prometheus::BuildCounter()
                        .Name("meshtel_store_write_errors_total")
                        .Help("Batches the store could not write (not acknowledged; resent).")
                        .Register(registry)
                        .Add({})),
      full_refusals_(prometheus::BuildCounter()
                         .Name("meshtel_store_full_refusals_total")
                         .Help("Batches refused because the store was full (store.max_bytes less "
                               "RocksDB's working room) "
                               "(not acknowledged; the proxies resend).")
                         .Register(registry)
                         .Add({})),
      corrupt_counter_(prometheus::BuildCounter()
                           .Name("meshtel_store_corrupt_records_total")
                           .Help("Stored records that no longer decoded; moved to dead_letter.")
                           .Register(registry)
                           .Add({})) {}

absl::StatusOr<std::unique_ptr<RecordStore>> RecordStore::Open(const StoreConfig& config,
                                                               prometheus::Registry& registry) {
  std::error_code fs_error;
  std::filesystem::create_directories(config.data_dir, fs_error);
  if (fs_error) {
    return absl::FailedPreconditionError(absl::StrCat("store.data_dir: cannot create '",
                                                      config.data_dir, "': ", fs_error.message()));
  }
  enum class Why { kDamaged, kLocked, kNoSpace };
  const auto cannot_open = [&config](std::string_view what, Why why) {
    std::string advice;
    switch (why) {
      case Why::kLocked:
        advice =
            "If another collector uses this directory, stop it or choose another store.data_dir.";
        break;
      case Why::kNoSpace:
        advice =
            "Its filesystem is full: free space there (or give the store a larger filesystem) "
            "and start again; the store itself needs no repair.";
        break;
      case Why::kDamaged:
        advice = absl::StrCat("If the database is damaged, `meshtelctl store repair --data-dir ",
                              config.data_dir,
                              "` rebuilds it from its files (records in damaged files may be "
                              "lost); back the directory up first.");
        break;
    }
    return absl::FailedPreconditionError(absl::StrCat("cannot open the store in '", config.data_dir,
                                                      "': ", std::string(what),
                                                      ". Nothing was changed. ", advice));
  };
  // Without CURRENT, RocksDB would start a new, empty database beside the old files (and later
  // delete them as obsolete): a directory with database files but no CURRENT is damaged.
  if (!std::filesystem::exists(std::filesystem::path(config.data_dir) / "CURRENT")) {
    for (const auto& entry : std::filesystem::directory_iterator(config.data_dir, fs_error)) {
      const std::string name = entry.path().filename().string();
      if (name.starts_with("MANIFEST-") || name.ends_with(".sst") || name.ends_with(".log")) {
        return cannot_open(absl::StrCat("it holds database files (", name, ") but no CURRENT file"),
                           Why::kDamaged);
      }
    }
  }
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw_db = nullptr;
  auto trace_index_filter = std::make_unique<TraceIndexFilter>();
  rocksdb::Status status = rocksdb::DB::Open(
      DatabaseOptions(config.max_bytes), config.data_dir,
      FamilyDescriptors(config.max_bytes, trace_index_filter.get()), &handles, &raw_db);
  if (!status.ok()) {
    const std::string what = status.ToString();
    return cannot_open(what, IsNoSpace(status)                        ? Why::kNoSpace
                             : what.find("lock") != std::string::npos ? Why::kLocked
                                                                      : Why::kDamaged);
  }
  std::unique_ptr<RecordStore> store(new RecordStore(config, std::move(trace_index_filter),
                                                     std::unique_ptr<rocksdb::DB>(raw_db),
                                                     std::move(handles), registry));
  if (absl::Status stamped = store->StampFormatAndEpoch(); !stamped.ok()) return stamped;
  store->UpdateTraceIndexHorizon();
  store->RefreshDiskBytes();
  spdlog::info("store opened in {} (durability {}, epoch {})", config.data_dir, config.durability,
               store->epoch_);
  return store;
}

absl::Status RecordStore::StampFormatAndEpoch() {
  rocksdb::WriteOptions synced;
  synced.sync = true;
  std::string value;
  rocksdb::Status status =
      db_->Get(rocksdb::ReadOptions(), handles_[kMeta], kFormatVersionKey, &value);
  if (status.IsNotFound()) {
    status = db_->Put(synced, handles_[kMeta], kFormatVersionKey, std::to_string(kFormatVersion));
    if (!status.ok()) {
      return absl::UnavailableError(
          absl::StrCat("store: cannot write format version: ", status.ToString()));
    }
  } else if (!status.ok()) {
    return absl::DataLossError(
        absl::StrCat("store: cannot read format version: ", status.ToString()));
  } else {
    int stored_version = 0;
    if (!absl::SimpleAtoi(value, &stored_version) || stored_version < kOldestReadableFormat ||
        stored_version > kFormatVersion) {
      return absl::FailedPreconditionError(
          absl::StrCat("store in '", data_dir_, "' has format version '", value,
                       "'; this build reads ", kOldestReadableFormat, " to ", kFormatVersion));
    }
    if (stored_version != kFormatVersion) {
      // Format 1 held one record per value, format 2 plain chunks, formats up to 3 one
      // trace_index entry per span, formats up to 4 one span per value; this build reads those
      // and writes compressed chunks of records and spans and index entries per run beside them.
      // The version moves up so that an older build refuses the store instead of reading what it
      // does not know as damaged records or missing spans.
      status = db_->Put(synced, handles_[kMeta], kFormatVersionKey, std::to_string(kFormatVersion));
      if (!status.ok()) {
        return absl::UnavailableError(
            absl::StrCat("store: cannot write format version: ", status.ToString()));
      }
      spdlog::info("store in {}: format version {} upgraded to {}", data_dir_, stored_version,
                   kFormatVersion);
    }
  }
  // Each open starts a new epoch: sequences stay unique without scanning what is stored.
  status = db_->Get(rocksdb::ReadOptions(), handles_[kMeta], kEpochKey, &value);
  uint64_t epoch = 0;
  if (status.ok() && !absl::SimpleAtoi(value, &epoch)) {
    return absl::DataLossError(absl::StrCat("store: meta epoch '", value, "' is not a number"));
  }
  if (!status.ok() && !status.IsNotFound()) {
    return absl::DataLossError(absl::StrCat("store: cannot read the epoch: ", status.ToString()));
  }
  epoch_ = epoch + 1;
  if (epoch_ >= (uint64_t{1} << (64 - kCounterBits))) {
    return absl::FailedPreconditionError("store: epoch space exhausted");
  }
  status = db_->Put(synced, handles_[kMeta], kEpochKey, std::to_string(epoch_));
  if (!status.ok()) {
    return absl::UnavailableError(
        absl::StrCat("store: cannot write the epoch: ", status.ToString()));
  }
  next_counter_ = 1;
  // Key times never go back, not even across a restart with the clock set back: start at the
  // newest stored key.
  last_time_ = NowUnixNano();
  for (size_t family : {kLogs, kSpans}) {
    std::unique_ptr<rocksdb::Iterator> it(
        db_->NewIterator(rocksdb::ReadOptions(), handles_[family]));
    it->SeekToLast();
    // Keys of another size (damage) sort anywhere; step back over them.
    while (it->Valid() && it->key().size() != StoreKey::kEncodedSize) it->Prev();
    if (it->Valid()) {
      const std::optional<StoreKey> newest =
          StoreKey::Decode(std::string_view(it->key().data(), it->key().size()));
      if (newest) last_time_ = std::max(last_time_, newest->time_unix_nano);
    }
  }
  return absl::OkStatus();
}

absl::Status RecordStore::Repair(const std::string& data_dir) {
  if (!std::filesystem::exists(std::filesystem::path(data_dir) / "CURRENT") &&
      !std::filesystem::exists(data_dir)) {
    return absl::NotFoundError(absl::StrCat("no store in '", data_dir, "'"));
  }
  rocksdb::Status status =
      rocksdb::RepairDB(data_dir, DatabaseOptions(StoreConfig().max_bytes),
                        FamilyDescriptors(StoreConfig().max_bytes, /*trace_index_filter=*/nullptr));
  if (!status.ok()) {
    return absl::DataLossError(
        absl::StrCat("repair of '", data_dir, "' failed: ", status.ToString()));
  }
  return absl::OkStatus();
}

StoreKey RecordStore::AllocateKeys(size_t count) {
  std::lock_guard<std::mutex> lock(keys_mutex_);
  last_time_ = std::max(last_time_, NowUnixNano());
  const StoreKey first{last_time_, (epoch_ << kCounterBits) | next_counter_};
  next_counter_ += count;
  in_flight_.insert(first);
  return first;
}

void RecordStore::Finished(const StoreKey& first) {
  std::lock_guard<std::mutex> lock(keys_mutex_);
  in_flight_.erase(in_flight_.find(first));
}

StoreKey RecordStore::VisibleLimit() const {
  std::lock_guard<std::mutex> lock(keys_mutex_);
  if (!in_flight_.empty()) return *in_flight_.begin();
  return StoreKey{last_time_, (epoch_ << kCounterBits) | next_counter_};
}

rocksdb::ColumnFamilyHandle* RecordStore::FamilyHandle(RecordFamily family) const {
  return handles_[family == RecordFamily::kLogs ? kLogs : kSpans];
}

absl::Status RecordStore::CheckRoom() {
  // The last line of defence for the disk: near the byte limit the store refuses new batches
  // (the proxies keep them and resend) until retention has made room.
  if (disk_bytes_.load(std::memory_order_relaxed) > retainable_bytes_) {
    full_refusals_.Increment();
    return absl::UnavailableError(
        absl::StrCat("store: the data directory is at its limit (store.max_bytes ", max_bytes_,
                     "); retention is making room"));
  }
  return absl::OkStatus();
}

absl::Status RecordStore::Commit(rocksdb::WriteBatch& write, const StoreKey& first) {
  // Written to the OS; with `fsync` then made durable by a group sync that runs beside the other
  // writers' writes (wal_group_sync.h), before the keys become visible.
  const rocksdb::Status written = db_->Write(rocksdb::WriteOptions(), &write);
  absl::Status status =
      written.ok()
          ? absl::OkStatus()
          : absl::UnavailableError(absl::StrCat("store: write failed: ", written.ToString()));
  if (status.ok() && sync_writes_) status = wal_sync_.WaitDurable();
  Finished(first);
  if (!status.ok()) {
    write_errors_.Increment();
    // A failed write (disk full, I/O error) may leave RocksDB read-only until it is resumed;
    // the next batch tries again.
    if (!db_->Resume().ok()) spdlog::debug("store: resume after a write error failed");
    return status;
  }
  return absl::OkStatus();
}

absl::Status RecordStore::AppendBatch(const meshtel::v1::RecordBatch& batch,
                                      const InstanceProgress& progress) {
  return AppendMessagesToLogs(batch.records(), &batch.proxy_instance_id(), progress);
}

absl::Status RecordStore::AppendRecords(
    const google::protobuf::RepeatedPtrField<meshtel::v1::RequestRecord>& records) {
  return AppendMessagesToLogs(records, nullptr, InstanceProgress{});
}

absl::Status RecordStore::AppendEncodedBatch(std::string_view instance_id,
                                             std::span<const std::string_view> records,
                                             const InstanceProgress& progress) {
  return AppendToLogs(records, &instance_id, progress);
}

absl::Status RecordStore::AppendEncodedRecords(std::span<const std::string_view> records) {
  return AppendToLogs(records, nullptr, InstanceProgress{});
}

absl::Status RecordStore::AppendMessagesToLogs(
    const google::protobuf::RepeatedPtrField<meshtel::v1::RequestRecord>& records,
    const std::string* instance_id, const InstanceProgress& progress) {
  // All records serialized into one buffer, then written as views into it: no string per
  // record. The buffer is kept per thread for the next append unless it grew past 4 MiB.
  thread_local std::string serialized;
  thread_local std::vector<size_t> ends;
  serialized.clear();
  ends.clear();
  for (const meshtel::v1::RequestRecord& record : records) {
    record.AppendToString(&serialized);
    ends.push_back(serialized.size());
  }
  std::vector<std::string_view> views;
  views.reserve(ends.size());
  size_t begin = 0;
  for (size_t end : ends) {
    views.emplace_back(serialized.data() + begin, end - begin);
    begin = end;
  }
  const std::string_view id = instance_id == nullptr ? std::string_view() : *instance_id;
  absl::Status appended = AppendToLogs(views, instance_id == nullptr ? nullptr : &id, progress);
  if (serialized.capacity() > (4u << 20)) std::string().swap(serialized);
  return appended;
}

absl::Status RecordStore::AppendToLogs(std::span<const std::string_view> records,
                                       const std::string_view* instance_id,
                                       const InstanceProgress& progress) {
  if (db_ == nullptr) return absl::UnavailableError("store: closed");
  if (absl::Status room = CheckRoom(); !room.ok()) return room;
  const size_t count = records.size();
  uint64_t bytes = 0;
  for (std::string_view record : records) bytes += record.size();
  // The records go in chunks (record_chunk.h), each compressed by a per-thread writer and then
  // copied into the WriteBatch. The batch is reserved for chunks a quarter of the records' size
  // (they are usually far smaller), plus per chunk its key and framing.
  thread_local RecordChunkWriter chunk_writer;
  const size_t chunks_at_most = count / kRecordChunkMaxRecords + bytes / kRecordChunkMaxBytes + 1;
  const size_t progress_room =
      instance_id == nullptr ? 0
                             : 64 + std::string_view(kInstancePrefix).size() + instance_id->size();
  rocksdb::WriteBatch write(12 + chunks_at_most * (32 + StoreKey::kEncodedSize) + bytes / 4 +
                            progress_room);
  const StoreKey first = AllocateKeys(count);
  PutChunks(write, handles_[kLogs], first, records, chunk_writer);
  if (instance_id != nullptr) {
    write.Put(
        handles_[kMeta],
        absl::StrCat(kInstancePrefix, absl::string_view(instance_id->data(), instance_id->size())),
        EncodeProgress(progress));
  }
  if (absl::Status written = Commit(write, first); !written.ok()) return written;
  bytes_appended_.fetch_add(bytes, std::memory_order_relaxed);
  records_written_.Increment(static_cast<double>(count));
  bytes_written_.Increment(static_cast<double>(bytes));
  return absl::OkStatus();
}

absl::Status RecordStore::AppendSpans(std::span<const meshtel::v1::Span> spans,
                                      std::string_view reader, const StoreKey& cursor,
                                      const StoreKey& read_high) {
  SerializedSpans serialized;
  for (const meshtel::v1::Span& span : spans) serialized.Add(span);
  return AppendSpans(serialized, reader, cursor, read_high);
}

absl::Status RecordStore::AppendSpans(const SerializedSpans& spans, std::string_view reader,
                                      const StoreKey& cursor, const StoreKey& read_high) {
  if (db_ == nullptr) return absl::UnavailableError("store: closed");
  if (absl::Status room = CheckRoom(); !room.ok()) return room;
  const size_t count = spans.size();
  // The spans go in compressed chunks like the logs family's records (record_chunk.h): the spans
  // of kept traces share most of their bytes (tag keys, services, resource), so the WAL, the
  // memtable and the flushes see a fraction of them, and a chunk is one memtable entry. Reserved:
  // the chunks at a quarter of the spans' size, plus per span its share of a trace_index entry.
  thread_local RecordChunkWriter chunk_writer;
  thread_local std::vector<std::string_view> views;
  views.clear();
  views.reserve(count);
  for (size_t i = 0; i < count; ++i) views.push_back(spans.bytes(i));
  const size_t chunks_at_most =
      count / kRecordChunkMaxRecords + spans.total_bytes() / kRecordChunkMaxBytes + 1;
  rocksdb::WriteBatch write(/*reserved_bytes=*/12 + spans.total_bytes() / 4 +
                            chunks_at_most * (32 + StoreKey::kEncodedSize) +
                            count * (kSpanIdSize + 4) + 256);
  const StoreKey first = AllocateKeys(count);
  PutChunks(write, handles_[kSpans], first, views, chunk_writer);
  char run_key[kTraceRunKeySize];
  std::string run_span_ids;
  for (size_t i = 0; i < count; ++i) {
    // One trace_index entry per run of spans of one trace (a kept trace's spans come together).
    const std::string_view trace_id = spans.trace_id(i);
    if (trace_id.size() != kTraceIdSize) continue;
    if (run_span_ids.empty()) {
      std::memcpy(run_key, trace_id.data(), kTraceIdSize);
      StoreKey{first.time_unix_nano, first.sequence + i}.EncodeTo(run_key + kTraceIdSize);
    }
    run_span_ids.append(spans.span_id(i));
    const bool run_ends = i + 1 == count || spans.trace_id(i + 1) != trace_id;
    if (run_ends) {
      write.Put(handles_[kTraceIndex], rocksdb::Slice(run_key, sizeof(run_key)), run_span_ids);
      run_span_ids.clear();
    }
  }
  write.Put(handles_[kCursors], std::string(reader), cursor.Encode());
  write.Put(handles_[kMeta], kReadHighPrefix + std::string(reader), read_high.Encode());
  if (absl::Status written = Commit(write, first); !written.ok()) return written;
  bytes_appended_.fetch_add(spans.total_bytes(), std::memory_order_relaxed);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<StoredRecord>> RecordStore::ReadTrace(std::string_view trace_id) const {
  if (db_ == nullptr) return absl::UnavailableError("store: closed");
  std::vector<StoredRecord> spans;
  if (trace_id.size() != kTraceIdSize) return spans;
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions(), handles_[kTraceIndex]));
  const rocksdb::Slice prefix(trace_id.data(), trace_id.size());
  std::vector<StoreKey> keys;
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    ForEachIndexedSpan(it->key(), it->value(),
                       [&](const StoreKey& key, std::string_view) { keys.push_back(key); });
  }
  if (!it->status().ok()) {
    return absl::UnavailableError(
        absl::StrCat("store: trace lookup failed: ", it->status().ToString()));
  }
  std::sort(keys.begin(), keys.end());
  // Each span is in the value at the greatest key at or before its own: a chunk (store format 5)
  // whose spans have its key's time and the sequences from its key's on, or (formats up to 4) a
  // value of its own. Spans of one chunk are read from one decompression.
  std::unique_ptr<rocksdb::Iterator> values(
      db_->NewIterator(rocksdb::ReadOptions(), handles_[kSpans]));
  RecordChunkReader chunk;
  std::optional<StoreKey> chunk_first;  // the key of the value `chunk` holds
  const auto chunk_holds = [&](const StoreKey& key) {
    return chunk_first && chunk_first->time_unix_nano == key.time_unix_nano &&
           key.sequence >= chunk_first->sequence &&
           key.sequence - chunk_first->sequence < chunk.size();
  };
  for (const StoreKey& key : keys) {
    if (!chunk_holds(key)) {
      chunk_first.reset();
      values->SeekForPrev(key.Encode());
      if (!values->Valid()) {
        if (!values->status().ok()) {
          return absl::UnavailableError(
              absl::StrCat("store: trace lookup failed: ", values->status().ToString()));
        }
        continue;  // deleted by retention; its index entry goes later
      }
      chunk_first = StoreKey::Decode(std::string_view(values->key().data(), values->key().size()));
      // A damaged value is set aside when a reader of the family meets it.
      if (!chunk_first ||
          !chunk.Reset(std::string_view(values->value().data(), values->value().size()))) {
        chunk_first.reset();
        continue;
      }
      if (!chunk_holds(key)) continue;  // deleted by retention
    }
    const std::string_view bytes = chunk.record(key.sequence - chunk_first->sequence);
    StoredRecord stored;
    stored.key = key;
    stored.family = RecordFamily::kSpans;
    if (!stored.span.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) continue;
    spans.push_back(std::move(stored));
  }
  return spans;
}

absl::StatusOr<bool> RecordStore::HasSpan(std::string_view trace_id,
                                          std::string_view span_id) const {
  if (db_ == nullptr) return absl::UnavailableError("store: closed");
  if (trace_id.size() != kTraceIdSize || span_id.size() != kSpanIdSize) return false;
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions(), handles_[kTraceIndex]));
  const rocksdb::Slice prefix(trace_id.data(), trace_id.size());
  bool found = false;
  for (it->Seek(prefix); !found && it->Valid() && it->key().starts_with(prefix); it->Next()) {
    ForEachIndexedSpan(it->key(), it->value(), [&](const StoreKey&, std::string_view indexed) {
      found = found || indexed == span_id;
    });
  }
  if (!it->status().ok()) {
    return absl::UnavailableError(
        absl::StrCat("store: span lookup failed: ", it->status().ToString()));
  }
  return found;
}

absl::StatusOr<StoreKey> RecordStore::LoadReadHigh(std::string_view reader) const {
  return LoadKey(handles_[kMeta], kReadHighPrefix + std::string(reader),
                 absl::StrCat("the progress of '", std::string(reader), "'"));
}

absl::StatusOr<StoreKey> RecordStore::LoadKey(rocksdb::ColumnFamilyHandle* family,
                                              const std::string& key,
                                              const std::string& what) const {
  if (db_ == nullptr) return absl::UnavailableError("store: closed");
  std::string value;
  rocksdb::Status status = db_->Get(rocksdb::ReadOptions(), family, key, &value);
  if (status.IsNotFound()) return StoreKey{};
  if (!status.ok()) {
    return absl::UnavailableError(
        absl::StrCat("store: cannot read ", what, ": ", status.ToString()));
  }
  std::optional<StoreKey> decoded = StoreKey::Decode(value);
  if (!decoded) return absl::DataLossError(absl::StrCat("store: ", what, " is damaged"));
  return *decoded;
}

absl::StatusOr<InstanceProgress> RecordStore::LoadInstanceProgress(
    std::string_view instance_id) const {
  if (db_ == nullptr) return absl::UnavailableError("store: closed");
  std::string value;
  const std::string key = kInstancePrefix + std::string(instance_id);
  rocksdb::Status status = db_->Get(rocksdb::ReadOptions(), handles_[kMeta], key, &value);
  InstanceProgress progress;
  if (status.IsNotFound()) return progress;
  if (!status.ok()) {
    return absl::UnavailableError(
        absl::StrCat("store: cannot read the progress of '", key, "': ", status.ToString()));
  }
  if (!DecodeProgress(value, progress)) {
    // Damaged bookkeeping must not stop ingest: start over for this instance (its resent batches
    // may then be stored twice, which is logged).
    spdlog::error("store: progress of proxy instance '{}' is unreadable ('{}'); starting over",
                  instance_id, value);
    return InstanceProgress{};
  }
  return progress;
}

absl::StatusOr<std::vector<StoredRecord>> RecordStore::Read(RecordFamily family,
                                                            const StoreKey& after,
                                                            const StoreKey& before,
                                                            size_t max_records) {
  std::vector<StoredRecord> records;
  records.reserve(std::min<size_t>(max_records, 4096));
  absl::StatusOr<size_t> read = ReadInto(family, after, before, max_records, records);
  if (!read.ok()) return read.status();
  records.resize(*read);
  return records;
}

absl::StatusOr<size_t> RecordStore::ReadInto(RecordFamily family, const StoreKey& after,
                                             const StoreKey& before, size_t max_records,
                                             std::vector<StoredRecord>& records,
                                             ReadContent content) {
  if (db_ == nullptr) return absl::UnavailableError("store: closed");
  const StoreKey limit = std::min(before, VisibleLimit());
  size_t count = 0;
  if (!(after < limit) || max_records == 0) return count;
  rocksdb::ColumnFamilyHandle* handle = FamilyHandle(family);
  ValuesBetween it(*db_, handle, after, limit);
  rocksdb::WriteBatch set_aside;
  size_t corrupt = 0;
  const std::string corrupt_prefix = "corrupt/" + std::string(RecordFamilyName(family)) + "/";
  // Moves the iterator's whole value to dead_letter.
  const auto set_aside_value = [&] {
    set_aside.Put(handles_[kDeadLetter], corrupt_prefix + it->key().ToString(), it->value());
    set_aside.Delete(handle, it->key());
    ++corrupt;
  };
  RecordChunkReader chunk;
  for (; it->Valid() && count < max_records; it->Next()) {
    const std::string_view value(it->value().data(), it->value().size());
    const std::optional<StoreKey> first =
        StoreKey::Decode(std::string_view(it->key().data(), it->key().size()));
    if (!first || !chunk.Reset(value)) {
      // A key of the wrong size, or a chunk whose framing is damaged.
      set_aside_value();
      continue;
    }
    const RecordIndexRange range = RecordsBetween(*first, chunk.size(), after, limit);
    for (size_t i = range.begin; i < range.end && count < max_records; ++i) {
      if (count == records.size()) records.emplace_back();
      // Parsed in place into a message read before: ParseFromArray clears it first, and what it
      // held keeps its memory for the new contents.
      StoredRecord& stored = records[count];
      stored.family = family;
      const std::string_view bytes = chunk.record(i);
      const StoreKey record_key{first->time_unix_nano, first->sequence + i};
      if (content == ReadContent::kBytes) {
        stored.key = record_key;
        stored.bytes.assign(bytes);
        ++count;
        continue;
      }
      const int size = static_cast<int>(bytes.size());
      bool parsed = false;
      if (family == RecordFamily::kLogs) {
        stored.span.Clear();
        parsed = stored.record.ParseFromArray(bytes.data(), size);
      } else {
        stored.record.Clear();
        parsed = stored.span.ParseFromArray(bytes.data(), size);
      }
      if (parsed) {
        stored.key = record_key;
        if (content == ReadContent::kMessagesAndBytes) stored.bytes.assign(bytes);
        ++count;
        continue;
      }
      if (!IsRecordChunk(value)) {
        set_aside_value();  // a value of its own
        continue;
      }
      // One record of a chunk: copied to dead_letter under its own key, once; the chunk keeps it
      // until retention deletes the chunk, and readers skip it without counting it again.
      const std::string letter_key = corrupt_prefix + record_key.Encode();
      std::string existing;
      const rocksdb::Status known =
          db_->Get(rocksdb::ReadOptions(), handles_[kDeadLetter], letter_key, &existing);
      if (known.IsNotFound()) {
        set_aside.Put(handles_[kDeadLetter], letter_key,
                      rocksdb::Slice(bytes.data(), bytes.size()));
        ++corrupt;
      }
    }
  }
  if (!it->status().ok()) {
    return absl::UnavailableError(absl::StrCat("store: read of ",
                                               std::string(RecordFamilyName(family)),
                                               " failed: ", it->status().ToString()));
  }
  if (corrupt > 0) {
    rocksdb::WriteOptions synced;
    synced.sync = true;
    rocksdb::Status status = db_->Write(synced, &set_aside);
    if (!status.ok()) {
      spdlog::error("store: cannot set aside {} undecodable records: {}", corrupt,
                    status.ToString());
    } else {
      spdlog::error("store: {} undecodable records in {} moved to dead_letter", corrupt,
                    RecordFamilyName(family));
      corrupt_records_.fetch_add(corrupt);
      corrupt_counter_.Increment(static_cast<double>(corrupt));
    }
  }
  return count;
}

absl::StatusOr<uint64_t> RecordStore::Count(RecordFamily family, const StoreKey& after,
                                            const StoreKey& before, uint64_t cap,
                                            StoreKey* last) const {
  if (db_ == nullptr) return absl::UnavailableError("store: closed");
  if (last != nullptr) *last = after;
  const StoreKey limit = std::min(before, VisibleLimit());
  if (!(after < limit)) return 0;
  ValuesBetween it(*db_, FamilyHandle(family), after, limit);
  uint64_t count = 0;
  for (; it->Valid() && count < cap; it->Next()) {
    const std::optional<StoreKey> first =
        StoreKey::Decode(std::string_view(it->key().data(), it->key().size()));
    const std::optional<size_t> records =
        RecordCount(std::string_view(it->value().data(), it->value().size()));
    if (!first || !records) continue;  // set aside when a reader meets it
    RecordIndexRange range = RecordsBetween(*first, *records, after, limit);
    range.end = std::min<uint64_t>(range.end, range.begin + (cap - count));
    if (range.end == range.begin) continue;
    count += range.end - range.begin;
    if (last != nullptr) *last = StoreKey{first->time_unix_nano, first->sequence + range.end - 1};
  }
  if (!it->status().ok()) {
    return absl::UnavailableError(absl::StrCat("store: count failed: ", it->status().ToString()));
  }
  return count;
}

absl::StatusOr<StoreKey> RecordStore::LoadCursor(std::string_view exporter) const {
  return LoadKey(handles_[kCursors], std::string(exporter),
                 absl::StrCat("the cursor of '", std::string(exporter), "'"));
}

absl::Status RecordStore::SaveCursor(std::string_view exporter, const StoreKey& cursor) {
  if (db_ == nullptr) return absl::UnavailableError("store: closed");
  rocksdb::Status status =
      db_->Put(rocksdb::WriteOptions(), handles_[kCursors], std::string(exporter), cursor.Encode());
  if (!status.ok()) {
    return absl::UnavailableError(absl::StrCat("store: cannot save the cursor of '",
                                               std::string(exporter), "': ", status.ToString()));
  }
  return absl::OkStatus();
}

absl::Status RecordStore::PutDeadLetter(std::string_view exporter, const StoredRecord& stored,
                                        std::string_view reason, bool maybe_delivered) {
  if (db_ == nullptr) return absl::UnavailableError("store: closed");
  meshtel::v1::DeadLetter letter;
  letter.set_exporter(std::string(exporter));
  letter.set_reason(std::string(reason));
  if (stored.family == RecordFamily::kSpans) {
    stored.span.SerializeToString(letter.mutable_span());
  } else {
    stored.record.SerializeToString(letter.mutable_record());
  }
  letter.set_set_aside_unix_nano(NowUnixNano());
  letter.set_maybe_delivered(maybe_delivered);
  rocksdb::WriteOptions synced;
  synced.sync = sync_writes_;
  rocksdb::Status status =
      db_->Put(synced, handles_[kDeadLetter],
               std::string(kRejectedPrefix) + std::string(exporter) + "/" + stored.key.Encode(),
               letter.SerializeAsString());
  if (!status.ok()) {
    return absl::UnavailableError(
        absl::StrCat("store: cannot write a dead letter: ", status.ToString()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<RecordStore::DeadLetterEntry>> RecordStore::ListDeadLetters(
    std::string_view exporter, size_t max_entries) const {
  if (db_ == nullptr) return absl::UnavailableError("store: closed");
  const std::string prefix = exporter.empty()
                                 ? std::string(kRejectedPrefix)
                                 : std::string(kRejectedPrefix) + std::string(exporter) + "/";
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions(), handles_[kDeadLetter]));
  std::vector<DeadLetterEntry> entries;
  meshtel::v1::DeadLetter letter;
  for (it->Seek(prefix);
       it->Valid() && it->key().starts_with(prefix) && entries.size() < max_entries; it->Next()) {
    const std::string_view key(it->key().data(), it->key().size());
    if (key.size() < StoreKey::kEncodedSize + 1 ||
        !letter.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      continue;
    }
    DeadLetterEntry entry;
    entry.exporter = letter.exporter();
    entry.key = *StoreKey::Decode(key.substr(key.size() - StoreKey::kEncodedSize));
    entry.reason = letter.reason();
    entry.maybe_delivered = letter.maybe_delivered();
    entry.set_aside_unix_nano = letter.set_aside_unix_nano();
    if (letter.has_span()) {
      entry.family = RecordFamily::kSpans;
      if (!entry.span.ParseFromString(letter.span())) continue;
    } else if (!entry.record.ParseFromString(letter.record())) {
      continue;
    }
    entries.push_back(std::move(entry));
  }
  if (!it->status().ok()) {
    return absl::UnavailableError(
        absl::StrCat("store: cannot list dead letters: ", it->status().ToString()));
  }
  return entries;
}

std::optional<std::pair<uint64_t, uint64_t>> RecordStore::TimeSpan(RecordFamily family) const {
  if (db_ == nullptr) return std::nullopt;
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions(), FamilyHandle(family)));
  it->SeekToFirst();
  while (it->Valid() && it->key().size() != StoreKey::kEncodedSize) it->Next();
  if (!it->Valid()) return std::nullopt;
  const uint64_t first =
      StoreKey::Decode(std::string_view(it->key().data(), it->key().size()))->time_unix_nano;
  it->SeekToLast();
  while (it->Valid() && it->key().size() != StoreKey::kEncodedSize) it->Prev();
  if (!it->Valid()) return std::nullopt;
  const uint64_t last =
      StoreKey::Decode(std::string_view(it->key().data(), it->key().size()))->time_unix_nano;
  return std::make_pair(first, last);
}

uint64_t RecordStore::ApproximateBytesBefore(RecordFamily family, uint64_t time_unix_nano) const {
  if (db_ == nullptr) return 0;
  const std::string begin = StoreKey{}.Encode();
  const std::string end = StoreKey{time_unix_nano, 0}.Encode();
  rocksdb::Range range(begin, end);
  rocksdb::SizeApproximationOptions options;
  options.include_memtables = true;
  options.include_files = true;
  uint64_t size = 0;
  if (!db_->GetApproximateSizes(options, FamilyHandle(family), &range, 1, &size).ok()) return 0;
  return size;
}

absl::Status RecordStore::DeleteBefore(RecordFamily family, uint64_t time_unix_nano) {
  if (db_ == nullptr) return absl::UnavailableError("store: closed");
  const std::string begin = StoreKey{}.Encode();
  const std::string end = StoreKey{time_unix_nano, 0}.Encode();
  rocksdb::Status status =
      db_->DeleteRange(rocksdb::WriteOptions(), FamilyHandle(family), begin, end);
  if (!status.ok()) {
    return absl::UnavailableError(absl::StrCat("store: delete failed: ", status.ToString()));
  }
  // Flush first: records still in the memtable (and the write-ahead log behind it) would otherwise
  // hold their space until the next flush, which a store refusing writes never reaches.
  status = db_->Flush(rocksdb::FlushOptions(), FamilyHandle(family));
  if (!status.ok()) {
    return absl::UnavailableError(absl::StrCat("store: flush failed: ", status.ToString()));
  }
  // Table files wholly inside the range go at once. Keys only grow, so table files map to
  // storage-time ranges and almost every deleted record sits in a file of its own range; the few
  // across the range's end keep their space until RocksDB's own compactions drop what the range
  // tombstone covers (a forced compaction here would need room of its own).
  const rocksdb::Slice begin_slice(begin);
  const rocksdb::Slice end_slice(end);
  status = rocksdb::DeleteFilesInRange(db_.get(), FamilyHandle(family), &begin_slice, &end_slice,
                                       /*include_end=*/false);
  if (!status.ok()) {
    return absl::UnavailableError(
        absl::StrCat("store: deleting table files failed: ", status.ToString()));
  }
  if (family == RecordFamily::kSpans) UpdateTraceIndexHorizon();
  RefreshDiskBytes();
  return absl::OkStatus();
}

void RecordStore::UpdateTraceIndexHorizon() {
  std::optional<std::pair<uint64_t, uint64_t>> span = TimeSpan(RecordFamily::kSpans);
  // With no span stored every index entry is stale; spans stored later get keys at or after now.
  trace_index_filter_->set_oldest_span_time(span ? span->first : NowUnixNano());
}

absl::Status RecordStore::FlushRecords() {
  if (db_ == nullptr) return absl::UnavailableError("store: closed");
  rocksdb::Status status = db_->Flush(rocksdb::FlushOptions(),
                                      {handles_[kLogs], handles_[kSpans], handles_[kTraceIndex]});
  if (!status.ok()) {
    return absl::UnavailableError(absl::StrCat("store: flush failed: ", status.ToString()));
  }
  RefreshDiskBytes();
  return absl::OkStatus();
}

void RecordStore::RefreshDiskBytes() { disk_bytes_.store(DiskBytes(), std::memory_order_relaxed); }

uint64_t RecordStore::DiskBytes() const {
  uint64_t bytes = 0;
  std::error_code error;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(data_dir_, error)) {
    std::error_code size_error;
    if (entry.is_regular_file(size_error)) {
      const uint64_t size = entry.file_size(size_error);
      if (!size_error) bytes += size;
    }
  }
  return bytes;
}

absl::Status RecordStore::Close() {
  if (db_ == nullptr) return absl::OkStatus();
  // Memtables go to table files at a clean stop. Table files name their column family, so
  // `meshtelctl store repair` can recover them even when the MANIFEST is lost; records only in
  // the WAL of a non-default family cannot be mapped back without it.
  const rocksdb::Status flushed = db_->Flush(rocksdb::FlushOptions(), handles_);
  rocksdb::Status status = rocksdb::Status::OK();
  if (flushed.ok()) {
    status = db_->FlushWAL(/*sync=*/true);
  } else {
    spdlog::warn("store: flush at close failed: {}", flushed.ToString());
  }
  for (rocksdb::ColumnFamilyHandle* handle : handles_) {
    db_->DestroyColumnFamilyHandle(handle);
  }
  handles_.clear();
  rocksdb::Status close_status = db_->Close();
  db_.reset();
  if (!status.ok()) return absl::DataLossError(absl::StrCat("store: ", status.ToString()));
  if (!close_status.ok()) {
    if (flushed.ok()) {
      return absl::DataLossError(absl::StrCat("store: close: ", close_status.ToString()));
    }
    // A store stopped by a write error (a full disk): RocksDB cannot sync the log file that
    // failed, but every acknowledged batch was written to it (with fsync, synced) before the
    // error, and the next open replays it. Nothing acknowledged is lost.
    spdlog::warn("store: closed after a write error: {}", close_status.ToString());
  }
  spdlog::info("store closed");
  return absl::OkStatus();
}

RecordStore::~RecordStore() {
  if (absl::Status status = Close(); !status.ok()) {
    spdlog::error("{}", status.ToString());
  }
}

}  // namespace meshtel::collector
