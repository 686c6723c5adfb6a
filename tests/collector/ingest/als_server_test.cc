#include "collector/ingest/als_server.h"

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "envoy/service/accesslog/v3/als.pb.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/support/sync_stream.h"
#include "gtest/gtest.h"
#include "prometheus/text_serializer.h"

namespace meshtel::collector {
namespace {

using envoy::service::accesslog::v3::StreamAccessLogsMessage;

// Keeps what it is given, or refuses it (as a full store does) while `fail` is set.
class RecordingSink : public ReceivedRecordSink {
 public:
  absl::Status Store(
      const google::protobuf::RepeatedPtrField<meshtel::v1::RequestRecord>& records) override {
    if (fail.load()) return absl::UnavailableError("store: disk full");
    std::lock_guard<std::mutex> lock(mutex);
    for (const auto& record : records) request_ids.push_back(record.request_id());
    return absl::OkStatus();
  }
  absl::Status StoreEncoded(std::span<const std::string_view>) override {
    ADD_FAILURE() << "the ALS server hands request records over as messages";
    return absl::InternalError("unexpected StoreEncoded");
  }
  std::vector<std::string> Ids() {
    std::lock_guard<std::mutex> lock(mutex);
    return request_ids;
  }
  std::atomic<bool> fail{false};
  std::mutex mutex;
  std::vector<std::string> request_ids;
};

class AlsServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    AlsConfig config;
    config.enabled = true;
    config.listen = common::HostPort{"127.0.0.1", 0};
    config.max_message_bytes = 4096;
    auto server = AlsServer::Start(config, sink_, registry_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->port()),
                                   grpc::InsecureChannelCredentials());
  }

  struct Stream {
    grpc::ClientContext context;
    grpc::ByteBuffer response;
    std::unique_ptr<grpc::ClientWriter<grpc::ByteBuffer>> writer;
    bool Write(const std::string& bytes) {
      grpc::Slice slice(bytes);
      grpc::ByteBuffer buffer(&slice, 1);
      return writer->Write(buffer);
    }
    grpc::Status Finish() {
      writer->WritesDone();
      return writer->Finish();
    }
  };

  std::unique_ptr<Stream> Open() {
    static const grpc::internal::RpcMethod method(kStreamAccessLogsMethod,
                                                  grpc::internal::RpcMethod::CLIENT_STREAMING);
    auto stream = std::make_unique<Stream>();
    stream->writer.reset(grpc::internal::ClientWriterFactory<grpc::ByteBuffer>::Create(
        channel_.get(), method, &stream->context, &stream->response));
    return stream;
  }

  static std::string Message(bool identifier, const std::vector<std::string>& request_ids) {
    StreamAccessLogsMessage message;
    if (identifier) {
      message.mutable_identifier()->set_log_name("http_envoy_accesslog");
      message.mutable_identifier()->mutable_node()->set_id("sidecar~10.0.0.1~a.b~b.svc");
    }
    auto& logs = *message.mutable_http_logs();
    for (const std::string& id : request_ids) {
      auto& entry = *logs.add_log_entry();
      entry.mutable_common_properties()->set_upstream_cluster("inbound|80||");
      entry.mutable_request()->set_request_id(id);
    }
    return message.SerializeAsString();
  }

  double Counter(const std::string& name, const std::string& result) {
    const std::string text = prometheus::TextSerializer().Serialize(registry_.Collect());
    const std::string key = "\n" + name + "{result=\"" + result + "\"} ";
    const size_t at = text.find(key);
    if (at == std::string::npos) return -1;
    return std::stod(text.substr(at + key.size()));
  }

  RecordingSink sink_;
  prometheus::Registry registry_;
  std::unique_ptr<AlsServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_F(AlsServerTest, EntriesAreStoredAndTheIdentifierIsKeptForTheStream) {
  auto stream = Open();
  ASSERT_TRUE(stream->Write(Message(true, {"a", "b"})));
  ASSERT_TRUE(stream->Write(Message(false, {"c"})));
  EXPECT_TRUE(stream->Finish().ok());
  EXPECT_EQ(sink_.Ids(), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(Counter("meshtel_als_messages_total", "ok"), 2);
  EXPECT_EQ(Counter("meshtel_als_entries_total", "stored"), 3);
}

TEST_F(AlsServerTest, StoreFailureEndsTheStreamUnavailableAndCountsTheLostEntries) {
  auto stream = Open();
  ASSERT_TRUE(stream->Write(Message(true, {"a"})));
  // Let the first message be stored before the store fails.
  for (int i = 0; i < 500 && sink_.Ids().empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(sink_.Ids().size(), 1u);
  sink_.fail.store(true);
  stream->Write(Message(false, {"b", "c"}));
  const grpc::Status status = stream->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(status.error_message(), "store: disk full");
  EXPECT_EQ(Counter("meshtel_als_messages_total", "unavailable"), 1);
  EXPECT_EQ(Counter("meshtel_als_entries_total", "lost"), 2);
  EXPECT_EQ(Counter("meshtel_als_entries_total", "stored"), 1);
  // Envoy's next stream is served once the store takes writes again.
  sink_.fail.store(false);
  auto next = Open();
  ASSERT_TRUE(next->Write(Message(true, {"d"})));
  EXPECT_TRUE(next->Finish().ok());
  EXPECT_EQ(sink_.Ids(), (std::vector<std::string>{"a", "d"}));
}

TEST_F(AlsServerTest, OversizedFirstMessageEndsTheStream) {
  auto stream = Open();
  std::vector<std::string> ids(200, std::string(40, 'x'));
  stream->Write(Message(true, ids));
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(Counter("meshtel_als_messages_total", "too_large"), 1);
  EXPECT_TRUE(sink_.Ids().empty());
}

}  // namespace
}  // namespace meshtel::collector
