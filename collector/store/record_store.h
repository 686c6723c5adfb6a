#pragma once
// RecordStore: the collector's embedded RocksDB database in the configured data directory.
//
// Column families:
//   logs          records (serialized meshtel.v1.RequestRecord) and
//   spans         spans of kept traces (serialized meshtel.v1.Span), both keyed by StoreKey: the
//                 time the collector stored them and a store-wide sequence, so a time range is a
//                 range scan and keys only grow (a delivery cursor never has a record appear
//                 behind it); both families hold compressed chunks of consecutive keys
//                 (record_chunk.h), the spans family since format 5 (one span per value before);
//   trace_index   one entry per run of a trace's spans stored one after the other by one
//                 AppendSpans (a kept trace's spans, usually: one entry per trace), keyed trace id
//                 (16) + the first span's StoreKey (16), the value the run's span ids (8 bytes
//                 each, in key order); stores of format 3 and older hold one empty entry per span
//                 keyed trace id + span id (8) + StoreKey, read as well. A trace is a prefix
//                 scan. Entries of spans retention deleted are dropped by compaction (a lookup
//                 skips them before that);
//   cursors       one persisted position per exporter (the delivery engine's);
//   dead_letter   what was set aside: records that no longer decode ("corrupt/<family>/<key>"),
//                 entries a backend rejected for good;
//   meta          the store format version, the start epoch, and each proxy instance's progress
//                 ("instance/<id>": highest stored batch sequence, cumulative dropped records).
//
// Durability: AppendBatch() writes one RocksDB WriteBatch (the batch's records and the proxy
// instance's progress together, so a batch is stored with its dedup state or not at all) and
// returns only after the write returned: with `durability: fsync` the WAL is synced (concurrent
// writers share one sync, which runs while further writes go into the WAL: WalGroupSync), with
// `process` it is written to the OS. An append's keys become visible to Read() only once it is
// durable in that sense.
// After a crash RocksDB replays the WAL up to the last consistent write (point-in-time recovery).
//
// Visibility: keys are handed out in increasing order, but concurrent appends may finish out of
// order. Read() never returns a key at or past the oldest append still being written, so a
// reader that moves a cursor forward never skips a record that lands later.
//
// Threading: all methods are safe to call from any thread. Ownership: the store owns the
// database handle and closes it (syncing the WAL) in Close() or the destructor.
// Errors: Open() returns FailedPrecondition for a database it cannot open, naming the directory,
// the RocksDB message and, for a damaged database, the repair command (for a full filesystem it
// says so instead: no repair is needed); it never deletes or rewrites an existing database.
// A failed write returns Unavailable and stores nothing of the batch; so does a batch that arrives
// while the data directory holds retainable_bytes() or more (retention, retention.h, makes room and
// the proxy resends). A failed WAL sync (`fsync`, after the write itself succeeded) also returns
// Unavailable, but the batch is in the database already and may be delivered: the proxy's resend
// stores it again, a duplicate rather than a loss. A record that fails to decode is moved to
// dead_letter and counted, never returned. A full filesystem (ENOSPC) is such a failed write: the
// store stays open, every later write retries (RocksDB's Resume) and succeeds once there is room
// again. RocksDB's own messages go to the collector's log, never to a file in the data directory.

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "collector/config/collector_config.h"
#include "collector/store/instance_progress.h"
#include "collector/store/serialized_spans.h"
#include "collector/store/store_key.h"
#include "collector/store/wal_group_sync.h"
#include "meshtel/v1/record.pb.h"
#include "meshtel/v1/span.pb.h"
#include "prometheus/counter.h"
#include "prometheus/registry.h"

namespace rocksdb {
class DB;
class ColumnFamilyHandle;
class WriteBatch;
}  // namespace rocksdb

namespace meshtel::collector {

// The record families a reader can scan.
enum class RecordFamily { kLogs, kSpans };
std::string_view RecordFamilyName(RecordFamily family);

// One stored value: `record` for the logs family, `span` for the spans family.
struct StoredRecord {
  StoreKey key;
  RecordFamily family = RecordFamily::kLogs;
  meshtel::v1::RequestRecord record;
  meshtel::v1::Span span;
  // The serialized record or span as stored, for a reader that keeps it (ReadInto with
  // keep_bytes); empty otherwise.
  std::string bytes;
};

// What RecordStore::ReadInto gives of each record.
enum class ReadContent {
  kMessages,  // parsed into StoredRecord::record (or ::span)
  // Parsed, and the stored bytes copied into StoredRecord::bytes (for a reader that holds
  // records as bytes: no serializing again).
  kMessagesAndBytes,
  // Only the stored bytes, not parsed (for a reader that decodes what it needs itself): a
  // record that does not decode is returned like the others, and the reader deals with it.
  kBytes,
};

class RecordStore {
 public:
  // The store format this build writes, and the oldest it reads: format 1 stored one record per
  // logs value, format 2 plain chunks of records, format 3 LZ4-compressed chunks (record_chunk.h),
  // format 4 trace_index entries per run of a trace's spans instead of per span, format 5 spans
  // in chunks too. A store of format 1 to 4 is read as it is and marked format 5 when opened; any
  // other version is refused.
  static constexpr int kFormatVersion = 5;
  static constexpr int kOldestReadableFormat = 1;

  // Opens (creating when missing) the database in config.data_dir; registers the store's
  // counters in `registry`, which must outlive the store.
  static absl::StatusOr<std::unique_ptr<RecordStore>> Open(const StoreConfig& config,
                                                           prometheus::Registry& registry);
  // Rebuilds a damaged database's metadata from its files (RocksDB RepairDB): what
  // `meshtelctl store repair` runs. Records in damaged files may be lost; nothing else is.
  static absl::Status Repair(const std::string& data_dir);
  ~RecordStore();

  RecordStore(const RecordStore&) = delete;
  RecordStore& operator=(const RecordStore&) = delete;

  // Stores the batch's records in logs and `progress` as the instance's progress, in one write.
  absl::Status AppendBatch(const meshtel::v1::RecordBatch& batch, const InstanceProgress& progress);
  // Stores `records` in logs in one write, like AppendBatch but with no instance progress: for
  // the receivers (Envoy ALS, OTLP), whose senders keep no sequence to deduplicate on.
  absl::Status AppendRecords(
      const google::protobuf::RepeatedPtrField<meshtel::v1::RequestRecord>& records);
  // AppendBatch with the records given as their serialized bytes (each one serialized
  // meshtel.v1.RequestRecord, e.g. views into the received RecordBatch): stored as they are, not
  // serialized again. The caller vouches that each one parses as a RequestRecord.
  absl::Status AppendEncodedBatch(std::string_view instance_id,
                                  std::span<const std::string_view> records,
                                  const InstanceProgress& progress);
  // AppendRecords with the records given as their serialized bytes (as AppendEncodedBatch).
  absl::Status AppendEncodedRecords(std::span<const std::string_view> records);

  // Stores `spans` (the kept spans of decided traces) in spans with their trace_index entries,
  // together with the progress of `reader` (the trace assembler) over the logs family: `cursor`
  // in cursors (every record at or before it is in a decided trace) and `read_high` in meta (the
  // last record it had read), in one write: the progress moves with what it wrote, or neither
  // does. Refused like AppendBatch when the data directory is at its limit.
  absl::Status AppendSpans(const SerializedSpans& spans, std::string_view reader,
                           const StoreKey& cursor, const StoreKey& read_high);
  // The same for span messages (serialized first).
  absl::Status AppendSpans(std::span<const meshtel::v1::Span> spans, std::string_view reader,
                           const StoreKey& cursor, const StoreKey& read_high);
  // The read_high last stored by AppendSpans for `reader` (a StoreKey{} when none).
  absl::StatusOr<StoreKey> LoadReadHigh(std::string_view reader) const;
  // The stored spans of a trace (16 id bytes), in storage order; empty when none is stored.
  absl::StatusOr<std::vector<StoredRecord>> ReadTrace(std::string_view trace_id) const;
  // Whether a span with these ids is stored (for not writing a span twice after a restart).
  absl::StatusOr<bool> HasSpan(std::string_view trace_id, std::string_view span_id) const;

  // The stored progress of a proxy instance (zeros for one never seen).
  absl::StatusOr<InstanceProgress> LoadInstanceProgress(std::string_view instance_id) const;

  // Up to `max_records` records of `family` with after < key < before, in key order. A value that
  // does not decode is moved to dead_letter, counted, and skipped.
  absl::StatusOr<std::vector<StoredRecord>> Read(RecordFamily family, const StoreKey& after,
                                                 const StoreKey& before, size_t max_records);
  // Read() into `records` for a reader that reads again and again (the delivery engine): fills
  // records[0, n) and returns n, reusing the messages already there (cleared and parsed again,
  // their strings and sub-messages keep their memory, so reading allocates little once the
  // vector is warm). The vector grows when it has fewer than n elements; elements past n are
  // left as they are, for the next call. `content` says what each element gets (ReadContent).
  absl::StatusOr<size_t> ReadInto(RecordFamily family, const StoreKey& after,
                                  const StoreKey& before, size_t max_records,
                                  std::vector<StoredRecord>& records,
                                  ReadContent content = ReadContent::kMessages);

  // Records of `family` with after < key < before, counting at most `cap` of them. With `last`,
  // sets *last to the greatest key counted (to `after` when none was).
  absl::StatusOr<uint64_t> Count(RecordFamily family, const StoreKey& after, const StoreKey& before,
                                 uint64_t cap, StoreKey* last = nullptr) const;

  // The storage times of the oldest and newest record of `family`, or nullopt when it is empty.
  std::optional<std::pair<uint64_t, uint64_t>> TimeSpan(RecordFamily family) const;
  // Approximate disk bytes (tables and memtables) of `family`'s records stored before the time.
  uint64_t ApproximateBytesBefore(RecordFamily family, uint64_t time_unix_nano) const;
  // Deletes `family`'s records stored before the time and compacts their range, so the disk
  // space is given back now.
  absl::Status DeleteBefore(RecordFamily family, uint64_t time_unix_nano);
  // Writes the memtables of the record families and of trace_index to table files, so the
  // write-ahead log behind them can go: after it the directory's size is mostly records.
  absl::Status FlushRecords();
  // Bytes of every file in the data directory (tables, logs, metadata).
  uint64_t DiskBytes() const;
  // store.max_bytes less the room RocksDB needs beside the records (write-ahead log, memtables
  // being flushed, compaction outputs that exist before their inputs are gone): at this size the
  // store refuses new batches, and retention keeps the directory well under it.
  uint64_t retainable_bytes() const { return retainable_bytes_; }
  // Measures DiskBytes() again for the write path's limit check (retention calls it often).
  void RefreshDiskBytes();

  // Keys below this are final: no append still under way will write one of them.
  StoreKey VisibleLimit() const;

  // An exporter's persisted position: every record at or before it is resolved (delivered or set
  // aside). A StoreKey{} for an exporter that never saved one. Cursor writes are not synced: a
  // cursor lost in a crash means records are sent again, never that records are skipped.
  absl::StatusOr<StoreKey> LoadCursor(std::string_view exporter) const;
  absl::Status SaveCursor(std::string_view exporter, const StoreKey& cursor);

  // Sets `stored` aside for `exporter` in dead_letter ("rejected/<exporter>/<key>") with why.
  absl::Status PutDeadLetter(std::string_view exporter, const StoredRecord& stored,
                             std::string_view reason, bool maybe_delivered);
  struct DeadLetterEntry {
    std::string exporter;
    StoreKey key;
    RecordFamily family = RecordFamily::kLogs;
    std::string reason;
    bool maybe_delivered = false;
    uint64_t set_aside_unix_nano = 0;
    meshtel::v1::RequestRecord record;  // for the logs family
    meshtel::v1::Span span;             // for the spans family
  };
  // Up to `max_entries` dead letters of `exporter` (all exporters when empty), in key order.
  absl::StatusOr<std::vector<DeadLetterEntry>> ListDeadLetters(std::string_view exporter,
                                                               size_t max_entries) const;

  // Syncs the WAL and closes the database. Safe to call twice.
  absl::Status Close();

  const std::string& data_dir() const { return data_dir_; }
  uint64_t corrupt_records() const { return corrupt_records_.load(); }
  // Bytes of record values appended since the store opened.
  uint64_t bytes_appended() const { return bytes_appended_.load(std::memory_order_relaxed); }

 private:
  class TraceIndexFilter;
  RecordStore(const StoreConfig& config, std::unique_ptr<TraceIndexFilter> trace_index_filter,
              std::unique_ptr<rocksdb::DB> db, std::vector<rocksdb::ColumnFamilyHandle*> handles,
              prometheus::Registry& registry);
  // The StoreKey stored under `key` in `family` (a StoreKey{} when absent); `what` names it in
  // errors ("the cursor of 'loki'").
  absl::StatusOr<StoreKey> LoadKey(rocksdb::ColumnFamilyHandle* family, const std::string& key,
                                   const std::string& what) const;
  // Serializes `records` and writes them with AppendToLogs.
  absl::Status AppendMessagesToLogs(
      const google::protobuf::RepeatedPtrField<meshtel::v1::RequestRecord>& records,
      const std::string* instance_id, const InstanceProgress& progress);
  // Writes `records` (serialized) to logs and, when `instance_id` is set, `progress` as its
  // progress, in one write.
  absl::Status AppendToLogs(std::span<const std::string_view> records,
                            const std::string_view* instance_id, const InstanceProgress& progress);
  // Unavailable (counted) when the data directory holds retainable_bytes() or more.
  absl::Status CheckRoom();
  // Writes `write` (whose keys start at `first`, allocated by AllocateKeys) with the configured
  // durability and marks the append finished; Unavailable (counted) when the write failed.
  absl::Status Commit(rocksdb::WriteBatch& write, const StoreKey& first);
  // Tells trace_index's compaction filter the storage time of the oldest span kept.
  void UpdateTraceIndexHorizon();

  absl::Status StampFormatAndEpoch();
  // Hands out `count` consecutive keys (marked in flight) and returns the first.
  StoreKey AllocateKeys(size_t count);
  void Finished(const StoreKey& first);
  rocksdb::ColumnFamilyHandle* FamilyHandle(RecordFamily family) const;

  const std::string data_dir_;
  const bool sync_writes_;
  const uint64_t max_bytes_;
  const uint64_t retainable_bytes_;
  std::atomic<uint64_t> disk_bytes_{0};
  // Declared before db_: RocksDB uses it until the database is closed.
  std::unique_ptr<TraceIndexFilter> trace_index_filter_;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  // With `fsync`: the sync every append waits for after its write (group commit).
  WalGroupSync wal_sync_;

  // Sequences are (epoch << 40) + a counter: unique across restarts without a scan at start.
  uint64_t epoch_ = 0;
  mutable std::mutex keys_mutex_;
  uint64_t next_counter_ = 0;          // guarded by keys_mutex_
  uint64_t last_time_ = 0;             // guarded by keys_mutex_: key times never go back
  std::multiset<StoreKey> in_flight_;  // guarded by keys_mutex_: first keys of unfinished appends

  std::atomic<uint64_t> corrupt_records_{0};
  std::atomic<uint64_t> bytes_appended_{0};
  prometheus::Counter& records_written_;
  prometheus::Counter& bytes_written_;
  prometheus::Counter& write_errors_;
  prometheus::Counter& full_refusals_;
  prometheus::Counter& corrupt_counter_;
};

}  // namespace meshtel::collector
