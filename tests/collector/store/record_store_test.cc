#include "collector/store/record_store.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "collector/store/record_chunk.h"
#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "tests/support/process.h"

namespace meshtel::collector {
namespace {

constexpr StoreKey kEnd{~uint64_t{0}, ~uint64_t{0}};
constexpr const char* kFamilies[] = {"default",     "logs", "spans",      "cursors",
                                     "dead_letter", "meta", "trace_index"};

StoreConfig Config(const std::string& dir, const std::string& durability = "fsync") {
  StoreConfig config;
  config.data_dir = dir;
  config.durability = durability;
  return config;
}

// A batch of `count` records whose paths are "/<first>", "/<first+1>", ...
meshtel::v1::RecordBatch Batch(const std::string& instance, uint64_t sequence, int first,
                               int count) {
  meshtel::v1::RecordBatch batch;
  batch.set_proxy_instance_id(instance);
  batch.set_sequence(sequence);
  for (int i = 0; i < count; ++i) {
    auto* record = batch.add_records();
    record->set_path("/" + std::to_string(first + i));
    record->set_response_code(200);
  }
  return batch;
}

// Records "/0", "/1", ... in that order, with growing keys.
void ExpectNumberedInKeyOrder(const std::vector<StoredRecord>& records) {
  for (size_t i = 0; i < records.size(); ++i) {
    EXPECT_EQ(records[i].record.path(), "/" + std::to_string(i));
    if (i > 0) {
      EXPECT_LT(records[i - 1].key, records[i].key);
    }
  }
}

std::vector<StoredRecord> ReadAll(RecordStore& store) {
  absl::StatusOr<std::vector<StoredRecord>> records =
      store.Read(RecordFamily::kLogs, StoreKey{}, kEnd, 1'000'000);
  EXPECT_TRUE(records.ok()) << records.status();
  return records.ok() ? *std::move(records) : std::vector<StoredRecord>{};
}

// Opens the database directly (as RocksDB tools would), bypassing the store.
struct RawDatabase {
  explicit RawDatabase(const std::string& dir) {
    std::vector<rocksdb::ColumnFamilyDescriptor> families;
    for (const char* name : kFamilies) families.emplace_back(name, rocksdb::ColumnFamilyOptions());
    rocksdb::DB* raw = nullptr;
    status = rocksdb::DB::Open(rocksdb::DBOptions(), dir, families, &handles, &raw);
    db.reset(raw);
  }
  ~RawDatabase() {
    for (auto* handle : handles) db->DestroyColumnFamilyHandle(handle);
  }
  rocksdb::Status status;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  std::unique_ptr<rocksdb::DB> db;
};

// The keys of the dead_letter family of the (closed) store in `dir`.
std::vector<std::string> DeadLetterKeys(const std::string& dir) {
  RawDatabase raw(dir);
  EXPECT_TRUE(raw.status.ok()) << raw.status.ToString();
  std::vector<std::string> keys;
  if (!raw.status.ok()) return keys;
  std::unique_ptr<rocksdb::Iterator> it(
      raw.db->NewIterator(rocksdb::ReadOptions(), raw.handles[4]));
  for (it->SeekToFirst(); it->Valid(); it->Next()) keys.push_back(it->key().ToString());
  return keys;
}

class RecordStoreTest : public ::testing::Test {
 protected:
  absl::StatusOr<std::unique_ptr<RecordStore>> Open(const StoreConfig& config) {
    registries_.push_back(std::make_unique<prometheus::Registry>());
    return RecordStore::Open(config, *registries_.back());
  }
  std::vector<std::unique_ptr<prometheus::Registry>> registries_;
};

TEST_F(RecordStoreTest, CreatesOpensClosesAndReopens) {
  const std::string dir = testing::MakeTempDir("store") + "/data";
  {
    absl::StatusOr<std::unique_ptr<RecordStore>> store = Open(Config(dir));
    ASSERT_TRUE(store.ok()) << store.status();
    EXPECT_TRUE(std::filesystem::exists(dir + "/CURRENT"));
    EXPECT_TRUE((*store)->Close().ok());
    EXPECT_TRUE((*store)->Close().ok());  // twice is fine
  }
  absl::StatusOr<std::unique_ptr<RecordStore>> again = Open(Config(dir));
  ASSERT_TRUE(again.ok()) << again.status();
}

TEST_F(RecordStoreTest, HasTheColumnFamilies) {
  const std::string dir = testing::MakeTempDir("store");
  { ASSERT_TRUE(Open(Config(dir)).ok()); }
  std::vector<std::string> families;
  ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), dir, &families).ok());
  for (const char* name : kFamilies) {
    EXPECT_NE(std::find(families.begin(), families.end(), name), families.end()) << name;
  }
}

TEST_F(RecordStoreTest, SecondOpenOfALockedStoreFailsClearly) {
  const std::string dir = testing::MakeTempDir("store");
  absl::StatusOr<std::unique_ptr<RecordStore>> first = Open(Config(dir));
  ASSERT_TRUE(first.ok());
  absl::StatusOr<std::unique_ptr<RecordStore>> second = Open(Config(dir));
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(std::string(second.status().message()).find(dir), std::string::npos);
  EXPECT_NE(std::string(second.status().message()).find("Nothing was changed"), std::string::npos);
  EXPECT_NE(std::string(second.status().message()).find("another collector"), std::string::npos);
}

TEST_F(RecordStoreTest, UncreatableDirectoryNamesTheKey) {
  const std::string dir = testing::MakeTempDir("store");
  testing::WriteFile(dir + "/file", "x");
  absl::StatusOr<std::unique_ptr<RecordStore>> store = Open(Config(dir + "/file/data"));
  ASSERT_FALSE(store.ok());
  EXPECT_NE(std::string(store.status().message()).find("store.data_dir"), std::string::npos);
}

TEST_F(RecordStoreTest, RefusesAnotherFormatVersionWithoutTouchingIt) {
  const std::string dir = testing::MakeTempDir("store");
  { ASSERT_TRUE(Open(Config(dir)).ok()); }
  {
    RawDatabase raw(dir);
    ASSERT_TRUE(raw.status.ok()) << raw.status.ToString();
    ASSERT_TRUE(raw.db->Put(rocksdb::WriteOptions(), raw.handles[5], "format_version", "99").ok());
  }
  absl::StatusOr<std::unique_ptr<RecordStore>> store = Open(Config(dir));
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(std::string(store.status().message()).find("'99'"), std::string::npos);
}

TEST_F(RecordStoreTest, AppendedRecordsReadBackInKeyOrderWithGrowingKeys) {
  const std::string dir = testing::MakeTempDir("store");
  auto store = Open(Config(dir));
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_TRUE((*store)->AppendBatch(Batch("proxy-a", 1, 0, 3), {1, 0}).ok());
  ASSERT_TRUE((*store)->AppendBatch(Batch("proxy-b", 1, 3, 2), {1, 0}).ok());
  ASSERT_TRUE((*store)->AppendBatch(Batch("proxy-a", 2, 5, 0), {2, 0}).ok());  // no records
  ASSERT_TRUE((*store)->AppendBatch(Batch("proxy-a", 3, 5, 4), {3, 0}).ok());
  const std::vector<StoredRecord> records = ReadAll(**store);
  ASSERT_EQ(records.size(), 9u);
  ExpectNumberedInKeyOrder(records);
  // The key's time is when the collector stored the record: recent, not the record's own.
  const uint64_t now = static_cast<uint64_t>(absl::ToUnixNanos(absl::Now()));
  EXPECT_LE(records.back().key.time_unix_nano, now);
  EXPECT_GT(records.front().key.time_unix_nano, now - 60'000'000'000ull);

  // Ranges are exclusive at both ends; max_records cuts the page.
  auto middle = (*store)->Read(RecordFamily::kLogs, records[2].key, records[6].key, 100);
  ASSERT_TRUE(middle.ok());
  ASSERT_EQ(middle->size(), 3u);
  EXPECT_EQ((*middle)[0].record.path(), "/3");
  EXPECT_EQ((*middle)[2].record.path(), "/5");
  auto page = (*store)->Read(RecordFamily::kLogs, StoreKey{}, kEnd, 4);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->size(), 4u);
  // Nothing went to spans.
  auto spans = (*store)->Read(RecordFamily::kSpans, StoreKey{}, kEnd, 100);
  ASSERT_TRUE(spans.ok());
  EXPECT_TRUE(spans->empty());
}

// ReadInto reuses the vector's records (a reader reading again and again) and reads what Read
// reads; Count can say the last key it counted.
TEST_F(RecordStoreTest, ReadIntoReusesTheRecordsAndCountSaysWhereItStopped) {
  const std::string dir = testing::MakeTempDir("store");
  auto store = Open(Config(dir));
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_TRUE((*store)->AppendBatch(Batch("proxy-a", 1, 0, 6), {1, 0}).ok());
  const std::vector<StoredRecord> all = ReadAll(**store);
  ASSERT_EQ(all.size(), 6u);

  std::vector<StoredRecord> records(8);
  records[3].record.set_user_agent("left from before");  // a field the stored records lack
  records[7].record.set_path("/untouched");
  auto read = (*store)->ReadInto(RecordFamily::kLogs, StoreKey{}, kEnd, 4, records);
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_EQ(*read, 4u);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(records[i].key, all[i].key);
    EXPECT_EQ(records[i].record.path(), "/" + std::to_string(i));
    EXPECT_EQ(records[i].record.user_agent(), "");
  }
  EXPECT_EQ(records[7].record.path(), "/untouched");  // past n: left as it was
  // kMessages gives no bytes; kMessagesAndBytes each record's stored bytes.
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(records[i].bytes, "");
  read = (*store)->ReadInto(RecordFamily::kLogs, StoreKey{}, kEnd, 4, records,
                            ReadContent::kMessagesAndBytes);
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_EQ(*read, 4u);
  for (size_t i = 0; i < 4; ++i) {
    meshtel::v1::RequestRecord reparsed;
    ASSERT_TRUE(reparsed.ParseFromString(records[i].bytes));
    EXPECT_EQ(reparsed.path(), "/" + std::to_string(i));
    EXPECT_EQ(records[i].bytes, records[i].record.SerializeAsString());
  }
  // Bytes only: the same bytes and keys, nothing parsed.
  std::vector<StoredRecord> bytes_only(2);
  read =
      (*store)->ReadInto(RecordFamily::kLogs, StoreKey{}, kEnd, 4, bytes_only, ReadContent::kBytes);
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_EQ(*read, 4u);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(bytes_only[i].key, all[i].key);
    EXPECT_EQ(bytes_only[i].bytes, records[i].bytes);
    EXPECT_EQ(bytes_only[i].record.path(), "");
  }
  // Past the end of a short vector it grows; what is left after the cursor comes back.
  std::vector<StoredRecord> small(1);
  read = (*store)->ReadInto(RecordFamily::kLogs, all[2].key, kEnd, 100, small);
  ASSERT_TRUE(read.ok());
  ASSERT_EQ(*read, 3u);
  ASSERT_GE(small.size(), 3u);
  EXPECT_EQ(small[0].record.path(), "/3");
  EXPECT_EQ(small[2].record.path(), "/5");

  StoreKey last;
  auto count = (*store)->Count(RecordFamily::kLogs, all[1].key, kEnd, 3, &last);
  ASSERT_TRUE(count.ok());
  EXPECT_EQ(*count, 3u);
  EXPECT_EQ(last, all[4].key);
  count = (*store)->Count(RecordFamily::kLogs, all[5].key, kEnd, 3, &last);
  ASSERT_TRUE(count.ok());
  EXPECT_EQ(*count, 0u);
  EXPECT_EQ(last, all[5].key);  // none counted: where it started
}

TEST_F(RecordStoreTest, ReceivedEntriesAreStoredWithoutAnyInstanceProgress) {
  const std::string dir = testing::MakeTempDir("store");
  auto store = Open(Config(dir));
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_TRUE((*store)->AppendBatch(Batch("proxy-a", 1, 0, 1), {1, 0}).ok());
  google::protobuf::RepeatedPtrField<meshtel::v1::RequestRecord> received;
  received.Add()->set_path("/als");
  received.Add()->mutable_received_span()->set_name("GET /cart");
  received.Add()->mutable_received_log()->set_body("payment declined");
  ASSERT_TRUE((*store)->AppendRecords(received).ok());
  const std::vector<StoredRecord> records = ReadAll(**store);
  ASSERT_EQ(records.size(), 4u);
  EXPECT_EQ(records[1].record.path(), "/als");
  EXPECT_EQ(records[2].record.received_span().name(), "GET /cart");
  EXPECT_EQ(records[3].record.received_log().body(), "payment declined");
  EXPECT_LT(records[0].key, records[1].key);
  // The proxy's progress is untouched, and no instance appeared for the receiver.
  auto progress = (*store)->LoadInstanceProgress("proxy-a");
  ASSERT_TRUE(progress.ok());
  EXPECT_EQ(progress->highest_sequence, 1u);
  auto none = (*store)->LoadInstanceProgress("");
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->highest_sequence, 0u);
}

TEST_F(RecordStoreTest, EncodedRecordsAreStoredAsTheyAreWithTheProgress) {
  const std::string dir = testing::MakeTempDir("store");
  auto store = Open(Config(dir));
  ASSERT_TRUE(store.ok()) << store.status();
  const meshtel::v1::RecordBatch batch = Batch("proxy-a", 4, 0, 300);  // keys past one byte
  std::string wire;
  std::vector<size_t> ends;
  for (const auto& record : batch.records()) {
    record.AppendToString(&wire);
    ends.push_back(wire.size());
  }
  // An unknown field (from a newer proxy) is kept: the bytes are stored as they came.
  const std::string unknown("\xf8\x07\x2a", 3);  // field 127, varint 42
  wire += unknown;
  ends.back() = wire.size();
  std::vector<std::string_view> views;
  for (size_t i = 0, begin = 0; i < ends.size(); begin = ends[i], ++i) {
    views.push_back(std::string_view(wire).substr(begin, ends[i] - begin));
  }
  ASSERT_TRUE((*store)->AppendEncodedBatch("proxy-a", views, {4, 9}).ok());
  const std::string one = batch.records(0).SerializeAsString();
  const std::vector<std::string_view> received = {one};
  ASSERT_TRUE((*store)->AppendEncodedRecords(received).ok());

  const std::vector<StoredRecord> records = ReadAll(**store);
  ASSERT_EQ(records.size(), 301u);
  for (size_t i = 0; i < 300; ++i) {
    EXPECT_EQ(records[i].record.path(), "/" + std::to_string(i)) << i;
    if (i > 0) {
      EXPECT_LT(records[i - 1].key, records[i].key) << i;
    }
  }
  EXPECT_EQ(records[300].record.path(), "/0");
  EXPECT_LT(records[299].key, records[300].key);
  auto progress = (*store)->LoadInstanceProgress("proxy-a");
  ASSERT_TRUE(progress.ok());
  EXPECT_EQ(progress->highest_sequence, 4u);
  EXPECT_EQ(progress->dropped_records_total, 9u);
  EXPECT_EQ((*store)->bytes_appended(), wire.size() + one.size());
}

TEST_F(RecordStoreTest, ProgressAndRecordsSurviveAReopenAndKeysKeepGrowing) {
  const std::string dir = testing::MakeTempDir("store");
  StoreKey last_before;
  {
    auto store = Open(Config(dir, "process"));
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_TRUE((*store)->AppendBatch(Batch("proxy-a", 7, 0, 2), {7, 11}).ok());
    last_before = ReadAll(**store).back().key;
    EXPECT_EQ((*store)->LoadInstanceProgress("proxy-b")->highest_sequence, 0u);
  }
  auto store = Open(Config(dir));
  ASSERT_TRUE(store.ok()) << store.status();
  absl::StatusOr<InstanceProgress> progress = (*store)->LoadInstanceProgress("proxy-a");
  ASSERT_TRUE(progress.ok());
  EXPECT_EQ(progress->highest_sequence, 7u);
  EXPECT_EQ(progress->dropped_records_total, 11u);
  ASSERT_TRUE((*store)->AppendBatch(Batch("proxy-a", 8, 2, 1), {8, 11}).ok());
  const std::vector<StoredRecord> records = ReadAll(**store);
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[1].key, last_before);
  EXPECT_LT(records[1].key, records[2].key);
  EXPECT_NE(records[1].key.sequence >> 40, records[2].key.sequence >> 40);  // a new epoch
}

// The process is killed right after its appends returned: with `durability: process` (the WAL in
// the OS, not synced) and with `fsync`, every acknowledged record is there after the restart.
TEST_F(RecordStoreTest, EveryAcknowledgedRecordSurvivesAKill) {
  for (const std::string durability : {"process", "fsync"}) {
    const std::string dir = testing::MakeTempDir("store");
    int pipe_fds[2];
    ASSERT_EQ(pipe(pipe_fds), 0);
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      close(pipe_fds[0]);
      prometheus::Registry registry;
      auto store = RecordStore::Open(Config(dir, durability), registry);
      if (!store.ok()) _exit(3);
      for (uint64_t sequence = 1; sequence <= 200; ++sequence) {
        if (!(*store)->AppendBatch(Batch("proxy-a", sequence, 0, 10), {sequence, 0}).ok()) break;
        // The ack: one byte per stored batch.
        if (write(pipe_fds[1], "a", 1) != 1) break;
      }
      raise(SIGKILL);  // no Close(), no flush: as a crash
      _exit(4);
    }
    close(pipe_fds[1]);
    size_t acked = 0;
    char byte;
    while (read(pipe_fds[0], &byte, 1) == 1) ++acked;
    close(pipe_fds[0]);
    int wait_status = 0;
    ASSERT_EQ(waitpid(child, &wait_status, 0), child);
    ASSERT_TRUE(WIFSIGNALED(wait_status)) << durability;
    EXPECT_EQ(acked, 200u) << durability;

    auto store = Open(Config(dir, durability));
    ASSERT_TRUE(store.ok()) << store.status();
    EXPECT_EQ(ReadAll(**store).size(), acked * 10) << durability;
    EXPECT_EQ((*store)->LoadInstanceProgress("proxy-a")->highest_sequence, acked) << durability;
  }
}

// Appends from several threads finish out of order; a reader that moves its cursor to the last
// key it read must still see every record exactly once.
TEST_F(RecordStoreTest, ACursorReaderNeverSkipsConcurrentAppends) {
  const std::string dir = testing::MakeTempDir("store");
  auto opened = Open(Config(dir, "process"));
  ASSERT_TRUE(opened.ok());
  RecordStore& store = **opened;
  constexpr int kWriters = 4;
  constexpr int kBatches = 150;
  constexpr int kPerBatch = 5;
  std::atomic<int> writers_done{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      for (int b = 0; b < kBatches; ++b) {
        const int first = (w * kBatches + b) * kPerBatch;
        const uint64_t sequence = static_cast<uint64_t>(b + 1);
        EXPECT_TRUE(
            store
                .AppendBatch(Batch("proxy-" + std::to_string(w), sequence, first, kPerBatch),
                             {sequence, 0})
                .ok());
      }
      writers_done.fetch_add(1);
    });
  }
  StoreKey cursor;
  std::set<std::string> seen;
  size_t duplicates = 0;
  bool last_pass = false;
  while (!last_pass) {
    last_pass = writers_done.load() == kWriters;  // one more pass after the last append
    auto page = store.Read(RecordFamily::kLogs, cursor, kEnd, 64);
    ASSERT_TRUE(page.ok()) << page.status();
    for (const StoredRecord& stored : *page) {
      EXPECT_LT(cursor, stored.key);
      cursor = stored.key;
      if (!seen.insert(stored.record.path()).second) ++duplicates;
    }
    if (!page->empty()) last_pass = false;  // drain fully before the final check
  }
  for (auto& writer : writers) writer.join();
  EXPECT_EQ(duplicates, 0u);
  EXPECT_EQ(seen.size(), static_cast<size_t>(kWriters * kBatches * kPerBatch));
  EXPECT_EQ(ReadAll(store).size(), seen.size());
}

TEST_F(RecordStoreTest, UndecodableRecordIsSetAsideCountedAndNeverReturned) {
  const std::string dir = testing::MakeTempDir("store");
  StoreKey first_key;
  {
    auto store = Open(Config(dir));
    ASSERT_TRUE(store.ok());
    // Two batches: each record is a value (a chunk) of its own.
    ASSERT_TRUE((*store)->AppendBatch(Batch("proxy-a", 1, 0, 1), {1, 0}).ok());
    ASSERT_TRUE((*store)->AppendBatch(Batch("proxy-a", 2, 1, 1), {2, 0}).ok());
    first_key = ReadAll(**store).front().key;
  }
  {
    RawDatabase raw(dir);
    ASSERT_TRUE(raw.status.ok());
    // The first record's value replaced by bytes that are not a RequestRecord, and a key of the
    // wrong size.
    ASSERT_TRUE(raw.db
                    ->Put(rocksdb::WriteOptions(), raw.handles[1], first_key.Encode(),
                          "\xff\xff\xff\xff not a record")
                    .ok());
    ASSERT_TRUE(
        raw.db->Put(rocksdb::WriteOptions(), raw.handles[1], first_key.Encode() + "x", "x").ok());
  }
  auto store = Open(Config(dir));
  ASSERT_TRUE(store.ok()) << store.status();
  std::vector<StoredRecord> records = ReadAll(**store);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].record.path(), "/1");
  EXPECT_EQ((*store)->corrupt_records(), 2u);
  // Set aside once: the next read neither returns nor counts them again.
  EXPECT_EQ(ReadAll(**store).size(), 1u);
  EXPECT_EQ((*store)->corrupt_records(), 2u);
  ASSERT_TRUE((*store)->Close().ok());
  const std::vector<std::string> dead = DeadLetterKeys(dir);
  EXPECT_EQ(dead.size(), 2u);
  for (const std::string& key : dead) EXPECT_TRUE(key.starts_with("corrupt/logs/")) << key;
}

std::string ChunkValue(const std::vector<std::string>& records) {
  return EncodeRecordChunk(records);
}

std::string SerializedRecord(const std::string& path) {
  meshtel::v1::RequestRecord record;
  record.set_path(path);
  return record.SerializeAsString();
}

// One record inside a chunk that does not decode: the others are read, it is copied to
// dead_letter and counted once; a chunk whose framing is damaged is set aside whole.
TEST_F(RecordStoreTest, AnUndecodableRecordInAChunkIsSetAsideOnceAndTheOthersAreRead) {
  const std::string dir = testing::MakeTempDir("store");
  const StoreKey chunk_key{1'000'000'000, 10};
  const StoreKey damaged_key{1'000'000'000, 20};
  {
    auto store = Open(Config(dir));  // stamps the format and the epoch
    ASSERT_TRUE(store.ok()) << store.status();
  }
  {
    RawDatabase raw(dir);
    ASSERT_TRUE(raw.status.ok());
    ASSERT_TRUE(raw.db
                    ->Put(rocksdb::WriteOptions(), raw.handles[1], chunk_key.Encode(),
                          ChunkValue({SerializedRecord("/0"), "\xff\xff not a record",
                                      SerializedRecord("/2")}))
                    .ok());
    std::string damaged = ChunkValue({SerializedRecord("/3"), SerializedRecord("/4")});
    damaged.pop_back();  // the last record runs past the end
    ASSERT_TRUE(
        raw.db->Put(rocksdb::WriteOptions(), raw.handles[1], damaged_key.Encode(), damaged).ok());
  }
  auto store = Open(Config(dir));
  ASSERT_TRUE(store.ok()) << store.status();
  std::vector<StoredRecord> records = ReadAll(**store);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].record.path(), "/0");
  EXPECT_EQ(records[0].key, chunk_key);
  EXPECT_EQ(records[1].record.path(), "/2");
  EXPECT_EQ(records[1].key, (StoreKey{chunk_key.time_unix_nano, chunk_key.sequence + 2}));
  EXPECT_EQ((*store)->corrupt_records(), 2u);
  // Read again, from the start and from inside the chunk: nothing is counted twice.
  EXPECT_EQ(ReadAll(**store).size(), 2u);
  auto rest = (*store)->Read(RecordFamily::kLogs, chunk_key, kEnd, 10);
  ASSERT_TRUE(rest.ok());
  ASSERT_EQ(rest->size(), 1u);
  EXPECT_EQ((*rest)[0].record.path(), "/2");
  EXPECT_EQ((*store)->corrupt_records(), 2u);
  ASSERT_TRUE((*store)->Close().ok());
  const std::vector<std::string> dead = DeadLetterKeys(dir);
  EXPECT_EQ(
      std::set<std::string>(dead.begin(), dead.end()),
      (std::set<std::string>{"corrupt/logs/" + StoreKey{chunk_key.time_unix_nano, 11}.Encode(),
                             "corrupt/logs/" + damaged_key.Encode()}));
}

// A batch larger than a chunk is stored as several chunks; every position inside and between
// them reads and counts like a store of one value per record.
TEST_F(RecordStoreTest, ABatchOfManyChunksReadsAndCountsFromAnyPosition) {
  const std::string dir = testing::MakeTempDir("store");
  auto store = Open(Config(dir, "process"));
  ASSERT_TRUE(store.ok()) << store.status();
  meshtel::v1::RecordBatch batch = Batch("proxy-a", 1, 0, 700);
  for (auto& record : *batch.mutable_records()) record.set_user_agent(std::string(300, 'u'));
  ASSERT_TRUE((*store)->AppendBatch(batch, {1, 0}).ok());
  ASSERT_TRUE((*store)->AppendBatch(Batch("proxy-a", 2, 700, 5), {2, 0}).ok());
  const std::vector<StoredRecord> all = ReadAll(**store);
  ASSERT_EQ(all.size(), 705u);
  ExpectNumberedInKeyOrder(all);
  // Pages of 7 from a cursor, as the delivery engine reads.
  std::vector<StoredRecord> page;
  StoreKey cursor;
  size_t seen = 0;
  for (;;) {
    auto read = (*store)->ReadInto(RecordFamily::kLogs, cursor, kEnd, 7, page);
    ASSERT_TRUE(read.ok()) << read.status();
    if (*read == 0) break;
    for (size_t i = 0; i < *read; ++i) {
      ASSERT_EQ(page[i].key, all[seen].key);
      ASSERT_EQ(page[i].record.path(), all[seen].record.path());
      ++seen;
    }
    cursor = page[*read - 1].key;
  }
  EXPECT_EQ(seen, all.size());
  for (size_t from : {0u, 1u, 150u, 151u, 300u, 699u, 700u, 703u}) {
    StoreKey last;
    auto count = (*store)->Count(RecordFamily::kLogs, all[from].key, kEnd, 1'000'000, &last);
    ASSERT_TRUE(count.ok());
    EXPECT_EQ(*count, all.size() - from - 1) << from;
    EXPECT_EQ(last, from + 1 < all.size() ? all.back().key : all[from].key) << from;
    count = (*store)->Count(RecordFamily::kLogs, all[from].key,
                            all[std::min<size_t>(from + 200, 704)].key, 1'000'000, &last);
    ASSERT_TRUE(count.ok());
    EXPECT_EQ(*count, std::min<size_t>(from + 200, 704) - from - 1) << from;
    count = (*store)->Count(RecordFamily::kLogs, all[from].key, kEnd, 3, &last);
    ASSERT_TRUE(count.ok());
    EXPECT_EQ(*count, std::min<size_t>(3, all.size() - from - 1)) << from;
    if (*count > 0) {
      EXPECT_EQ(last, all[from + *count].key) << from;
    }
    auto range = (*store)->Read(RecordFamily::kLogs, all[from].key,
                                all[std::min<size_t>(from + 200, 704)].key, 1000);
    ASSERT_TRUE(range.ok());
    ASSERT_EQ(range->size(), std::min<size_t>(from + 200, 704) - from - 1) << from;
    if (!range->empty()) {
      EXPECT_EQ(range->front().record.path(), all[from + 1].record.path());
    }
  }
}

// A store of format 1 (one record per value), 2 (plain chunks), 3 (trace_index per span) or 4
// (one span per value) is read as it is, marked format 5, and takes compressed chunks beside its
// old values.
TEST_F(RecordStoreTest, AStoreOfAnOlderFormatIsReadAndUpgraded) {
  for (const char* old_version : {"1", "2", "3", "4"}) {
    SCOPED_TRACE(old_version);
    const std::string dir = testing::MakeTempDir("store");
    {
      auto store = Open(Config(dir));
      ASSERT_TRUE(store.ok()) << store.status();
    }
    {
      RawDatabase raw(dir);
      ASSERT_TRUE(raw.status.ok());
      ASSERT_TRUE(
          raw.db->Put(rocksdb::WriteOptions(), raw.handles[5], "format_version", old_version).ok());
      for (uint64_t i = 0; i < 3; ++i) {
        ASSERT_TRUE(raw.db
                        ->Put(rocksdb::WriteOptions(), raw.handles[1],
                              StoreKey{1'000'000'000, 5 + i}.Encode(),
                              SerializedRecord("/old" + std::to_string(i)))
                        .ok());
      }
      if (std::string_view(old_version) == "2") {
        ASSERT_TRUE(raw.db
                        ->Put(rocksdb::WriteOptions(), raw.handles[1],
                              StoreKey{1'000'000'000, 8}.Encode(),
                              ChunkValue({SerializedRecord("/old3"), SerializedRecord("/old4")}))
                        .ok());
      }
    }
    const size_t old_records = std::string_view(old_version) == "2" ? 5 : 3;
    auto store = Open(Config(dir));
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_TRUE((*store)->AppendBatch(Batch("proxy-a", 1, 0, 2), {1, 0}).ok());
    const std::vector<StoredRecord> records = ReadAll(**store);
    ASSERT_EQ(records.size(), old_records + 2);
    for (size_t i = 0; i < old_records; ++i) {
      EXPECT_EQ(records[i].record.path(), "/old" + std::to_string(i));
      EXPECT_EQ(records[i].key, (StoreKey{1'000'000'000, 5 + i}));
    }
    EXPECT_EQ(records[old_records].record.path(), "/0");
    EXPECT_EQ(records[old_records + 1].record.path(), "/1");
    auto after_first =
        (*store)->Read(RecordFamily::kLogs, records[0].key, records[old_records + 1].key, 10);
    ASSERT_TRUE(after_first.ok());
    EXPECT_EQ(after_first->size(), old_records);
    auto counted = (*store)->Count(RecordFamily::kLogs, StoreKey{}, StoreKey{~0ull, ~0ull}, 100);
    ASSERT_TRUE(counted.ok());
    EXPECT_EQ(*counted, old_records + 2);
    ASSERT_TRUE((*store)->Close().ok());
    RawDatabase raw(dir);
    ASSERT_TRUE(raw.status.ok());
    std::string version;
    ASSERT_TRUE(
        raw.db->Get(rocksdb::ReadOptions(), raw.handles[5], "format_version", &version).ok());
    EXPECT_EQ(version, "5");
  }
}

TEST_F(RecordStoreTest, ADamagedStoreIsRefusedWithTheRepairCommandAndRepairBringsItBack) {
  const std::string dir = testing::MakeTempDir("store");
  {
    auto store = Open(Config(dir));
    ASSERT_TRUE(store.ok());
    for (uint64_t sequence = 1; sequence <= 5; ++sequence) {
      ASSERT_TRUE((*store)->AppendBatch(Batch("proxy-a", sequence, 0, 20), {sequence, 0}).ok());
    }
  }
  std::filesystem::remove(dir + "/CURRENT");
  auto refused = Open(Config(dir));
  ASSERT_FALSE(refused.ok());
  const std::string message(refused.status().message());
  EXPECT_NE(message.find("meshtelctl store repair --data-dir " + dir), std::string::npos)
      << message;
  EXPECT_NE(message.find("no CURRENT file"), std::string::npos) << message;
  // Nothing was wiped: the files are still there.
  EXPECT_FALSE(std::filesystem::exists(dir + "/CURRENT"));

  ASSERT_TRUE(RecordStore::Repair(dir).ok());
  auto repaired = Open(Config(dir));
  ASSERT_TRUE(repaired.ok()) << repaired.status();
  EXPECT_EQ(ReadAll(**repaired).size(), 100u);
  EXPECT_EQ((*repaired)->LoadInstanceProgress("proxy-a")->highest_sequence, 5u);
}

TEST_F(RecordStoreTest, RepairOfAMissingDirectoryIsNotFound) {
  EXPECT_EQ(RecordStore::Repair(testing::MakeTempDir("store") + "/absent").code(),
            absl::StatusCode::kNotFound);
}

meshtel::v1::Span StoredSpan(char trace, char span, const std::string& name) {
  meshtel::v1::Span out;
  out.set_trace_id(std::string(16, trace));
  out.set_span_id(std::string(8, span));
  out.set_name(name);
  return out;
}

TEST_F(RecordStoreTest, SpansAreStoredWithTheReadersProgressAndFoundByTraceId) {
  const std::string dir = testing::MakeTempDir("store");
  {
    absl::StatusOr<std::unique_ptr<RecordStore>> store = Open(Config(dir));
    ASSERT_TRUE(store.ok()) << store.status();
    const std::vector<meshtel::v1::Span> first = {StoredSpan('a', '1', "a1"),
                                                  StoredSpan('b', '1', "b1")};
    ASSERT_TRUE((*store)->AppendSpans(first, "@reader", StoreKey{5, 1}, StoreKey{9, 2}).ok());
    const std::vector<meshtel::v1::Span> second = {StoredSpan('a', '2', "a2")};
    ASSERT_TRUE((*store)->AppendSpans(second, "@reader", StoreKey{6, 0}, StoreKey{10, 0}).ok());
    // An empty write moves only the progress.
    ASSERT_TRUE(
        (*store)->AppendSpans(SerializedSpans{}, "@reader", StoreKey{7, 0}, StoreKey{11, 0}).ok());
  }
  absl::StatusOr<std::unique_ptr<RecordStore>> store = Open(Config(dir));
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ(*(*store)->LoadCursor("@reader"), (StoreKey{7, 0}));
  EXPECT_EQ(*(*store)->LoadReadHigh("@reader"), (StoreKey{11, 0}));
  EXPECT_EQ(*(*store)->LoadReadHigh("@other"), StoreKey{});

  absl::StatusOr<std::vector<StoredRecord>> trace = (*store)->ReadTrace(std::string(16, 'a'));
  ASSERT_TRUE(trace.ok()) << trace.status();
  ASSERT_EQ(trace->size(), 2u);
  EXPECT_EQ((*trace)[0].span.name(), "a1");
  EXPECT_EQ((*trace)[1].span.name(), "a2");
  EXPECT_EQ((*trace)[0].family, RecordFamily::kSpans);
  EXPECT_TRUE((*store)->ReadTrace(std::string(16, 'c'))->empty());
  EXPECT_TRUE((*store)->ReadTrace("short")->empty());
  EXPECT_TRUE(*(*store)->HasSpan(std::string(16, 'b'), std::string(8, '1')));
  EXPECT_FALSE(*(*store)->HasSpan(std::string(16, 'b'), std::string(8, '2')));

  // The spans family reads back spans, in storage order.
  absl::StatusOr<std::vector<StoredRecord>> spans =
      (*store)->Read(RecordFamily::kSpans, StoreKey{}, kEnd, 100);
  ASSERT_TRUE(spans.ok());
  ASSERT_EQ(spans->size(), 3u);
  EXPECT_EQ((*spans)[0].span.name(), "a1");
  EXPECT_EQ((*spans)[2].span.name(), "a2");
}

TEST_F(RecordStoreTest, ASpanDeadLetterKeepsTheSpan) {
  const std::string dir = testing::MakeTempDir("store");
  absl::StatusOr<std::unique_ptr<RecordStore>> store = Open(Config(dir));
  ASSERT_TRUE(store.ok()) << store.status();
  const std::vector<meshtel::v1::Span> spans = {StoredSpan('a', '1', "refused")};
  ASSERT_TRUE((*store)->AppendSpans(spans, "@reader", StoreKey{}, StoreKey{}).ok());
  absl::StatusOr<std::vector<StoredRecord>> stored =
      (*store)->Read(RecordFamily::kSpans, StoreKey{}, kEnd, 10);
  ASSERT_TRUE(stored.ok() && stored->size() == 1u);
  ASSERT_TRUE((*store)->PutDeadLetter("jaeger", stored->front(), "bad span", false).ok());
  absl::StatusOr<std::vector<RecordStore::DeadLetterEntry>> letters =
      (*store)->ListDeadLetters("jaeger", 10);
  ASSERT_TRUE(letters.ok() && letters->size() == 1u);
  EXPECT_EQ(letters->front().family, RecordFamily::kSpans);
  EXPECT_EQ(letters->front().span.name(), "refused");
}

// trace_index holds one entry per run of a trace's spans in one write; the entries of format 3
// (one per span) are read beside them.
TEST_F(RecordStoreTest, TraceIndexEntriesPerRunAndPerSpanAreBothRead) {
  const std::string dir = testing::MakeTempDir("store");
  {
    absl::StatusOr<std::unique_ptr<RecordStore>> store = Open(Config(dir));
    ASSERT_TRUE(store.ok()) << store.status();
    const std::vector<meshtel::v1::Span> spans = {
        StoredSpan('a', '1', "a1"), StoredSpan('a', '2', "a2"), StoredSpan('b', '1', "b1"),
        StoredSpan('a', '3', "a3"), StoredSpan('a', '4', "a4")};
    ASSERT_TRUE((*store)->AppendSpans(spans, "@reader", StoreKey{}, StoreKey{}).ok());
    // A span whose ids have other sizes is stored without an entry.
    meshtel::v1::Span odd = StoredSpan('c', '1', "odd");
    odd.set_span_id("short");
    ASSERT_TRUE((*store)->AppendSpans(std::vector{odd}, "@reader", StoreKey{}, StoreKey{}).ok());
  }
  {
    RawDatabase raw(dir);
    ASSERT_TRUE(raw.status.ok());
    std::vector<std::pair<std::string, std::string>> entries;
    std::unique_ptr<rocksdb::Iterator> it(
        raw.db->NewIterator(rocksdb::ReadOptions(), raw.handles[6]));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      entries.emplace_back(it->key().ToString(), it->value().ToString());
    }
    // Runs a1 a2 | b1 | a3 a4: three entries, keyed trace id + the run's first key.
    ASSERT_EQ(entries.size(), 3u);
    EXPECT_EQ(entries[0].first.size(), 32u);
    EXPECT_EQ(entries[0].second, std::string(8, '1') + std::string(8, '2'));
    EXPECT_EQ(entries[1].second, std::string(8, '3') + std::string(8, '4'));
    EXPECT_EQ(entries[2].first.substr(0, 16), std::string(16, 'b'));
    EXPECT_EQ(entries[2].second, std::string(8, '1'));
    // A format 3 entry: trace id + span id + the span's key, empty value.
    const StoreKey old_key{1'000, 7};
    ASSERT_TRUE(raw.db
                    ->Put(rocksdb::WriteOptions(), raw.handles[2], old_key.Encode(),
                          StoredSpan('a', '0', "a0").SerializeAsString())
                    .ok());
    ASSERT_TRUE(raw.db
                    ->Put(rocksdb::WriteOptions(), raw.handles[6],
                          std::string(16, 'a') + std::string(8, '0') + old_key.Encode(), "")
                    .ok());
    // A format 4 entry (one per run) whose spans are values of their own, as format 4 stored
    // them: read like the chunks the store writes now.
    const StoreKey run_key{2'000, 1};
    for (uint64_t i = 0; i < 2; ++i) {
      ASSERT_TRUE(raw.db
                      ->Put(rocksdb::WriteOptions(), raw.handles[2],
                            StoreKey{run_key.time_unix_nano, run_key.sequence + i}.Encode(),
                            StoredSpan('d', static_cast<char>('1' + i), "d" + std::to_string(i + 1))
                                .SerializeAsString())
                      .ok());
    }
    ASSERT_TRUE(raw.db
                    ->Put(rocksdb::WriteOptions(), raw.handles[6],
                          std::string(16, 'd') + run_key.Encode(),
                          std::string(8, '1') + std::string(8, '2'))
                    .ok());
    // Entries of neither form are skipped.
    ASSERT_TRUE(
        raw.db->Put(rocksdb::WriteOptions(), raw.handles[6], std::string(16, 'a') + "x", "").ok());
  }
  absl::StatusOr<std::unique_ptr<RecordStore>> store = Open(Config(dir));
  ASSERT_TRUE(store.ok()) << store.status();
  absl::StatusOr<std::vector<StoredRecord>> trace = (*store)->ReadTrace(std::string(16, 'a'));
  ASSERT_TRUE(trace.ok()) << trace.status();
  std::vector<std::string> names;
  for (const StoredRecord& span : *trace) names.push_back(span.span.name());
  EXPECT_EQ(names, (std::vector<std::string>{"a0", "a1", "a2", "a3", "a4"}));
  ASSERT_EQ((*store)->ReadTrace(std::string(16, 'b'))->size(), 1u);
  EXPECT_TRUE((*store)->ReadTrace(std::string(16, 'c'))->empty());
  for (const char span : {'0', '1', '2', '3', '4'}) {
    EXPECT_TRUE(*(*store)->HasSpan(std::string(16, 'a'), std::string(8, span))) << span;
  }
  EXPECT_FALSE(*(*store)->HasSpan(std::string(16, 'a'), std::string(8, '5')));
  EXPECT_TRUE(*(*store)->HasSpan(std::string(16, 'b'), std::string(8, '1')));
  EXPECT_FALSE(*(*store)->HasSpan(std::string(16, 'b'), std::string(8, '2')));
  absl::StatusOr<std::vector<StoredRecord>> old_run = (*store)->ReadTrace(std::string(16, 'd'));
  ASSERT_TRUE(old_run.ok()) << old_run.status();
  ASSERT_EQ(old_run->size(), 2u);
  EXPECT_EQ((*old_run)[0].span.name(), "d1");
  EXPECT_EQ((*old_run)[1].span.name(), "d2");
  EXPECT_EQ((*old_run)[1].key, (StoreKey{2'000, 2}));
}

// Spans are written in chunks (a few RocksDB values for a write of many spans, closed by count
// and by size) and read back whole from any position: by trace, by range and counted.
TEST_F(RecordStoreTest, SpansAreStoredInChunksAndReadFromAnyPosition) {
  const std::string dir = testing::MakeTempDir("store");
  absl::StatusOr<std::unique_ptr<RecordStore>> store = Open(Config(dir));
  ASSERT_TRUE(store.ok()) << store.status();
  // 700 spans of 40 traces in runs of 1 to 30; every 50th span is large (40 KB of name), so
  // chunks close by size before their count (64 KiB hold one such span).
  std::vector<meshtel::v1::Span> spans;
  std::map<char, std::vector<std::string>> names_by_trace;
  for (size_t i = 0; spans.size() < 700; ++i) {
    const char trace = static_cast<char>('A' + i % 40);
    for (size_t j = 0; j < 1 + (i * 7) % 30 && spans.size() < 700; ++j) {
      std::string name = absl::StrCat("span-", spans.size());
      if (spans.size() % 50 == 49) name.append(40'000, 'x');
      meshtel::v1::Span span = StoredSpan(trace, '0', name);
      span.set_span_id(absl::StrFormat("%08zu", spans.size()));
      names_by_trace[trace].push_back(name);
      spans.push_back(std::move(span));
    }
  }
  ASSERT_TRUE((*store)->AppendSpans(spans, "@reader", StoreKey{}, StoreKey{}).ok());
  const std::vector<meshtel::v1::Span> later = {StoredSpan('A', 'z', "later")};
  ASSERT_TRUE((*store)->AppendSpans(later, "@reader", StoreKey{}, StoreKey{}).ok());
  names_by_trace['A'].push_back("later");

  for (const auto& [trace, names] : names_by_trace) {
    absl::StatusOr<std::vector<StoredRecord>> read = (*store)->ReadTrace(std::string(16, trace));
    ASSERT_TRUE(read.ok()) << read.status();
    std::vector<std::string> got;
    for (const StoredRecord& span : *read) got.push_back(span.span.name());
    EXPECT_EQ(got, names) << trace;
  }
  const StoreKey kEnd{~0ull, ~0ull};
  absl::StatusOr<std::vector<StoredRecord>> all =
      (*store)->Read(RecordFamily::kSpans, StoreKey{}, kEnd, 10'000);
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), 701u);
  for (size_t i = 0; i < 700; ++i) {
    ASSERT_EQ((*all)[i].span.name(), spans[i].name()) << i;
    if (i > 0) {
      ASSERT_LT((*all)[i - 1].key, (*all)[i].key) << i;
    }
  }
  for (size_t from : {0, 1, 255, 256, 257, 499, 697}) {
    absl::StatusOr<std::vector<StoredRecord>> tail =
        (*store)->Read(RecordFamily::kSpans, (*all)[from].key, kEnd, 3);
    ASSERT_TRUE(tail.ok());
    ASSERT_EQ(tail->size(), 3u) << from;
    EXPECT_EQ(tail->front().key, (*all)[from + 1].key) << from;
    absl::StatusOr<uint64_t> counted =
        (*store)->Count(RecordFamily::kSpans, (*all)[from].key, kEnd, 10'000);
    ASSERT_TRUE(counted.ok());
    EXPECT_EQ(*counted, 700 - from) << from;
  }
  ASSERT_TRUE((*store)->Close().ok());

  // The spans family holds chunks: at least 14 (each large span closes one), far fewer than 701.
  RawDatabase raw(dir);
  ASSERT_TRUE(raw.status.ok());
  size_t values = 0;
  std::unique_ptr<rocksdb::Iterator> it(
      raw.db->NewIterator(rocksdb::ReadOptions(), raw.handles[2]));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    EXPECT_TRUE(IsRecordChunk(std::string_view(it->value().data(), it->value().size())));
    ++values;
  }
  EXPECT_GE(values, 14u);
  EXPECT_LE(values, 30u);
}

// trace_index's memtable is a hash on the trace id and its table files have a prefix filter:
// each trace is found whole, and no other, whether its entries are in table files, in the
// memtable or replayed from the write-ahead log, and ids that share all but a byte with a stored
// one find nothing.
TEST_F(RecordStoreTest, TracesAreFoundByIdInTableFilesMemtablesAndAfterAReopen) {
  const std::string dir = testing::MakeTempDir("store");
  std::map<std::string, std::vector<std::string>> names_by_trace;
  const auto trace_id = [](size_t i) {
    std::string id(16, '\0');
    for (size_t b = 0; b < 16; ++b) id[b] = static_cast<char>((i * 2654435761u) >> (b % 4 * 8));
    id[15] = static_cast<char>(i);
    return id;
  };
  const auto check = [&](RecordStore& store) {
    for (const auto& [trace, names] : names_by_trace) {
      absl::StatusOr<std::vector<StoredRecord>> read = store.ReadTrace(trace);
      ASSERT_TRUE(read.ok()) << read.status();
      std::vector<std::string> got;
      for (const StoredRecord& span : *read) got.push_back(span.span.name());
      EXPECT_EQ(got, names);
      std::string neighbour = trace;
      neighbour[15] = static_cast<char>(neighbour[15] ^ 0x80);
      if (names_by_trace.count(neighbour) == 0) {
        EXPECT_TRUE(store.ReadTrace(neighbour)->empty());
      }
      neighbour = trace;
      neighbour[0] = static_cast<char>(neighbour[0] ^ 0x01);
      if (names_by_trace.count(neighbour) == 0) {
        EXPECT_TRUE(store.ReadTrace(neighbour)->empty());
      }
    }
  };
  {
    absl::StatusOr<std::unique_ptr<RecordStore>> store = Open(Config(dir));
    ASSERT_TRUE(store.ok()) << store.status();
    // Three writes of 2 to 4 spans for each of 150 traces; some traces in more than one write.
    // The first two writes are flushed to table files, the third stays in the memtable.
    for (size_t write = 0; write < 3; ++write) {
      std::vector<meshtel::v1::Span> spans;
      for (size_t t = write * 100; t < write * 100 + 150; ++t) {
        const std::string trace = trace_id(t % 300);
        for (size_t s = 0; s < 2 + t % 3; ++s) {
          meshtel::v1::Span span;
          span.set_trace_id(trace);
          span.set_span_id(absl::StrFormat("%08zu", spans.size()));
          span.set_name(absl::StrCat("write-", write, "-trace-", t, "-span-", s));
          names_by_trace[trace].push_back(span.name());
          spans.push_back(std::move(span));
        }
      }
      ASSERT_TRUE((*store)->AppendSpans(spans, "@reader", StoreKey{}, StoreKey{}).ok());
      if (write < 2) {
        ASSERT_TRUE((*store)->FlushRecords().ok());
      }
    }
    check(**store);
  }
  absl::StatusOr<std::unique_ptr<RecordStore>> reopened = Open(Config(dir));
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  check(**reopened);
}

TEST_F(RecordStoreTest, RetentionOfSpansLeavesNoTraceBehind) {
  const std::string dir = testing::MakeTempDir("store");
  absl::StatusOr<std::unique_ptr<RecordStore>> store = Open(Config(dir));
  ASSERT_TRUE(store.ok()) << store.status();
  const std::vector<meshtel::v1::Span> old_spans = {StoredSpan('a', '1', "old")};
  ASSERT_TRUE((*store)->AppendSpans(old_spans, "@reader", StoreKey{}, StoreKey{}).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  const uint64_t cut = static_cast<uint64_t>(absl::ToUnixNanos(absl::Now()));
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  const std::vector<meshtel::v1::Span> new_spans = {StoredSpan('a', '2', "new")};
  ASSERT_TRUE((*store)->AppendSpans(new_spans, "@reader", StoreKey{}, StoreKey{}).ok());
  ASSERT_TRUE((*store)->DeleteBefore(RecordFamily::kSpans, cut).ok());
  absl::StatusOr<std::vector<StoredRecord>> trace = (*store)->ReadTrace(std::string(16, 'a'));
  ASSERT_TRUE(trace.ok());
  ASSERT_EQ(trace->size(), 1u);
  EXPECT_EQ(trace->front().span.name(), "new");
}

}  // namespace
}  // namespace meshtel::collector
