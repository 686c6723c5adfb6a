// End to end: the real meshtel-collector and meshtelctl binaries on 127.0.0.1 and a data
// directory. An acknowledged batch survives SIGKILL (durability: process), a resend after the
// restart is recognised as a duplicate, a trace pipeline killed while it writes leaves every kept
// trace whole and written once after the restart, a damaged store is refused with the repair
// command, and `meshtelctl store repair` brings it back with every record.

#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <thread>

#include "collector/store/record_store.h"
#include "collector/traces/trace_json.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "meshtel/v1/record.grpc.pb.h"
#include "tests/support/http_get.h"
#include "tests/support/metrics_text.h"
#include "tests/support/process.h"

namespace meshtel::e2e {
namespace {

using std::chrono::seconds;
using testing::ChildProcess;

constexpr int kBatches = 20;
constexpr int kRecordsPerBatch = 50;

meshtel::v1::RecordBatch Batch(uint64_t sequence) {
  meshtel::v1::RecordBatch batch;
  batch.set_proxy_instance_id("proxy-e2e");
  batch.set_sequence(sequence);
  for (int i = 0; i < kRecordsPerBatch; ++i) {
    auto* record = batch.add_records();
    record->set_reporter(meshtel::v1::REPORTER_SOURCE);
    record->set_path("/item/" + std::to_string(sequence) + "/" + std::to_string(i));
    record->set_response_code(200);
  }
  return batch;
}

// The ids of trace `trace` (1-based): 16 and 8 bytes, never zero.
std::string TraceId(int trace) {
  return std::string(12, '\x7a') + std::string(reinterpret_cast<const char*>(&trace), 4);
}
std::string SpanId(int trace, char hop) {
  return std::string(1, hop) + std::string(3, '\x01') +
         std::string(reinterpret_cast<const char*>(&trace), 4);
}

// Traces of two hops each (a SERVER root, a CLIENT child), head-sampled, `traces` of them from
// trace `first_trace` on.
meshtel::v1::RecordBatch TraceBatch(uint64_t sequence, int first_trace, int traces) {
  meshtel::v1::RecordBatch batch;
  batch.set_proxy_instance_id("proxy-traces");
  batch.set_sequence(sequence);
  const uint64_t now = static_cast<uint64_t>(absl::ToUnixNanos(absl::Now()));
  for (int trace = first_trace; trace < first_trace + traces; ++trace) {
    for (const char hop : {'s', 'c'}) {
      auto* record = batch.add_records();
      record->set_reporter(hop == 's' ? meshtel::v1::REPORTER_DESTINATION
                                      : meshtel::v1::REPORTER_SOURCE);
      record->set_start_time_unix_nano(now + (hop == 's' ? 0 : 1'000));
      record->set_duration_ns(hop == 's' ? 100'000 : 50'000);
      record->set_path("/trace/" + std::to_string(trace));
      record->set_response_code(200);
      record->set_trace_id(TraceId(trace));
      record->set_span_id(SpanId(trace, hop));
      if (hop == 'c') record->set_parent_span_id(SpanId(trace, 's'));
      record->set_sampled(true);
    }
  }
  return batch;
}

class StoreRecoveryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("meshtel-store-e2e");
    ingest_port_ = testing::FreePort();
    admin_port_ = testing::FreePort();
    testing::WriteFile(dir_ + "/collector.yaml",
                       "ingest: {listen: \"127.0.0.1:" + std::to_string(ingest_port_) + "\"}\n" +
                           "admin: {listen: \"127.0.0.1:" + std::to_string(admin_port_) + "\"}\n" +
                           "store: {data_dir: \"" + dir_ + "/data\", durability: process}\n" +
                           "traces: {assembly: {idle_timeout: 100ms}, sampling: "
                           "{latency_threshold: 0s}}\n" +
                           "shutdown_grace: 1s\n");
  }

  void StartCollector() {
    ASSERT_TRUE(testing::StartCollector(dir_ + "/collector.yaml", dir_ + "/collector.log",
                                        admin_port_, collector_));
  }

  // Sends the batches on one stream; returns the acks' highest stored sequences.
  std::vector<uint64_t> Send(const std::vector<uint64_t>& sequences) {
    std::vector<meshtel::v1::RecordBatch> batches;
    for (uint64_t sequence : sequences) batches.push_back(Batch(sequence));
    return SendBatches(batches);
  }
  std::vector<uint64_t> SendBatches(const std::vector<meshtel::v1::RecordBatch>& batches) {
    auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(ingest_port_),
                                       grpc::InsecureChannelCredentials());
    auto stub = meshtel::v1::RecordService::NewStub(channel);
    grpc::ClientContext context;
    auto stream = stub->StreamRecords(&context);
    std::vector<uint64_t> acked;
    for (const meshtel::v1::RecordBatch& batch : batches) {
      if (!stream->Write(batch)) break;
      meshtel::v1::RecordAck ack;
      if (!stream->Read(&ack)) break;
      EXPECT_EQ(ack.status_code(), 0) << ack.status_message();
      acked.push_back(ack.highest_stored_sequence());
    }
    stream->WritesDone();
    EXPECT_TRUE(stream->Finish().ok());
    return acked;
  }

  // Opens the stopped collector's store directly and reads one of its families.
  std::vector<collector::StoredRecord> Stored(collector::RecordFamily family) {
    prometheus::Registry registry;
    collector::StoreConfig config;
    config.data_dir = dir_ + "/data";
    auto store = collector::RecordStore::Open(config, registry);
    EXPECT_TRUE(store.ok()) << store.status();
    if (!store.ok()) return {};
    auto records = (*store)->Read(family, collector::StoreKey{},
                                  collector::StoreKey{~uint64_t{0}, ~uint64_t{0}}, 1'000'000);
    EXPECT_TRUE(records.ok());
    return records.ok() ? *std::move(records) : std::vector<collector::StoredRecord>{};
  }
  size_t StoredRecords() { return Stored(collector::RecordFamily::kLogs).size(); }

  std::string dir_;
  uint16_t ingest_port_ = 0;
  uint16_t admin_port_ = 0;
  std::unique_ptr<ChildProcess> collector_;
};

TEST_F(StoreRecoveryTest, AckedBatchesSurviveAKillAndAResendIsADuplicate) {
  StartCollector();
  std::vector<uint64_t> sequences;
  for (uint64_t s = 1; s <= kBatches; ++s) sequences.push_back(s);
  ASSERT_EQ(Send(sequences).size(), static_cast<size_t>(kBatches));
  collector_->Kill();  // SIGKILL: no shutdown, no flush

  StartCollector();
  // The proxy did not see the last ack (say) and resends: acked, not stored twice.
  EXPECT_EQ(Send({kBatches}), (std::vector<uint64_t>{kBatches}));
  const std::string metrics = testing::HttpGet(admin_port_, "/metrics").body;
  EXPECT_EQ(testing::SumSamples(metrics, "meshtel_ingest_batches_total", {"duplicate"}), 1)
      << metrics;
  EXPECT_EQ(collector_->Terminate(), 0) << collector_->Log();
  EXPECT_EQ(StoredRecords(), static_cast<size_t>(kBatches * kRecordsPerBatch));
}

// SIGKILL while the trace pipeline is behind ingest, writing kept spans: after the restart it reads
// again from its stored progress, and every trace is stored whole, each span exactly once (the
// spans, their index entries and the progress are one write; spans already stored are not
// written again).
TEST_F(StoreRecoveryTest, KeptTracesSurviveAKillWholeAndEachSpanWrittenOnce) {
  constexpr int kTraceBatches = 40;
  constexpr int kTracesPerBatch = 100;
  constexpr int kTraces = kTraceBatches * kTracesPerBatch;
  StartCollector();
  const auto written = [&] {
    return testing::SumSamples(testing::HttpGet(admin_port_, "/metrics").body,
                               "meshtel_trace_spans_written_total", {});
  };
  // The first half, written; then the second half one batch every 25 ms, and the kill in its
  // middle: the traces of the last 100 ms are held (idle time), the earlier ones written, so the
  // stored progress is behind what the pipeline had read.
  const auto half = [&](int which) {
    std::vector<meshtel::v1::RecordBatch> batches;
    for (int b = which * kTraceBatches / 2; b < (which + 1) * kTraceBatches / 2; ++b) {
      batches.push_back(
          TraceBatch(static_cast<uint64_t>(b + 1), b * kTracesPerBatch + 1, kTracesPerBatch));
    }
    return batches;
  };
  ASSERT_EQ(SendBatches(half(0)).size(), static_cast<size_t>(kTraceBatches / 2));
  ASSERT_TRUE(testing::WaitFor([&] { return written() >= kTraces; }, seconds(30)));
  const std::vector<meshtel::v1::RecordBatch> second = half(1);
  for (size_t b = 0; b < second.size() / 2; ++b) {
    ASSERT_EQ(SendBatches({second[b]}).size(), 1u);
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  collector_->Kill();

  StartCollector();
  // The proxy resends what it has not seen acked (here: the whole second half; the stored
  // batches are recognised as duplicates).
  ASSERT_EQ(SendBatches(second).size(), second.size());
  // Every trace can be looked up whole.
  const auto whole = [&](int trace) {
    const testing::HttpResult result =
        testing::HttpGet(admin_port_, "/api/traces/" + collector::HexId(TraceId(trace)));
    size_t spans = 0;
    for (size_t at = 0; (at = result.body.find("\"spanId\"", at)) != std::string::npos; ++at) {
      ++spans;
    }
    return result.status == 200 && spans == 2;
  };
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        for (int trace = kTraces; trace >= 1; --trace) {
          if (!whole(trace)) return false;
        }
        return true;
      },
      seconds(60)));
  // Whether the kill came while traces were held (timing decides; the checks hold either way).
  std::printf("after the restart the pipeline read again: %s\n",
              collector_->Log().find("reading records again") != std::string::npos ? "yes" : "no");
  EXPECT_EQ(collector_->Terminate(), 0) << collector_->Log();

  // The spans family holds each span exactly once.
  std::map<std::string, int> copies;
  for (const collector::StoredRecord& stored : Stored(collector::RecordFamily::kSpans)) {
    ++copies[stored.span.trace_id() + stored.span.span_id()];
  }
  EXPECT_EQ(copies.size(), static_cast<size_t>(2 * kTraces));
  for (int trace = 1; trace <= kTraces; ++trace) {
    for (const char hop : {'s', 'c'}) {
      EXPECT_EQ(copies[TraceId(trace) + SpanId(trace, hop)], 1) << trace << hop;
    }
  }
}

TEST_F(StoreRecoveryTest, ADamagedStoreIsRefusedUntilMeshtelctlRepairsIt) {
  StartCollector();
  ASSERT_EQ(Send({1, 2, 3}).size(), 3u);
  EXPECT_EQ(collector_->Terminate(), 0) << collector_->Log();
  std::filesystem::remove(dir_ + "/data/CURRENT");

  collector_ = ChildProcess::Start({MESHTEL_COLLECTOR_BIN, "--config", dir_ + "/collector.yaml"},
                                   dir_ + "/refused.log");
  EXPECT_EQ(collector_->Wait(std::chrono::seconds(20)), 1);
  const std::string refused = collector_->Log();
  EXPECT_NE(refused.find("meshtelctl store repair --data-dir " + dir_ + "/data"), std::string::npos)
      << refused;

  std::string output;
  EXPECT_EQ(
      testing::RunCommand(
          std::string(MESHTELCTL_BIN) + " store repair --data-dir " + dir_ + "/data", &output),
      0)
      << output;
  StartCollector();
  EXPECT_EQ(Send({3, 4}), (std::vector<uint64_t>{3, 4}));  // 3 was stored before the damage
  EXPECT_EQ(collector_->Terminate(), 0) << collector_->Log();
  EXPECT_EQ(StoredRecords(), static_cast<size_t>(4 * kRecordsPerBatch));

  // Usage errors exit 2 and say what is wrong.
  EXPECT_EQ(testing::RunCommand(std::string(MESHTELCTL_BIN) + " store repair", &output), 2);
  EXPECT_NE(output.find("--data-dir"), std::string::npos) << output;
}

}  // namespace
}  // namespace meshtel::e2e
