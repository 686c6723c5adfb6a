// End to end: the real meshtel-collector with its data directory on a small tmpfs the test mounts
// (root is needed; without it the test is skipped and says why), delivering to a Loki test
// receiver. The filesystem is filled to the last byte by a file next to the store while batches
// flow over the gRPC ingest the way a proxy's reporter sends them (an unacknowledged batch is
// kept and resent):
//   - the store's write fails for real (ENOSPC): the batch gets UNAVAILABLE and no ack, again on
//     every resend, and meshtel_store_write_errors_total grows;
//   - the process keeps serving: /healthz, /metrics, and Loki still gets every stored record;
//   - once the file is gone the resent batches are stored and delivered;
//   - after a SIGKILL and a restart the store holds every acknowledged record exactly once, each
//     one decodes, nothing was set aside as corrupt.
// And a collector SIGKILLed while the disk is full and started again before there is room refuses
// to start with a clear "no space" error (no crash, no repair advice); with room again it starts
// with every acknowledged record and stores the kept batch. One stopped with SIGTERM while the disk
// is full stops cleanly and loses nothing. Envoy ALS streams on the full disk end UNAVAILABLE
// (entries counted as lost, the process serving); with room their resent entries are stored.

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "collector/store/record_store.h"
#include "envoy/service/accesslog/v3/als.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "meshtel/v1/record.grpc.pb.h"
#include "tests/support/als_stream.h"
#include "tests/support/http_get.h"
#include "tests/support/loki_receiver.h"
#include "tests/support/metrics_text.h"
#include "tests/support/process.h"

namespace meshtel::e2e {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::ChildProcess;

constexpr int kRecordsPerBatch = 50;
constexpr const char* kInstance = "proxy-disk-full-e2e";

std::string RequestId(uint64_t sequence, int index) {
  return "disk-" + std::to_string(sequence) + "-" + std::to_string(index);
}

// `size` random letters: text the store's chunk compression cannot shrink.
std::string RandomText(size_t size) {
  static std::mt19937_64 random(20261202);
  std::string text(size, 'a');
  for (char& c : text) c = static_cast<char>('a' + random() % 26);
  return text;
}

// About 25 KB, stored at about 60 % of that once compressed (random user agents): a few hundred
// batches get past the space RocksDB set aside for its log.
meshtel::v1::RecordBatch Batch(uint64_t sequence) {
  meshtel::v1::RecordBatch batch;
  batch.set_proxy_instance_id(kInstance);
  batch.set_sequence(sequence);
  const auto now = static_cast<uint64_t>(absl::ToUnixNanos(absl::Now()));
  for (int i = 0; i < kRecordsPerBatch; ++i) {
    auto* record = batch.add_records();
    record->set_start_time_unix_nano(now);
    record->set_reporter(meshtel::v1::REPORTER_DESTINATION);
    record->set_method("GET");
    record->set_path("/items/" + std::to_string(sequence) + "/" + std::to_string(i));
    record->set_protocol("HTTP/1.1");
    record->set_response_code(200);
    record->set_request_id(RequestId(sequence, i));
    record->set_user_agent("disk-full-test/" + RandomText(400));
    record->mutable_destination()->set_workload("backend");
    record->mutable_destination()->set_namespace_("shop");
  }
  return batch;
}

void AddIds(uint64_t sequence, std::set<std::string>& ids) {
  for (int i = 0; i < kRecordsPerBatch; ++i) ids.insert(RequestId(sequence, i));
}

// Every request id in the Loki pushes the receiver accepted.
std::multiset<std::string> LokiIds(const testing::LokiReceiver& receiver) {
  std::multiset<std::string> ids;
  for (const testing::LokiPush& push : receiver.Pushes()) {
    if (push.answered / 100 != 2) continue;
    EXPECT_EQ(push.decode_error, "");
    for (const auto& stream : push.request.streams()) {
      for (const auto& entry : stream.entries()) {
        for (const auto& pair : entry.structuredmetadata()) {
          if (pair.name() == "request_id") ids.insert(pair.value());
        }
      }
    }
  }
  return ids;
}

bool Includes(const std::multiset<std::string>& have, const std::set<std::string>& expected) {
  for (const std::string& id : expected) {
    if (have.count(id) == 0) return false;
  }
  return true;
}

class StoreDiskFullTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("meshtel-disk-full-e2e");
    mount_ = dir_ + "/disk";
    std::filesystem::create_directories(mount_);
    std::string output;
    if (testing::RunCommand("mount -t tmpfs -o size=32m,mode=0700 meshtel-disk-full " + mount_,
                            &output) != 0) {
      std::printf("skipped: cannot mount a tmpfs for the data directory (%s)\n", output.c_str());
      std::filesystem::remove_all(dir_);
      GTEST_SKIP() << "cannot mount a tmpfs: " << output;
    }
    mounted_ = true;
    ingest_port_ = testing::FreePort();
    admin_port_ = testing::FreePort();
    als_port_ = testing::FreePort();
    // store.max_bytes is far above the filesystem's size: the store's own limit never refuses, the
    // filesystem runs out first.
    testing::WriteFile(
        dir_ + "/collector.yaml",
        "ingest: {listen: \"127.0.0.1:" + std::to_string(ingest_port_) +
            "\", als: {enabled: true, listen: \"127.0.0.1:" + std::to_string(als_port_) + "\"}}\n" +
            "admin: {listen: \"127.0.0.1:" + std::to_string(admin_port_) + "\"}\n" +
            "store: {data_dir: \"" + mount_ +
            "/data\", durability: fsync, max_bytes: 268435456}\n" +
            "shutdown_grace: 1s\n"
            "exporters:\n"
            "  - name: loki\n"
            "    type: loki\n"
            "    batch: {max_records: 200, max_wait: 50ms}\n"
            "    retry: {initial_backoff: 50ms, max_backoff: 400ms}\n"
            "    loki: {url: \"" +
            loki_.url() + "\", timeout: 2s}\n");
  }

  void TearDown() override {
    CloseStream();
    if (collector_ != nullptr) {
      if (HasFailure()) std::printf("%s\n", collector_->Log().c_str());
      collector_->Kill();
    }
    if (mounted_) {
      std::string output;
      if (testing::RunCommand("umount " + mount_, &output) != 0) {
        ADD_FAILURE() << "umount " << mount_ << ": " << output;
        testing::RunCommand("umount -l " + mount_, nullptr);
      }
    }
    std::filesystem::remove_all(dir_);
  }

  void StartCollector() {
    ASSERT_TRUE(testing::StartCollector(dir_ + "/collector.yaml", dir_ + "/collector.log",
                                        admin_port_, collector_));
  }

  struct Outcome {
    bool acked = false;
    grpc::StatusCode code = grpc::StatusCode::OK;  // how the collector ended the stream
    std::string message;
  };
  // Sends one batch on the open stream (opening one when needed) and waits for its ack; without
  // one, returns how the collector ended the stream.
  Outcome Send(uint64_t sequence) {
    if (stream_ == nullptr) {
      channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(ingest_port_),
                                     grpc::InsecureChannelCredentials());
      stub_ = meshtel::v1::RecordService::NewStub(channel_);
      context_ = std::make_unique<grpc::ClientContext>();
      context_->set_deadline(std::chrono::system_clock::now() + seconds(60));
      stream_ = stub_->StreamRecords(context_.get());
    }
    meshtel::v1::RecordAck ack;
    if (stream_->Write(Batch(sequence)) && stream_->Read(&ack)) {
      if (ack.status_code() == 0 && ack.sequence() == sequence) return {.acked = true};
      return {.code = static_cast<grpc::StatusCode>(ack.status_code()),
              .message = "in the ack: " + ack.status_message()};
    }
    const grpc::Status status = stream_->Finish();
    stream_.reset();
    return {.code = status.error_code(), .message = status.error_message()};
  }
  void CloseStream() {
    if (stream_ == nullptr) return;
    stream_->WritesDone();
    stream_->Finish();
    stream_.reset();
  }

  double CollectorMetric(const std::string& name, const std::vector<std::string>& labels = {}) {
    return testing::SumSamples(testing::HttpGet(admin_port_, "/metrics").body, name, labels);
  }

  // Writes to a file next to the store (appending, when it is there) until the filesystem has
  // no byte left; the bytes written.
  uint64_t FillFilesystem() {
    const int fd = open(filler_path().c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    EXPECT_GE(fd, 0) << std::strerror(errno);
    if (fd < 0) return 0;
    uint64_t written = 0;
    for (size_t chunk : {size_t{1} << 20, size_t{4096}, size_t{1}}) {
      const std::string block(chunk, 'f');
      for (;;) {
        const ssize_t n = write(fd, block.data(), block.size());
        if (n <= 0) {
          EXPECT_EQ(errno, ENOSPC) << std::strerror(errno);
          break;
        }
        written += static_cast<uint64_t>(n);
      }
    }
    close(fd);
    return written;
  }
  std::string filler_path() const { return mount_ + "/filler"; }

  // Deletes the filler and waits until the filesystem reports its room free (tmpfs may give the
  // pages back a moment after the unlink).
  void FreeFilesystem() {
    const uint64_t filler = std::filesystem::file_size(filler_path());
    ASSERT_TRUE(std::filesystem::remove(filler_path()));
    ASSERT_TRUE(testing::WaitFor(
        [&] { return std::filesystem::space(mount_).available >= filler / 2; }, seconds(30)))
        << std::filesystem::space(mount_).available << " bytes free after deleting " << filler;
  }

  // Stores `count` new batches (sequences from `next` on), each acknowledged.
  void StoreBatches(int count) {
    for (int i = 0; i < count; ++i, ++next_) {
      const Outcome outcome = Send(next_);
      ASSERT_TRUE(outcome.acked) << "batch " << next_ << ": " << outcome.message;
      AddIds(next_, acked_);
    }
  }

  // Fills the filesystem beside the store, then sends new batches until one is refused: RocksDB
  // still writes into the space it set aside for its log until that is used up. Returns the
  // refused batch (kept to resend, as a proxy does); the ones acked before it are in acked_.
  uint64_t FillAndSendUntilRefused() {
    const uint64_t filler = FillFilesystem();
    for (int i = 0; i < 2000; ++i, ++next_) {
      const Outcome outcome = Send(next_);
      if (outcome.acked) {
        AddIds(next_, acked_);
        continue;
      }
      EXPECT_EQ(outcome.code, grpc::StatusCode::UNAVAILABLE) << outcome.message;
      std::printf("filler %llu bytes; batch %llu was the first refused, after %zu records acked\n",
                  static_cast<unsigned long long>(filler), static_cast<unsigned long long>(next_),
                  acked_.size());
      return next_++;
    }
    ADD_FAILURE() << "the store never failed a write on a full filesystem";
    return 0;
  }

  // Resends `kept` in order until each is acknowledged (up to 30 s each).
  void ResendUntilAcked(const std::vector<uint64_t>& kept) {
    for (uint64_t sequence : kept) {
      std::string last;
      EXPECT_TRUE(testing::WaitFor(
          [&] {
            const Outcome outcome = Send(sequence);
            last = outcome.message;
            return outcome.acked;
          },
          seconds(30)))
          << "batch " << sequence << " still refused after the space came back: " << last;
      AddIds(sequence, acked_);
    }
  }

  // Sends one Envoy ALS stream (identifier and HTTP entries with these request ids, the project's
  // own schema of envoy.service.accesslog.v3) and returns how the collector ended it.
  grpc::Status SendAls(const std::vector<std::string>& request_ids) {
    envoy::service::accesslog::v3::StreamAccessLogsMessage message;
    message.mutable_identifier()->set_log_name("http_envoy_accesslog");
    message.mutable_identifier()->mutable_node()->set_id("sidecar~10.0.0.9~ratings.shop~shop.svc");
    const auto now = absl::Now();
    for (const std::string& id : request_ids) {
      auto& entry = *message.mutable_http_logs()->add_log_entry();
      auto& common = *entry.mutable_common_properties();
      common.mutable_start_time()->set_seconds(absl::ToUnixSeconds(now));
      common.set_upstream_cluster("inbound|9080||");
      entry.mutable_request()->set_authority("ratings.shop.svc.cluster.local:9080");
      entry.mutable_request()->set_path("/ratings");
      entry.mutable_request()->set_request_id(id);
      entry.mutable_response()->mutable_response_code()->set_value(200);
    }
    testing::AlsStream stream(als_port_, seconds(30));
    stream.Write(message.SerializeAsString());
    return stream.Finish();
  }

  // With the collector stopped: the store holds every acknowledged record exactly once, and each
  // one decodes.
  void ExpectStoreHoldsExactlyTheAcked() {
    prometheus::Registry registry;
    collector::StoreConfig config;
    config.data_dir = mount_ + "/data";
    auto store = collector::RecordStore::Open(config, registry);
    ASSERT_TRUE(store.ok()) << store.status();
    auto records = (*store)->Read(collector::RecordFamily::kLogs, collector::StoreKey{},
                                  collector::StoreKey{~uint64_t{0}, ~uint64_t{0}}, 10'000'000);
    ASSERT_TRUE(records.ok()) << records.status();
    std::multiset<std::string> stored;
    for (const collector::StoredRecord& record : *records) {
      stored.insert(record.record.request_id());
    }
    const std::set<std::string> distinct(stored.begin(), stored.end());
    std::printf("%zu records acknowledged, %zu stored (%zu distinct)\n", acked_.size(),
                stored.size(), distinct.size());
    EXPECT_EQ(stored.size(), acked_.size());
    EXPECT_EQ(distinct, acked_);
    EXPECT_EQ((*store)->corrupt_records(), 0u);
  }

  std::string dir_, mount_;
  bool mounted_ = false;
  uint64_t next_ = 1;            // the next new batch's sequence
  std::set<std::string> acked_;  // request ids of every acknowledged batch
  uint16_t ingest_port_ = 0, admin_port_ = 0, als_port_ = 0;
  testing::LokiReceiver loki_;
  std::unique_ptr<ChildProcess> collector_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<meshtel::v1::RecordService::Stub> stub_;
  std::unique_ptr<grpc::ClientContext> context_;
  std::unique_ptr<grpc::ClientReaderWriter<meshtel::v1::RecordBatch, meshtel::v1::RecordAck>>
      stream_;
};

TEST_F(StoreDiskFullTest, AFullDiskRefusesBatchesWithoutAckLosesNothingAndRecovers) {
  StartCollector();
  ASSERT_FALSE(HasFatalFailure());
  StoreBatches(20);
  ASSERT_FALSE(HasFatalFailure());
  std::vector<uint64_t> kept = {FillAndSendUntilRefused()};  // never acknowledged
  ASSERT_NE(kept[0], 0u);
  const double errors = CollectorMetric("meshtel_store_write_errors_total");
  EXPECT_GE(errors, 1);

  // The disk stays full: resends and new batches are refused, each without an ack, and counted.
  for (int i = 0; i < 3; ++i) {
    Outcome outcome = Send(kept.front());
    EXPECT_FALSE(outcome.acked);
    EXPECT_EQ(outcome.code, grpc::StatusCode::UNAVAILABLE) << outcome.message;
    outcome = Send(next_);
    EXPECT_FALSE(outcome.acked);
    EXPECT_EQ(outcome.code, grpc::StatusCode::UNAVAILABLE) << outcome.message;
    kept.push_back(next_++);
  }
  EXPECT_GE(CollectorMetric("meshtel_store_write_errors_total"), errors + 6);
  EXPECT_GE(CollectorMetric("meshtel_ingest_batches_total", {"result=\"unavailable\""}), 7);
  // The process keeps serving, and what was stored before is still delivered.
  EXPECT_EQ(testing::HttpGet(admin_port_, "/healthz").status, 200);
  EXPECT_EQ(testing::HttpGet(admin_port_, "/metrics").status, 200);
  EXPECT_TRUE(testing::WaitFor([&] { return Includes(LokiIds(loki_), acked_); }, seconds(30)))
      << "Loki did not get every acknowledged record while the disk was full";

  // Space again: the kept batches are resent (in order, as a proxy does) until acknowledged.
  FreeFilesystem();
  ASSERT_FALSE(HasFatalFailure());
  ResendUntilAcked(kept);
  StoreBatches(5);
  EXPECT_TRUE(testing::WaitFor([&] { return Includes(LokiIds(loki_), acked_); }, seconds(30)))
      << "Loki did not get the batches stored after the space came back";
  const std::multiset<std::string> delivered = LokiIds(loki_);
  EXPECT_EQ(std::set<std::string>(delivered.begin(), delivered.end()), acked_);

  // Killed and started again: every acknowledged record is in the store, once, intact.
  CloseStream();
  collector_->Kill();
  StartCollector();
  ASSERT_FALSE(HasFatalFailure());
  const Outcome resent = Send(next_ - 1);  // a resend of a stored batch is a duplicate, acked
  EXPECT_TRUE(resent.acked) << resent.message;
  CloseStream();
  EXPECT_EQ(collector_->Terminate(), 0) << collector_->Log();
  ExpectStoreHoldsExactlyTheAcked();
}

// Envoy's ALS on a full disk: a stream whose entries cannot be stored ends UNAVAILABLE (Envoy
// then opens a new one), its entries counted as lost; the process goes on; once there is room
// the entries sent again are stored and delivered, and the store holds them beside every
// acknowledged proxy record.
TEST_F(StoreDiskFullTest, AlsEntriesOnAFullDiskEndTheStreamUnavailableAndAreStoredWithRoom) {
  StartCollector();
  ASSERT_FALSE(HasFatalFailure());
  StoreBatches(3);
  ASSERT_FALSE(HasFatalFailure());
  ASSERT_NE(FillAndSendUntilRefused(), 0u);
  const std::vector<std::string> als_ids = {"als-full-1", "als-full-2", "als-full-3"};
  for (int i = 0; i < 2; ++i) {
    const grpc::Status refused = SendAls(als_ids);
    EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAVAILABLE) << refused.error_message();
  }
  EXPECT_EQ(CollectorMetric("meshtel_als_messages_total", {"result=\"unavailable\""}), 2);
  EXPECT_EQ(CollectorMetric("meshtel_als_entries_total", {"result=\"lost\""}), 6);
  EXPECT_EQ(testing::HttpGet(admin_port_, "/healthz").status, 200);

  FreeFilesystem();
  ASSERT_FALSE(HasFatalFailure());
  std::string last;
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        const grpc::Status status = SendAls(als_ids);
        last = status.error_message();
        return status.ok();
      },
      seconds(30)))
      << "ALS still refused after the space came back: " << last;
  std::set<std::string> expected = acked_;
  expected.insert(als_ids.begin(), als_ids.end());
  EXPECT_TRUE(testing::WaitFor([&] { return Includes(LokiIds(loki_), expected); }, seconds(30)))
      << "Loki did not get the ALS entries stored after the space came back";
  CloseStream();
  EXPECT_EQ(collector_->Terminate(), 0) << collector_->Log();
  acked_ = expected;
  ExpectStoreHoldsExactlyTheAcked();
}

// Killed while the disk is full and started again before there is room: the collector cannot
// open its store and says that the disk is full (not that the store is damaged); once there is
// room it starts with every acknowledged record, and the batch the proxy kept is stored.
TEST_F(StoreDiskFullTest, AKillOnAFullDiskLosesNothing) {
  StartCollector();
  ASSERT_FALSE(HasFatalFailure());
  StoreBatches(20);
  ASSERT_FALSE(HasFatalFailure());
  const uint64_t kept = FillAndSendUntilRefused();
  ASSERT_NE(kept, 0u);
  CloseStream();
  collector_->Kill();
  // Whatever room the store's last moments left (a flush that finished and let a write-ahead log
  // go just before the kill) is taken too: the restart finds none.
  FillFilesystem();

  collector_ = ChildProcess::Start({MESHTEL_COLLECTOR_BIN, "--config", dir_ + "/collector.yaml"},
                                   dir_ + "/full.log");
  EXPECT_EQ(collector_->Wait(seconds(20)), 1) << "it should refuse to start: " << collector_->Log();
  const std::string log = collector_->Log();
  EXPECT_NE(log.find("cannot open the store in '" + mount_ + "/data'"), std::string::npos) << log;
  EXPECT_NE(log.find("No space left on device"), std::string::npos) << log;
  EXPECT_NE(log.find("Its filesystem is full"), std::string::npos) << log;
  EXPECT_EQ(log.find("store repair"), std::string::npos)
      << "a full disk is not a damaged store: " << log;
  const size_t refusal = log.find("cannot open the store");
  if (refusal != std::string::npos) {
    std::printf("refused: %s\n", log.substr(refusal, log.find('\n', refusal) - refusal).c_str());
  }

  FreeFilesystem();
  ASSERT_FALSE(HasFatalFailure());
  StartCollector();
  ASSERT_FALSE(HasFatalFailure());
  ResendUntilAcked({kept});
  StoreBatches(5);
  EXPECT_TRUE(testing::WaitFor([&] { return Includes(LokiIds(loki_), acked_); }, seconds(30)))
      << "Loki did not get every acknowledged record";
  CloseStream();
  EXPECT_EQ(collector_->Terminate(), 0) << collector_->Log();
  ExpectStoreHoldsExactlyTheAcked();
}

// Stopped (SIGTERM) while the disk is full: a clean stop (exit code 0, no crash in RocksDB over
// the log file that failed); with room again every acknowledged record is there and the kept
// batch is stored.
TEST_F(StoreDiskFullTest, AStopOnAFullDiskIsClean) {
  StartCollector();
  ASSERT_FALSE(HasFatalFailure());
  StoreBatches(20);
  ASSERT_FALSE(HasFatalFailure());
  const uint64_t kept = FillAndSendUntilRefused();
  ASSERT_NE(kept, 0u);
  CloseStream();
  EXPECT_EQ(collector_->Terminate(), 0) << collector_->Log();

  FreeFilesystem();
  ASSERT_FALSE(HasFatalFailure());
  StartCollector();
  ASSERT_FALSE(HasFatalFailure());
  ResendUntilAcked({kept});
  CloseStream();
  EXPECT_EQ(collector_->Terminate(), 0) << collector_->Log();
  ExpectStoreHoldsExactlyTheAcked();
}

}  // namespace
}  // namespace meshtel::e2e
