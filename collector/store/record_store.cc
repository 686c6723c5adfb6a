#include "collector/store/record_store.h"

#include <filesystem>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "spdlog/spdlog.h"

namespace meshtel::collector {
namespace {

constexpr const char* kColumnFamilies[] = {"default", "logs", "spans", "cursors", "meta"};
constexpr size_t kMetaFamily = 4;
constexpr const char* kFormatVersionKey = "format_version";

}  // namespace

RecordStore::RecordStore(std::string data_dir, std::unique_ptr<rocksdb::DB> db,
                         std::vector<rocksdb::ColumnFamilyHandle*> handles)
    : data_dir_(std::move(data_dir)), db_(std::move(db)), handles_(std::move(handles)) {}

absl::StatusOr<std::unique_ptr<RecordStore>> RecordStore::Open(const StoreConfig& config) {
  std::error_code fs_error;
  std::filesystem::create_directories(config.data_dir, fs_error);
  if (fs_error) {
    return absl::FailedPreconditionError(absl::StrCat("store.data_dir: cannot create '",
                                                      config.data_dir, "': ", fs_error.message()));
  }
  rocksdb::DBOptions options;
  options.create_if_missing = true;
  options.create_missing_column_families = true;
  options.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  for (const char* name : kColumnFamilies) {
    families.emplace_back(name, rocksdb::ColumnFamilyOptions());
  }
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw_db = nullptr;
  rocksdb::Status status = rocksdb::DB::Open(options, config.data_dir, families, &handles, &raw_db);
  if (!status.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot open the store in '", config.data_dir, "': ", status.ToString(),
        ". Nothing was changed. If another collector uses this directory, stop it or choose "
        "another store.data_dir."));
  }
  std::unique_ptr<RecordStore> store(
      new RecordStore(config.data_dir, std::unique_ptr<rocksdb::DB>(raw_db), std::move(handles)));

  std::string version;
  status = store->db_->Get(rocksdb::ReadOptions(), store->handles_[kMetaFamily], kFormatVersionKey,
                           &version);
  if (status.IsNotFound()) {
    rocksdb::WriteOptions write_options;
    write_options.sync = true;
    status = store->db_->Put(write_options, store->handles_[kMetaFamily], kFormatVersionKey,
                             std::to_string(kFormatVersion));
    if (!status.ok()) {
      return absl::UnavailableError(
          absl::StrCat("store: cannot write format version: ", status.ToString()));
    }
  } else if (!status.ok()) {
    return absl::DataLossError(
        absl::StrCat("store: cannot read format version: ", status.ToString()));
  } else {
    int stored_version = 0;
    if (!absl::SimpleAtoi(version, &stored_version) || stored_version != kFormatVersion) {
      return absl::FailedPreconditionError(absl::StrCat("store in '", config.data_dir,
                                                        "' has format version '", version,
                                                        "'; this build reads ", kFormatVersion));
    }
  }
  spdlog::info("store opened in {}", config.data_dir);
  return store;
}

absl::Status RecordStore::Close() {
  if (db_ == nullptr) return absl::OkStatus();
  rocksdb::Status status = db_->FlushWAL(/*sync=*/true);
  for (rocksdb::ColumnFamilyHandle* handle : handles_) {
    db_->DestroyColumnFamilyHandle(handle);
  }
  handles_.clear();
  rocksdb::Status close_status = db_->Close();
  db_.reset();
  if (!status.ok()) return absl::DataLossError(absl::StrCat("store: ", status.ToString()));
  if (!close_status.ok()) {
    return absl::DataLossError(absl::StrCat("store: close: ", close_status.ToString()));
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
