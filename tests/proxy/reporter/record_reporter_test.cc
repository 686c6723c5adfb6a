// The reporter against the real collector ingest server on loopback.

#include "proxy/reporter/record_reporter.h"

#include <mutex>

#include "collector/ingest/record_ingest_server.h"
#include "gtest/gtest.h"
#include "tests/support/process.h"

namespace meshtel::proxy {
namespace {

using std::chrono::seconds;

class CountingSink : public collector::RecordBatchSink {
 public:
  absl::Status Consume(const meshtel::v1::RecordBatch& batch) override {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& record : batch.records()) paths_.push_back(record.path());
    return absl::OkStatus();
  }
  size_t count() {
    std::lock_guard<std::mutex> lock(mutex_);
    return paths_.size();
  }
  std::vector<std::string> paths() {
    std::lock_guard<std::mutex> lock(mutex_);
    return paths_;
  }

 private:
  std::mutex mutex_;
  std::vector<std::string> paths_;
};

class Collector {
 public:
  Collector(uint16_t port, CountingSink& sink, uint64_t max_batch_bytes = 4 << 20) {
    collector::IngestConfig config;
    config.listen = common::HostPort{"127.0.0.1", port};
    config.max_batch_bytes = max_batch_bytes;
    auto server = collector::RecordIngestServer::Start(config, sink, registry_);
    EXPECT_TRUE(server.ok()) << server.status();
    if (server.ok()) server_ = *std::move(server);
  }
  void Stop() { server_->Shutdown(absl::ZeroDuration()); }

 private:
  prometheus::Registry registry_;
  std::unique_ptr<collector::RecordIngestServer> server_;
};

ReporterConfig FastConfig(uint16_t port) {
  ReporterConfig config;
  config.collectors = {common::HostPort{"127.0.0.1", port}};
  config.flush_interval = absl::Milliseconds(20);
  config.max_batch_records = 50;
  config.reconnect_initial_backoff = absl::Milliseconds(20);
  config.reconnect_max_backoff = absl::Milliseconds(200);
  return config;
}

meshtel::v1::RequestRecord Record(const std::string& path) {
  meshtel::v1::RequestRecord record;
  record.set_path(path);
  record.set_response_code(200);
  return record;
}

TEST(RecordReporterTest, DeliversEveryRecordOnce) {
  const uint16_t port = testing::FreePort();
  CountingSink sink;
  Collector collector(port, sink);
  RecordReporter reporter(FastConfig(port), "proxy-1");
  for (int i = 0; i < 1000; ++i) reporter.Submit(Record("/" + std::to_string(i)));
  ASSERT_TRUE(testing::WaitFor([&] { return reporter.acked_records() == 1000; }, seconds(30)));
  EXPECT_EQ(sink.count(), 1000u);
  EXPECT_EQ(sink.paths().front(), "/0");
  EXPECT_EQ(sink.paths().back(), "/999");
  EXPECT_EQ(reporter.unacked_bytes(), 0u);
  EXPECT_EQ(reporter.Shutdown(absl::Seconds(5)), 0u);
}

TEST(RecordReporterTest, KeepsRecordsWhileTheCollectorIsDownAndSendsThemLater) {
  const uint16_t port = testing::FreePort();
  RecordReporter reporter(FastConfig(port), "proxy-2");
  for (int i = 0; i < 300; ++i) reporter.Submit(Record("/early"));
  ASSERT_TRUE(testing::WaitFor([&] { return reporter.unacked_bytes() > 0; }, seconds(10)));
  EXPECT_FALSE(reporter.connected());
  EXPECT_EQ(reporter.acked_records(), 0u);

  CountingSink sink;
  Collector collector(port, sink);
  ASSERT_TRUE(testing::WaitFor([&] { return reporter.acked_records() == 300; }, seconds(30)));
  EXPECT_EQ(sink.count(), 300u);
  EXPECT_EQ(reporter.dropped_records(), 0u);
}

TEST(RecordReporterTest, CollectorRestartLosesNothingAcknowledgedAndDuplicatesNothing) {
  const uint16_t port = testing::FreePort();
  CountingSink sink;
  auto collector = std::make_unique<Collector>(port, sink);
  RecordReporter reporter(FastConfig(port), "proxy-3");
  for (int i = 0; i < 200; ++i) reporter.Submit(Record("/a"));
  ASSERT_TRUE(testing::WaitFor([&] { return reporter.acked_records() == 200; }, seconds(30)));
  collector->Stop();
  collector.reset();
  for (int i = 0; i < 200; ++i) reporter.Submit(Record("/b"));
  // Same sink: the restarted collector's state is gone, but the resent batches are new to it.
  collector = std::make_unique<Collector>(port, sink);
  ASSERT_TRUE(testing::WaitFor([&] { return reporter.acked_records() == 400; }, seconds(30)));
  EXPECT_EQ(sink.count(), 400u);
}

TEST(RecordReporterTest, BoundedBufferDropsOldestAndCountsThem) {
  const uint16_t port = testing::FreePort();
  ReporterConfig config = FastConfig(port);
  config.max_unacked_bytes = 64 * 1024;
  RecordReporter reporter(config, "proxy-4");
  const std::string path(1000, 'p');
  for (int i = 0; i < 1000; ++i) reporter.Submit(Record(path + std::to_string(i)));
  ASSERT_TRUE(testing::WaitFor([&] { return reporter.dropped_records() > 0; }, seconds(10)));
  // Let the batcher take everything pending, then check the bound.
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        return reporter.dropped_records() + 0 > 0 && reporter.unacked_bytes() <= 64 * 1024 + 60000;
      },
      seconds(10)));
  EXPECT_LE(reporter.unacked_bytes(), 64u * 1024 + 60000);  // at most one batch over the bound

  CountingSink sink;
  Collector collector(port, sink);
  ASSERT_TRUE(testing::WaitFor(
      [&] { return reporter.acked_records() + reporter.dropped_records() == 1000; }, seconds(30)));
  EXPECT_EQ(sink.count(), reporter.acked_records());
  // What survived is the newest records, in order.
  EXPECT_EQ(sink.paths().back(), path + "999");
}

TEST(RecordReporterTest, RejectedBatchIsDroppedAndCountedAndOthersFlow) {
  const uint16_t port = testing::FreePort();
  CountingSink sink;
  Collector collector(port, sink, /*max_batch_bytes=*/16 * 1024);
  ReporterConfig config = FastConfig(port);
  config.max_batch_records = 1;
  RecordReporter reporter(config, "proxy-5");
  reporter.Submit(Record("/small-1"));
  reporter.Submit(Record(std::string(32 * 1024, 'x')));
  reporter.Submit(Record("/small-2"));
  ASSERT_TRUE(testing::WaitFor([&] { return reporter.acked_records() == 2; }, seconds(30)));
  EXPECT_EQ(reporter.rejected_records(), 1u);
  EXPECT_EQ(sink.paths(), (std::vector<std::string>{"/small-1", "/small-2"}));
  EXPECT_EQ(reporter.unacked_bytes(), 0u);
}

TEST(RecordReporterTest, BatchOverTheHardLimitIsDroppedNotResentForever) {
  const uint16_t port = testing::FreePort();
  CountingSink sink;
  // 16 KiB soft limit: gRPC itself refuses messages over 64 KiB and ends the stream.
  Collector collector(port, sink, /*max_batch_bytes=*/16 * 1024);
  ReporterConfig config = FastConfig(port);
  config.max_batch_records = 1;
  RecordReporter reporter(config, "proxy-7");
  reporter.Submit(Record("/before"));
  ASSERT_TRUE(testing::WaitFor([&] { return reporter.acked_records() == 1; }, seconds(30)));
  reporter.Submit(Record(std::string(200 * 1024, 'x')));
  reporter.Submit(Record("/after"));
  ASSERT_TRUE(testing::WaitFor([&] { return reporter.acked_records() == 2; }, seconds(30)));
  EXPECT_EQ(reporter.rejected_records(), 1u);
  EXPECT_EQ(sink.paths(), (std::vector<std::string>{"/before", "/after"}));
}

TEST(RecordReporterTest, ShutdownReportsWhatWasNeverAcknowledged) {
  RecordReporter reporter(FastConfig(testing::FreePort()), "proxy-6");
  for (int i = 0; i < 10; ++i) reporter.Submit(Record("/x"));
  EXPECT_EQ(reporter.Shutdown(absl::Milliseconds(100)), 10u);
  reporter.Submit(Record("/late"));  // after shutdown: dropped, never blocks
  EXPECT_EQ(reporter.dropped_records(), 1u);
}

}  // namespace
}  // namespace meshtel::proxy
