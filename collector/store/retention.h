#pragma once
// Retention: keeps the store within its age and size limits (store.max_age, store.max_bytes).
//
// Records are deleted oldest first, whole storage-time ranges at once (RocksDB DeleteRange, then
// a compaction of the range so the disk space comes back now):
//   - age: every record stored longer ago than max_age;
//   - size: when the data directory passes 85% of the store's retainable bytes (max_bytes less
//     RocksDB's working room, RecordStore::retainable_bytes()), the oldest records down to 70%
//     (the range is found by bisecting storage time over RocksDB's size estimates).
// Deleting is not waiting for delivery: a limit is a limit. But nothing is lost silently: for
// each exporter whose cursor had not passed a deleted record, the record is counted in
// meshtel_store_dropped_total{exporter, reason="max_age"|"max_bytes"}, and every deleted record
// in meshtel_store_deleted_total{family, reason}.
//
// Threading: Start() runs the checks on a thread of its own, every retention_interval and after
// every max_bytes/20 bytes appended; RunOnce() may also be called directly (tests), but not
// concurrently with that thread. Ownership: the store and registry must outlive the Retention.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "collector/config/collector_config.h"
#include "collector/store/record_store.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/registry.h"

namespace meshtel::collector {

// The exporters whose losses are counted, per family.
struct RetentionWatch {
  std::string exporter;
  RecordFamily family = RecordFamily::kLogs;
};

class Retention {
 public:
  Retention(RecordStore& store, const StoreConfig& config, std::vector<RetentionWatch> watched,
            prometheus::Registry& registry);
  ~Retention();

  Retention(const Retention&) = delete;
  Retention& operator=(const Retention&) = delete;

  void Start();
  void Stop();

  // One check at `now`: deletes what the limits require. Returns the records deleted.
  absl::StatusOr<uint64_t> RunOnce(absl::Time now);

 private:
  // Deletes `family`'s records stored before `time`, counting them (and each watched
  // exporter's share not yet delivered) under `reason`.
  absl::StatusOr<uint64_t> DeleteBefore(RecordFamily family, uint64_t time_unix_nano,
                                        const std::string& reason);
  void Loop();

  RecordStore& store_;
  const StoreConfig config_;
  const std::vector<RetentionWatch> watched_;
  prometheus::Family<prometheus::Counter>& dropped_;
  prometheus::Family<prometheus::Counter>& deleted_;

  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable wakeup_;
  bool stopping_ = false;  // guarded by mutex_
};

}  // namespace meshtel::collector
