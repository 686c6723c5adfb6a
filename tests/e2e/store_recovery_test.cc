// End to end: the real meshtel-collector and meshtelctl binaries on 127.0.0.1 and a data
// directory. An acknowledged batch survives SIGKILL (durability: process), a resend after the
// restart is recognised as a duplicate, a damaged store is refused with the repair command, and
// `meshtelctl store repair` brings it back with every record.

#include <filesystem>
#include <string>

#include "collector/store/record_store.h"
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
                           "shutdown_grace: 1s\n");
  }

  void StartCollector() {
    ASSERT_TRUE(testing::StartCollector(dir_ + "/collector.yaml", dir_ + "/collector.log",
                                        admin_port_, collector_));
  }

  // Sends the batches on one stream; returns the acks' highest stored sequences.
  std::vector<uint64_t> Send(const std::vector<uint64_t>& sequences) {
    auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(ingest_port_),
                                       grpc::InsecureChannelCredentials());
    auto stub = meshtel::v1::RecordService::NewStub(channel);
    grpc::ClientContext context;
    auto stream = stub->StreamRecords(&context);
    std::vector<uint64_t> acked;
    for (uint64_t sequence : sequences) {
      if (!stream->Write(Batch(sequence))) break;
      meshtel::v1::RecordAck ack;
      if (!stream->Read(&ack)) break;
      EXPECT_EQ(ack.status_code(), 0) << ack.status_message();
      acked.push_back(ack.highest_stored_sequence());
    }
    stream->WritesDone();
    EXPECT_TRUE(stream->Finish().ok());
    return acked;
  }

  // Opens the stopped collector's store directly and counts its records.
  size_t StoredRecords() {
    prometheus::Registry registry;
    collector::StoreConfig config;
    config.data_dir = dir_ + "/data";
    auto store = collector::RecordStore::Open(config, registry);
    EXPECT_TRUE(store.ok()) << store.status();
    if (!store.ok()) return 0;
    auto records = (*store)->Read(collector::RecordFamily::kLogs, collector::StoreKey{},
                                  collector::StoreKey{~uint64_t{0}, ~uint64_t{0}}, 1'000'000);
    EXPECT_TRUE(records.ok());
    return records.ok() ? records->size() : 0;
  }

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
