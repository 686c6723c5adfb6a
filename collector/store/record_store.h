#pragma once
// RecordStore: the collector's embedded RocksDB database in the configured data directory.
//
// Column families: "logs" and "spans" (records, keyed by time then sequence), "cursors" (one
// persisted position per exporter) and "meta" (store format version and bookkeeping). The
// durable-logs work fills logs/spans/cursors; today the store is opened, stamped with its format
// version, and closed cleanly.
//
// Threading: all methods are safe to call from any thread. Ownership: the store owns the
// database handle and closes it (flushing memtables) in Close() or the destructor.
// Errors: Open() returns FailedPrecondition for a database it cannot open, naming the directory
// and the RocksDB message; it never deletes or rewrites an existing database.

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "collector/config/collector_config.h"

namespace rocksdb {
class DB;
class ColumnFamilyHandle;
}  // namespace rocksdb

namespace meshtel::collector {

class RecordStore {
 public:
  // The store format this build writes; a database with another version is refused.
  static constexpr int kFormatVersion = 1;

  static absl::StatusOr<std::unique_ptr<RecordStore>> Open(const StoreConfig& config);
  ~RecordStore();

  RecordStore(const RecordStore&) = delete;
  RecordStore& operator=(const RecordStore&) = delete;

  // Flushes memtables and closes the database. Safe to call twice.
  absl::Status Close();

  const std::string& data_dir() const { return data_dir_; }

 private:
  RecordStore(std::string data_dir, std::unique_ptr<rocksdb::DB> db,
              std::vector<rocksdb::ColumnFamilyHandle*> handles);

  std::string data_dir_;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
};

}  // namespace meshtel::collector
