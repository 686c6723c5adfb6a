// One CollectorStream against the real collector ingest server on loopback.

#include "proxy/reporter/collector_stream.h"

#include <mutex>

#include "collector/ingest/record_ingest_server.h"
#include "gtest/gtest.h"
#include "tests/support/process.h"

namespace meshtel::proxy {
namespace {

using std::chrono::seconds;

class BatchSink : public collector::RecordBatchSink {
 public:
  absl::StatusOr<collector::InstanceProgress> LoadProgress(std::string_view) override {
    return collector::InstanceProgress{};
  }
  void CountStored(const meshtel::v1::RecordBatch&) override {}
  absl::Status Consume(const meshtel::v1::RecordBatch& batch,
                       const collector::InstanceProgress&) override {
    std::lock_guard<std::mutex> lock(mutex_);
    batches_.push_back(batch);
    return absl::OkStatus();
  }
  std::vector<meshtel::v1::RecordBatch> batches() {
    std::lock_guard<std::mutex> lock(mutex_);
    return batches_;
  }

 private:
  std::mutex mutex_;
  std::vector<meshtel::v1::RecordBatch> batches_;
};

ReporterConfig FastConfig() {
  ReporterConfig config;
  config.reconnect_initial_backoff = absl::Milliseconds(20);
  config.reconnect_max_backoff = absl::Milliseconds(200);
  return config;
}

std::vector<std::string> Records(int count, const std::string& path) {
  meshtel::v1::RequestRecord record;
  record.set_path(path);
  return std::vector<std::string>(count, record.SerializeAsString());
}

TEST(CollectorStreamTest, SequencesBatchesAndCarriesTheDropCount) {
  const uint16_t port = testing::FreePort();
  ReporterCounters counters;
  // Nothing listens yet: with a 64 KiB bound the oldest batches are dropped.
  CollectorStream stream(FastConfig(), {"127.0.0.1", port}, "proxy-x", 64 << 10, counters);
  EXPECT_EQ(stream.address(), "127.0.0.1:" + std::to_string(port));
  for (int i = 0; i < 10; ++i) stream.Enqueue(Records(10, std::string(1000, 'a' + i)));
  EXPECT_LE(stream.unacked_bytes(), 64u << 10);
  const uint64_t dropped = counters.dropped.load();
  EXPECT_GT(dropped, 0u);
  EXPECT_EQ(stream.unacked_records() + dropped, 100u);
  stream.AddDropped(7);

  BatchSink sink;
  prometheus::Registry registry;
  collector::IngestConfig config;
  config.listen = common::HostPort{"127.0.0.1", port};
  auto server = collector::RecordIngestServer::Start(config, sink, registry);
  ASSERT_TRUE(server.ok()) << server.status();
  stream.Enqueue(Records(1, "/last"));
  EXPECT_EQ(stream.WaitForAcks(absl::Seconds(30)), 0u);
  const auto batches = sink.batches();
  ASSERT_FALSE(batches.empty());
  // The survivors arrive in sequence order; sequences count every batch, dropped ones too.
  for (size_t i = 1; i < batches.size(); ++i) {
    EXPECT_EQ(batches[i].sequence(), batches[i - 1].sequence() + 1);
  }
  EXPECT_EQ(batches.back().sequence(), 11u);
  EXPECT_EQ(batches.back().records(0).path(), "/last");
  EXPECT_EQ(batches.back().dropped_records_total(), dropped + 7);
  EXPECT_EQ(batches.back().proxy_instance_id(), "proxy-x");
  EXPECT_EQ(counters.acked.load(), 100u - dropped + 1);
  stream.Stop();
  (*server)->Shutdown(absl::ZeroDuration());
}

TEST(CollectorStreamTest, TakeUnackedHandsBackEveryRecordInOrder) {
  ReporterCounters counters;
  CollectorStream stream(FastConfig(), {"127.0.0.1", testing::FreePort()}, "proxy-y", 16 << 20,
                         counters);
  stream.Enqueue(Records(3, "/one"));
  stream.Enqueue(Records(2, "/two"));
  EXPECT_FALSE(stream.connected());
  const auto records = stream.TakeUnacked();
  ASSERT_EQ(records.size(), 5u);
  meshtel::v1::RequestRecord first;
  meshtel::v1::RequestRecord last;
  ASSERT_TRUE(first.ParseFromString(records[0].bytes));
  ASSERT_TRUE(last.ParseFromString(records[4].bytes));
  EXPECT_EQ(first.path(), "/one");
  EXPECT_EQ(last.path(), "/two");
  EXPECT_EQ(stream.unacked_records(), 0u);
  EXPECT_EQ(stream.unacked_bytes(), 0u);
  EXPECT_EQ(stream.WaitForAcks(absl::ZeroDuration()), 0u);
}

}  // namespace
}  // namespace meshtel::proxy
