#include "collector/ingest/record_ingest_server.h"

#include <atomic>
#include <map>
#include <mutex>
#include <span>
#include <string_view>
#include <vector>

#include "collector/common/record_service_method.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/support/sync_stream.h"
#include "gtest/gtest.h"
#include "prometheus/text_serializer.h"

namespace meshtel::collector {
namespace {

class RecordingSink : public RecordBatchSink {
 public:
  // Progress is kept here the way the store keeps it: with the batch, or not at all.
  absl::StatusOr<InstanceProgress> LoadProgress(std::string_view instance_id) override {
    std::lock_guard<std::mutex> lock(mutex);
    ++progress_loads;
    const auto it = progress.find(std::string(instance_id));
    return it == progress.end() ? InstanceProgress{} : it->second;
  }
  absl::Status Consume(const meshtel::v1::RecordBatch& batch,
                       const InstanceProgress& next) override {
    if (fail.load()) return absl::UnavailableError("disk full");
    std::lock_guard<std::mutex> lock(mutex);
    progress[batch.proxy_instance_id()] = next;
    sequences.push_back(batch.sequence());
    records += batch.records_size();
    return absl::OkStatus();
  }
  // The server hands each record's bytes as received: they must be the decoded records.
  absl::Status ConsumeReceived(const meshtel::v1::RecordBatch& batch,
                               std::span<const std::string_view> record_bytes,
                               const InstanceProgress& next) override {
    {
      std::lock_guard<std::mutex> lock(mutex);
      ++received_calls;
      if (record_bytes.size() != static_cast<size_t>(batch.records_size())) ++mismatches;
      for (size_t i = 0; i < record_bytes.size() && i < static_cast<size_t>(batch.records_size());
           ++i) {
        if (record_bytes[i] != batch.records(static_cast<int>(i)).SerializeAsString()) {
          ++mismatches;
        }
      }
    }
    return Consume(batch, next);
  }
  void CountStored(const meshtel::v1::RecordBatch& batch) override {
    std::lock_guard<std::mutex> lock(mutex);
    counted.push_back(batch.sequence());
  }
  std::atomic<bool> fail{false};
  std::mutex mutex;
  std::vector<uint64_t> sequences;
  std::vector<uint64_t> counted;  // CountStored()'s batches
  std::map<std::string, InstanceProgress> progress;
  int progress_loads = 0;
  int records = 0;
  int received_calls = 0;
  int mismatches = 0;
};

using RawStream = grpc::ClientReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer>;

class IngestServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    IngestConfig config;
    config.listen = common::HostPort{"127.0.0.1", 0};
    config.max_batch_bytes = 64 * 1024;
    auto server = RecordIngestServer::Start(config, sink_, registry_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->port()),
                                   grpc::InsecureChannelCredentials());
  }

  std::unique_ptr<RawStream> Open(grpc::ClientContext& context) {
    static const grpc::internal::RpcMethod method(common::kStreamRecordsMethod,
                                                  grpc::internal::RpcMethod::BIDI_STREAMING);
    return std::unique_ptr<RawStream>(
        grpc::internal::ClientReaderWriterFactory<grpc::ByteBuffer, grpc::ByteBuffer>::Create(
            channel_.get(), method, &context));
  }

  static grpc::ByteBuffer Bytes(const std::string& bytes) {
    grpc::Slice slice(bytes);
    return grpc::ByteBuffer(&slice, 1);
  }

  static std::string Batch(const std::string& instance, uint64_t sequence, int records,
                           uint64_t dropped = 0) {
    meshtel::v1::RecordBatch batch;
    batch.set_proxy_instance_id(instance);
    batch.set_sequence(sequence);
    batch.set_dropped_records_total(dropped);
    for (int i = 0; i < records; ++i) {
      meshtel::v1::RequestRecord* record = batch.add_records();
      record->set_response_code(200 + i);
      record->set_path("/item/" + std::to_string(i));
    }
    return batch.SerializeAsString();
  }

  static meshtel::v1::RecordAck Exchange(RawStream& stream, const std::string& bytes) {
    meshtel::v1::RecordAck ack;
    EXPECT_TRUE(stream.Write(Bytes(bytes)));
    grpc::ByteBuffer response;
    if (!stream.Read(&response)) {
      ADD_FAILURE() << "no ack";
      return ack;
    }
    grpc::Slice slice;
    EXPECT_TRUE(response.DumpToSingleSlice(&slice).ok());
    EXPECT_TRUE(ack.ParseFromArray(slice.begin(), static_cast<int>(slice.size())));
    return ack;
  }

  double Counter(const std::string& name, const std::string& result = "") {
    const std::string text = prometheus::TextSerializer().Serialize(registry_.Collect());
    const std::string key =
        "\n" + (result.empty() ? name + " " : name + "{result=\"" + result + "\"} ");
    const size_t at = text.find(key);
    if (at == std::string::npos) return -1;
    return std::stod(text.substr(at + key.size()));
  }

  RecordingSink sink_;
  prometheus::Registry registry_;
  std::unique_ptr<RecordIngestServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_F(IngestServerTest, AcksEachBatchAfterTheSinkTookIt) {
  grpc::ClientContext context;
  auto stream = Open(context);
  for (uint64_t sequence = 1; sequence <= 3; ++sequence) {
    meshtel::v1::RecordAck ack = Exchange(*stream, Batch("proxy-a", sequence, 5));
    EXPECT_EQ(ack.status_code(), 0);
    EXPECT_EQ(ack.sequence(), sequence);
    EXPECT_EQ(ack.highest_stored_sequence(), sequence);
  }
  EXPECT_EQ(sink_.records, 15);
  EXPECT_EQ(sink_.received_calls, 3);
  EXPECT_EQ(sink_.mismatches, 0);
  EXPECT_EQ(Counter("meshtel_ingest_batches_total", "ok"), 3);
  EXPECT_EQ(Counter("meshtel_ingest_records_total"), 15);
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(IngestServerTest, ResentBatchesAreAckedButProcessedOnce) {
  {
    grpc::ClientContext context;
    auto stream = Open(context);
    Exchange(*stream, Batch("proxy-a", 1, 2));
    Exchange(*stream, Batch("proxy-a", 2, 2));
    stream->WritesDone();
    stream->Finish();
  }
  grpc::ClientContext context;
  auto stream = Open(context);  // a reconnect resends 2 and goes on with 3
  meshtel::v1::RecordAck resent = Exchange(*stream, Batch("proxy-a", 2, 2));
  EXPECT_EQ(resent.status_code(), 0);
  EXPECT_EQ(resent.highest_stored_sequence(), 2u);
  EXPECT_EQ(Exchange(*stream, Batch("proxy-a", 3, 2)).highest_stored_sequence(), 3u);
  // Another instance has its own sequence space.
  EXPECT_EQ(Exchange(*stream, Batch("proxy-b", 1, 1)).highest_stored_sequence(), 1u);
  EXPECT_EQ(sink_.sequences, (std::vector<uint64_t>{1, 2, 3, 1}));
  EXPECT_EQ(sink_.records, 7);
  EXPECT_EQ(Counter("meshtel_ingest_batches_total", "duplicate"), 1);
}

TEST_F(IngestServerTest, EachStoredBatchIsCountedOnceAndNothingElseIs) {
  grpc::ClientContext context;
  auto stream = Open(context);
  Exchange(*stream, Batch("proxy-a", 1, 2));
  Exchange(*stream, Batch("proxy-a", 2, 2));
  Exchange(*stream, Batch("proxy-a", 2, 2));                       // a resend: acked, not stored
  Exchange(*stream, std::string("\xff\xff\xff\xff garbage", 12));  // invalid
  Exchange(*stream, Batch("proxy-a", 3, 2));
  stream->WritesDone();
  // The stream ends after its last batch was counted.
  EXPECT_TRUE(stream->Finish().ok());
  std::lock_guard<std::mutex> lock(sink_.mutex);
  EXPECT_EQ(sink_.counted, (std::vector<uint64_t>{1, 2, 3}));
}

TEST_F(IngestServerTest, MalformedBatchIsRejectedAndTheStreamGoesOn) {
  grpc::ClientContext context;
  auto stream = Open(context);
  meshtel::v1::RecordAck bad = Exchange(*stream, std::string("\xff\xff\xff\xff garbage", 12));
  EXPECT_EQ(bad.status_code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
  EXPECT_NE(bad.status_message().find("not a valid"), std::string::npos);
  meshtel::v1::RecordAck unnamed = Exchange(*stream, Batch("", 1, 1));
  EXPECT_EQ(unnamed.status_code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
  meshtel::v1::RecordAck good = Exchange(*stream, Batch("proxy-a", 1, 1));
  EXPECT_EQ(good.status_code(), 0);
  EXPECT_EQ(Counter("meshtel_ingest_batches_total", "invalid"), 2);
  EXPECT_EQ(sink_.records, 1);
}

// One record that is not a valid RequestRecord (text that is not UTF-8) costs only itself: the
// rest of its batch is stored, as received, and acked.
TEST_F(IngestServerTest, ABatchWithInvalidRecordsStoresTheOthers) {
  grpc::ClientContext context;
  auto stream = Open(context);
  meshtel::v1::RecordBatch batch;
  ASSERT_TRUE(batch.ParseFromString(Batch("proxy-a", 1, 4)));
  batch.mutable_records(2)->set_user_agent("caf\xe9");
  const meshtel::v1::RecordAck ack = Exchange(*stream, batch.SerializeAsString());
  EXPECT_EQ(ack.status_code(), 0) << ack.status_message();
  EXPECT_EQ(ack.highest_stored_sequence(), 1u);
  EXPECT_EQ(Counter("meshtel_ingest_records_invalid_total"), 1);
  EXPECT_EQ(Counter("meshtel_ingest_records_total"), 3);
  EXPECT_EQ(Counter("meshtel_ingest_batches_total", "ok"), 1);
  EXPECT_EQ(Counter("meshtel_ingest_batches_total", "invalid"), 0);
  // Resent (its ack lost): a duplicate, not counted again.
  EXPECT_EQ(Exchange(*stream, batch.SerializeAsString()).status_code(), 0);
  EXPECT_EQ(Counter("meshtel_ingest_records_invalid_total"), 1);
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
  std::lock_guard<std::mutex> lock(sink_.mutex);
  EXPECT_EQ(sink_.records, 3);
  EXPECT_EQ(sink_.received_calls, 1);
  EXPECT_EQ(sink_.mismatches, 0);
}

TEST_F(IngestServerTest, OversizedBatchIsRejectedAndTheStreamGoesOn) {
  grpc::ClientContext context;
  auto stream = Open(context);
  meshtel::v1::RecordBatch big;
  big.set_proxy_instance_id("proxy-a");
  big.set_sequence(1);
  big.add_records()->set_path(std::string(100 * 1024, 'x'));
  meshtel::v1::RecordAck ack = Exchange(*stream, big.SerializeAsString());
  EXPECT_EQ(ack.status_code(), static_cast<int>(grpc::StatusCode::RESOURCE_EXHAUSTED));
  EXPECT_EQ(Exchange(*stream, Batch("proxy-a", 2, 1)).status_code(), 0);
  EXPECT_EQ(Counter("meshtel_ingest_batches_total", "too_large"), 1);
  EXPECT_EQ(sink_.sequences, (std::vector<uint64_t>{2}));
}

TEST_F(IngestServerTest, WayOversizedMessageEndsOnlyItsStream) {
  grpc::ClientContext context;
  auto stream = Open(context);
  stream->Write(Bytes(std::string(1024 * 1024, 'x')));  // over 4x max_batch_bytes
  grpc::ByteBuffer response;
  EXPECT_FALSE(stream->Read(&response));
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  grpc::ClientContext other_context;
  auto other = Open(other_context);
  EXPECT_EQ(Exchange(*other, Batch("proxy-b", 1, 1)).status_code(), 0);
}

TEST_F(IngestServerTest, SinkFailureEndsTheStreamUnavailableWithoutAck) {
  grpc::ClientContext context;
  auto stream = Open(context);
  EXPECT_EQ(Exchange(*stream, Batch("proxy-a", 1, 1)).status_code(), 0);
  sink_.fail.store(true);
  ASSERT_TRUE(stream->Write(Bytes(Batch("proxy-a", 2, 1))));
  grpc::ByteBuffer response;
  EXPECT_FALSE(stream->Read(&response));
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(Counter("meshtel_ingest_batches_total", "unavailable"), 1);
  // The resend on a new stream is processed once the sink recovers.
  sink_.fail.store(false);
  grpc::ClientContext retry_context;
  auto retry = Open(retry_context);
  meshtel::v1::RecordAck ack = Exchange(*retry, Batch("proxy-a", 2, 1));
  EXPECT_EQ(ack.status_code(), 0);
  EXPECT_EQ(ack.highest_stored_sequence(), 2u);
  EXPECT_EQ(sink_.sequences, (std::vector<uint64_t>{1, 2}));
}

TEST_F(IngestServerTest, ProxyDropCountsBecomeACounter) {
  grpc::ClientContext context;
  auto stream = Open(context);
  Exchange(*stream, Batch("proxy-a", 1, 1, /*dropped=*/10));
  Exchange(*stream, Batch("proxy-a", 2, 1, /*dropped=*/25));
  Exchange(*stream, Batch("proxy-b", 1, 1, /*dropped=*/5));
  EXPECT_EQ(Counter("meshtel_proxy_dropped_records_total"), 30);
}

TEST_F(IngestServerTest, AStoredProgressSurvivesARestartedServer) {
  {
    grpc::ClientContext context;
    auto stream = Open(context);
    Exchange(*stream, Batch("proxy-a", 1, 2, /*dropped=*/4));
    Exchange(*stream, Batch("proxy-a", 2, 2, /*dropped=*/4));
    stream->WritesDone();
    stream->Finish();
  }
  EXPECT_EQ(sink_.progress["proxy-a"].highest_sequence, 2u);
  EXPECT_EQ(sink_.progress["proxy-a"].dropped_records_total, 4u);
  // A new server (a restarted collector) knows nothing in memory: it asks the sink.
  server_->Shutdown(absl::ZeroDuration());
  prometheus::Registry registry;
  IngestConfig config;
  config.listen = common::HostPort{"127.0.0.1", 0};
  auto restarted = RecordIngestServer::Start(config, sink_, registry);
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string((*restarted)->port()),
                                 grpc::InsecureChannelCredentials());
  grpc::ClientContext context;
  auto stream = Open(context);
  meshtel::v1::RecordAck resent = Exchange(*stream, Batch("proxy-a", 2, 2, /*dropped=*/4));
  EXPECT_EQ(resent.status_code(), 0);
  EXPECT_EQ(resent.highest_stored_sequence(), 2u);
  EXPECT_EQ(Exchange(*stream, Batch("proxy-a", 3, 1, /*dropped=*/6)).highest_stored_sequence(), 3u);
  EXPECT_EQ(sink_.sequences, (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_EQ(sink_.progress_loads, 2);  // once per server, not once per batch
  EXPECT_EQ(sink_.progress["proxy-a"].dropped_records_total, 6u);
  stream->WritesDone();
  stream->Finish();
}

}  // namespace
}  // namespace meshtel::collector
