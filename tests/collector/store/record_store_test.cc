#include "collector/store/record_store.h"

#include <filesystem>

#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "tests/support/process.h"

namespace meshtel::collector {
namespace {

TEST(RecordStoreTest, CreatesOpensClosesAndReopens) {
  const std::string dir = testing::MakeTempDir("store") + "/data";
  {
    absl::StatusOr<std::unique_ptr<RecordStore>> store = RecordStore::Open(StoreConfig{dir});
    ASSERT_TRUE(store.ok()) << store.status();
    EXPECT_TRUE(std::filesystem::exists(dir + "/CURRENT"));
    EXPECT_TRUE((*store)->Close().ok());
    EXPECT_TRUE((*store)->Close().ok());  // twice is fine
  }
  absl::StatusOr<std::unique_ptr<RecordStore>> again = RecordStore::Open(StoreConfig{dir});
  ASSERT_TRUE(again.ok()) << again.status();
}

TEST(RecordStoreTest, HasTheColumnFamilies) {
  const std::string dir = testing::MakeTempDir("store");
  { ASSERT_TRUE(RecordStore::Open(StoreConfig{dir}).ok()); }
  std::vector<std::string> families;
  ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), dir, &families).ok());
  for (const char* name : {"default", "logs", "spans", "cursors", "meta"}) {
    EXPECT_NE(std::find(families.begin(), families.end(), name), families.end()) << name;
  }
}

TEST(RecordStoreTest, SecondOpenOfALockedStoreFailsClearly) {
  const std::string dir = testing::MakeTempDir("store");
  absl::StatusOr<std::unique_ptr<RecordStore>> first = RecordStore::Open(StoreConfig{dir});
  ASSERT_TRUE(first.ok());
  absl::StatusOr<std::unique_ptr<RecordStore>> second = RecordStore::Open(StoreConfig{dir});
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(std::string(second.status().message()).find(dir), std::string::npos);
  EXPECT_NE(std::string(second.status().message()).find("Nothing was changed"), std::string::npos);
}

TEST(RecordStoreTest, UncreatableDirectoryNamesTheKey) {
  const std::string dir = testing::MakeTempDir("store");
  testing::WriteFile(dir + "/file", "x");
  absl::StatusOr<std::unique_ptr<RecordStore>> store =
      RecordStore::Open(StoreConfig{dir + "/file/data"});
  ASSERT_FALSE(store.ok());
  EXPECT_NE(std::string(store.status().message()).find("store.data_dir"), std::string::npos);
}

TEST(RecordStoreTest, RefusesAnotherFormatVersionWithoutTouchingIt) {
  const std::string dir = testing::MakeTempDir("store");
  { ASSERT_TRUE(RecordStore::Open(StoreConfig{dir}).ok()); }
  {
    std::vector<rocksdb::ColumnFamilyDescriptor> families;
    for (const char* name : {"default", "logs", "spans", "cursors", "meta"}) {
      families.emplace_back(name, rocksdb::ColumnFamilyOptions());
    }
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* db = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(rocksdb::DBOptions(), dir, families, &handles, &db).ok());
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), handles[4], "format_version", "99").ok());
    for (auto* handle : handles) db->DestroyColumnFamilyHandle(handle);
    delete db;
  }
  absl::StatusOr<std::unique_ptr<RecordStore>> store = RecordStore::Open(StoreConfig{dir});
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(std::string(store.status().message()).find("'99'"), std::string::npos);
}

}  // namespace
}  // namespace meshtel::collector
