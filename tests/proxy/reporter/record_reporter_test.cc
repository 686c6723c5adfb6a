// The reporter against the real collector ingest server on loopback.

#include "proxy/reporter/record_reporter.h"

#include <algorithm>
#include <fstream>
#include <mutex>
#include <set>

#include "collector/ingest/record_ingest_server.h"
#include "gtest/gtest.h"
#include "tests/support/process.h"

namespace meshtel::proxy {
namespace {

using std::chrono::seconds;

class CountingSink : public collector::RecordBatchSink {
 public:
  absl::StatusOr<collector::InstanceProgress> LoadProgress(std::string_view) override {
    return collector::InstanceProgress{};
  }
  void CountStored(const meshtel::v1::RecordBatch&) override {}
  absl::Status Consume(const meshtel::v1::RecordBatch& batch,
                       const collector::InstanceProgress&) override {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& record : batch.records()) {
      paths_.push_back(record.path());
      trace_ids_.insert(record.trace_id());
      if (!record.sampled()) ++unsampled_;
    }
    instance_ids_.insert(batch.proxy_instance_id());
    return absl::OkStatus();
  }
  std::set<std::string> trace_ids() {
    std::lock_guard<std::mutex> lock(mutex_);
    return trace_ids_;
  }
  std::set<std::string> instance_ids() {
    std::lock_guard<std::mutex> lock(mutex_);
    return instance_ids_;
  }
  size_t unsampled() {
    std::lock_guard<std::mutex> lock(mutex_);
    return unsampled_;
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
  std::set<std::string> trace_ids_;
  std::set<std::string> instance_ids_;
  size_t unsampled_ = 0;
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

meshtel::v1::RequestRecord Traced(int trace, bool sampled) {
  meshtel::v1::RequestRecord record = Record("/traced");
  record.set_trace_id(std::string(12, 't') + std::to_string(1000 + trace));  // 16 bytes
  record.set_sampled(sampled);
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

// The access log gets a line for every record the batcher takes, in submission order, and the
// records the queue refused count as dropped lines; nothing needs a collector.
TEST(RecordReporterTest, AccessLogGetsEveryRecordOrCountsItDropped) {
  const std::string path = testing::MakeTempDir("reporter-access-log") + "/access.log";
  AccessLogConfig log_config;
  log_config.path = path;
  log_config.render.format = "%REQ(:PATH)%";
  auto access_log = AccessLogWriter::Open(log_config);
  ASSERT_TRUE(access_log.ok()) << access_log.status();
  ReporterConfig config = FastConfig(testing::FreePort());  // no collector there
  config.max_queued_records = 64;
  constexpr int kRecords = 2000;
  {
    RecordReporter reporter(config, "proxy-log", access_log->get());
    for (int i = 0; i < kRecords; ++i) reporter.Submit(Record("/p" + std::to_string(i)));
    reporter.Shutdown(absl::ZeroDuration());
    EXPECT_EQ((*access_log)->dropped_lines(), reporter.dropped_records());
  }
  (*access_log)->Shutdown();
  EXPECT_EQ((*access_log)->written_lines() + (*access_log)->dropped_lines(),
            static_cast<uint64_t>(kRecords));
  std::ifstream in(path);
  std::vector<int> written;
  for (std::string line; std::getline(in, line);) {
    ASSERT_EQ(line.rfind("/p", 0), 0u) << line;
    written.push_back(std::stoi(line.substr(2)));
  }
  EXPECT_EQ(written.size(), (*access_log)->written_lines());
  EXPECT_TRUE(std::is_sorted(written.begin(), written.end()));
  EXPECT_EQ(std::adjacent_find(written.begin(), written.end()), written.end());  // no repeats
}

TEST(RendezvousTest, WeightsAreStableAndSpreadTraces) {
  EXPECT_EQ(RendezvousWeight("trace-a", "10.0.0.1:15140"),
            RendezvousWeight("trace-a", "10.0.0.1:15140"));
  EXPECT_NE(RendezvousWeight("trace-a", "10.0.0.1:15140"),
            RendezvousWeight("trace-a", "10.0.0.2:15140"));
  // Fixed inputs give a fixed weight on every machine and run (proxies must agree).
  EXPECT_EQ(RendezvousWeight("", ""), RendezvousWeight(std::string_view(), std::string_view()));
  int first_wins = 0;
  for (int trace = 0; trace < 1000; ++trace) {
    const std::string id = "trace-" + std::to_string(trace);
    if (RendezvousWeight(id, "10.0.0.1:15140") > RendezvousWeight(id, "10.0.0.2:15140")) {
      ++first_wins;
    }
  }
  EXPECT_GT(first_wins, 400);
  EXPECT_LT(first_wins, 600);
}

TEST(RecordReporterTest, SeveralCollectorsGetWholeTracesAndShareTheRest) {
  const uint16_t port_a = testing::FreePort();
  const uint16_t port_b = testing::FreePort();
  CountingSink sink_a;
  CountingSink sink_b;
  Collector collector_a(port_a, sink_a);
  Collector collector_b(port_b, sink_b);
  ReporterConfig config = FastConfig(port_a);
  config.collectors.push_back(common::HostPort{"127.0.0.1", port_b});
  RecordReporter reporter(config, "proxy-8");
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        const auto statuses = reporter.collectors();
        return statuses[0].connected && statuses[1].connected;
      },
      seconds(30)));
  // 40 sampled traces of 5 records each, interleaved, and 100 unsampled records.
  for (int round = 0; round < 5; ++round) {
    for (int trace = 0; trace < 40; ++trace) reporter.Submit(Traced(trace, true));
    for (int i = 0; i < 20; ++i) reporter.Submit(Traced(100 + round * 20 + i, false));
  }
  ASSERT_TRUE(testing::WaitFor([&] { return reporter.acked_records() == 300; }, seconds(30)));
  EXPECT_EQ(sink_a.count() + sink_b.count(), 300u);
  // Each sampled trace went to exactly one collector: the one its rendezvous weight picks.
  const std::string address_a = "127.0.0.1:" + std::to_string(port_a);
  const std::string address_b = "127.0.0.1:" + std::to_string(port_b);
  const std::set<std::string> traces_a = sink_a.trace_ids();
  const std::set<std::string> traces_b = sink_b.trace_ids();
  int on_a = 0;
  for (int trace = 0; trace < 40; ++trace) {
    const std::string id = Traced(trace, true).trace_id();
    const bool want_a = RendezvousWeight(id, address_a) >= RendezvousWeight(id, address_b);
    EXPECT_EQ(traces_a.count(id), want_a ? 1u : 0u) << trace;
    EXPECT_EQ(traces_b.count(id), want_a ? 0u : 1u) << trace;
    on_a += want_a;
  }
  EXPECT_GT(on_a, 0);
  EXPECT_LT(on_a, 40);
  // Unsampled records are spread over both.
  EXPECT_EQ(sink_a.unsampled() + sink_b.unsampled(), 100u);
  EXPECT_GE(sink_a.unsampled(), 40u);
  EXPECT_GE(sink_b.unsampled(), 40u);
  // Each stream has its own sequence space, named by the collector it goes to.
  EXPECT_EQ(sink_a.instance_ids(), (std::set<std::string>{"proxy-8@" + address_a}));
  EXPECT_EQ(sink_b.instance_ids(), (std::set<std::string>{"proxy-8@" + address_b}));
}

TEST(RecordReporterTest, ADeadCollectorsShareFailsOverToTheLiveOne) {
  const uint16_t live_port = testing::FreePort();
  const uint16_t dead_port = testing::FreePort();  // nothing ever listens here
  CountingSink sink;
  Collector collector(live_port, sink);
  ReporterConfig config = FastConfig(live_port);
  config.collectors.push_back(common::HostPort{"127.0.0.1", dead_port});
  config.failover_after = absl::Milliseconds(500);
  RecordReporter reporter(config, "proxy-9");
  // Submitted at once, within the dead collector's grace: traces that hash to it wait there.
  for (int trace = 0; trace < 100; ++trace) reporter.Submit(Traced(trace, true));
  ASSERT_TRUE(testing::WaitFor([&] { return reporter.acked_records() == 100; }, seconds(30)));
  EXPECT_EQ(sink.count(), 100u);
  EXPECT_GT(reporter.failed_over_records(), 0u);
  EXPECT_EQ(reporter.dropped_records(), 0u);
  // Later records go straight to the live collector.
  const uint64_t moved = reporter.failed_over_records();
  for (int trace = 0; trace < 100; ++trace) reporter.Submit(Traced(trace, true));
  ASSERT_TRUE(testing::WaitFor([&] { return reporter.acked_records() == 200; }, seconds(30)));
  EXPECT_EQ(reporter.failed_over_records(), moved);
  EXPECT_EQ(reporter.unacked_bytes(), 0u);
}

TEST(RecordReporterTest, FullQueueDropsAndCountsWithoutBlocking) {
  ReporterConfig config = FastConfig(testing::FreePort());
  config.max_queued_records = 64;
  // Below max_batch_records (which the config file would refuse): the batcher never wakes
  // early, so the queue fills deterministically.
  config.flush_interval = absl::Seconds(30);
  config.max_batch_records = 1000;
  RecordReporter reporter(config, "proxy-10");
  for (int i = 0; i < 1000; ++i) reporter.Submit(Record("/x"));
  EXPECT_EQ(reporter.submitted_records(), 1000u);
  EXPECT_EQ(reporter.dropped_records(), 1000u - 64u);
}

}  // namespace
}  // namespace meshtel::proxy
