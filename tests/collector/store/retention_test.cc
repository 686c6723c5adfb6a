#include "collector/store/retention.h"

#include <algorithm>
#include <random>
#include <thread>

#include "gtest/gtest.h"
#include "prometheus/text_serializer.h"
#include "tests/support/metrics_text.h"
#include "tests/support/process.h"

namespace meshtel::collector {
namespace {

constexpr StoreKey kEnd{~uint64_t{0}, ~uint64_t{0}};

class RetentionTest : public ::testing::Test {
 protected:
  void Open(uint64_t max_bytes, absl::Duration max_age = absl::Hours(1)) {
    config_.data_dir = testing::MakeTempDir("retention");
    config_.durability = "process";
    config_.max_bytes = max_bytes;
    config_.max_age = max_age;
    config_.retention_interval = absl::Hours(1);  // only the bytes written trigger a run
    auto store = RecordStore::Open(config_, registry_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }
  // One batch of `count` records of about `size` bytes each (random, so they do not compress).
  void Append(int count, size_t size) {
    meshtel::v1::RecordBatch batch;
    batch.set_proxy_instance_id("proxy-a");
    batch.set_sequence(++sequence_);
    for (int i = 0; i < count; ++i) {
      auto* record = batch.add_records();
      std::string path(size, ' ');
      for (char& c : path) c = static_cast<char>('a' + random_() % 26);
      record->set_path(path);
    }
    ASSERT_TRUE(store_->AppendBatch(batch, {sequence_, 0}).ok());
  }
  // False when the store refused the batch for being at its byte limit.
  bool AppendOrRefused(int count, size_t size) {
    meshtel::v1::RecordBatch batch;
    batch.set_proxy_instance_id("proxy-a");
    batch.set_sequence(sequence_ + 1);
    for (int i = 0; i < count; ++i) {
      std::string path(size, ' ');
      for (char& c : path) c = static_cast<char>('a' + random_() % 26);
      batch.add_records()->set_path(path);
    }
    absl::Status status = store_->AppendBatch(batch, {sequence_ + 1, 0});
    if (status.ok()) ++sequence_;
    EXPECT_TRUE(status.ok() || absl::IsUnavailable(status)) << status;
    return status.ok();
  }
  uint64_t Stored() { return *store_->Count(RecordFamily::kLogs, StoreKey{}, kEnd, 1 << 30); }
  double Metric(const std::string& name, const std::vector<std::string>& fragments) {
    return testing::SumSamples(prometheus::TextSerializer().Serialize(registry_.Collect()), name,
                               fragments);
  }

  StoreConfig config_;
  prometheus::Registry registry_;
  std::unique_ptr<RecordStore> store_;
  uint64_t sequence_ = 0;
  std::mt19937 random_{11};
};

TEST_F(RetentionTest, OldRecordsAreDeletedAndWhatAnExporterMissedIsCounted) {
  Open(uint64_t{1} << 30, absl::Minutes(10));
  for (int i = 0; i < 4; ++i) Append(25, 100);
  // The exporter "behind" has delivered 30 of the 100 records; "done" has delivered all.
  auto records = store_->Read(RecordFamily::kLogs, StoreKey{}, kEnd, 1000);
  ASSERT_TRUE(records.ok());
  ASSERT_EQ(records->size(), 100u);
  ASSERT_TRUE(store_->SaveCursor("behind", (*records)[29].key).ok());
  ASSERT_TRUE(store_->SaveCursor("done", records->back().key).ok());
  Retention retention(*store_, config_, {{"behind"}, {"done"}}, registry_);

  // Nothing is old yet.
  EXPECT_EQ(*retention.RunOnce(absl::Now()), 0u);
  EXPECT_EQ(Stored(), 100u);
  // Eleven minutes later everything is past max_age.
  EXPECT_EQ(*retention.RunOnce(absl::Now() + absl::Minutes(11)), 100u);
  EXPECT_EQ(Stored(), 0u);
  EXPECT_EQ(Metric("meshtel_store_dropped_total", {"exporter=\"behind\"", "max_age"}), 70);
  EXPECT_EQ(Metric("meshtel_store_dropped_total", {"exporter=\"done\""}), 0);
  EXPECT_EQ(Metric("meshtel_store_deleted_total", {"family=\"logs\"", "max_age"}), 100);
  // New records after the deletion are kept and readable after the old cursor.
  Append(5, 100);
  auto after = store_->Read(RecordFamily::kLogs, (*records)[29].key, kEnd, 100);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->size(), 5u);
}

TEST_F(RetentionTest, DiskUseStaysWithinTheLimitUnderSustainedWrites) {
  constexpr uint64_t kLimit = 48ull << 20;
  Open(kLimit);
  Retention retention(*store_, config_, {{"slow"}}, registry_);
  retention.Start();
  uint64_t peak = 0;
  uint64_t written = 0;
  // About 240 MiB of records: five times the limit.
  uint64_t refused = 0;
  while (written < 5 * kLimit) {
    if (!AppendOrRefused(200, 400)) {
      ++refused;  // the store is at its limit: a proxy would resend, so do we, a moment later
      ASSERT_LT(refused, 20000u) << "retention never made room (disk " << store_->DiskBytes()
                                 << " bytes, retainable " << store_->retainable_bytes() << ")";
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      continue;
    }
    written += 200 * 400;
    peak = std::max(peak, store_->DiskBytes());
  }
  retention.Stop();
  const uint64_t final_bytes = store_->DiskBytes();
  std::printf(
      "retention: wrote %llu MiB, disk peak %.1f MiB, at the end %.1f MiB (limit %llu MiB), "
      "%llu batches refused and resent\n",
      static_cast<unsigned long long>(written >> 20), peak / 1048576.0, final_bytes / 1048576.0,
      static_cast<unsigned long long>(kLimit >> 20), static_cast<unsigned long long>(refused));
  EXPECT_LE(peak, kLimit);
  EXPECT_LE(final_bytes, kLimit);
  // The newest records are still there; the oldest went, and the exporter's loss is counted.
  const uint64_t kept = Stored();
  EXPECT_GT(kept, 0u);
  EXPECT_LT(kept, written / 400);
  EXPECT_EQ(Metric("meshtel_store_dropped_total", {"exporter=\"slow\"", "max_bytes"}),
            static_cast<double>(written / 400 - kept));
}

}  // namespace
}  // namespace meshtel::collector
