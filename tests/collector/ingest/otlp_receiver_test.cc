#include "collector/ingest/otlp_receiver.h"

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "boost/asio.hpp"
#include "boost/beast.hpp"
#include "collector/common/gzip.h"
#include "collector/store/record_store.h"
#include "google/rpc/status.pb.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/impl/client_unary_call.h"
#include "gtest/gtest.h"
#include "opentelemetry/proto/collector/logs/v1/logs_service.grpc.pb.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.grpc.pb.h"
#include "prometheus/text_serializer.h"
#include "tests/support/http_get.h"
#include "tests/support/metrics_text.h"
#include "tests/support/process.h"

namespace meshtel::collector {
namespace {

using opentelemetry::proto::collector::logs::v1::ExportLogsServiceRequest;
using opentelemetry::proto::collector::logs::v1::ExportLogsServiceResponse;
using opentelemetry::proto::collector::logs::v1::LogsService;
using opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest;
using opentelemetry::proto::collector::trace::v1::ExportTraceServiceResponse;
using opentelemetry::proto::collector::trace::v1::TraceService;

const std::string kTraceId("\x4b\xf9\x2f\x35\x77\xb3\x4d\xa6\xa3\xce\x92\x9d\x0e\x0e\x47\x36", 16);
constexpr char kTraceIdHex[] = "4bf92f3577b34da6a3ce929d0e0e4736";
constexpr uint64_t kMaxRequestBytes = 64 * 1024;
const std::vector<std::pair<std::string, std::string>> kProtobuf = {
    {"Content-Type", "application/x-protobuf"}};
const std::vector<std::pair<std::string, std::string>> kJson = {
    {"Content-Type", "application/json"}};

// The collector's ReceivedRecordSink, on a real store: one append per call.
class StoreSink : public ReceivedRecordSink {
 public:
  explicit StoreSink(RecordStore& store) : store_(store) {}
  absl::Status Store(
      const google::protobuf::RepeatedPtrField<meshtel::v1::RequestRecord>& records) override {
    return store_.AppendRecords(records);
  }
  absl::Status StoreEncoded(std::span<const std::string_view> records) override {
    return store_.AppendEncodedRecords(records);
  }

 private:
  RecordStore& store_;
};

ExportTraceServiceRequest Spans(int count, int invalid = 0) {
  ExportTraceServiceRequest request;
  auto* resource_spans = request.add_resource_spans();
  auto* name = resource_spans->mutable_resource()->add_attributes();
  name->set_key("service.name");
  name->mutable_value()->set_string_value("checkout");
  auto* scope_spans = resource_spans->add_scope_spans();
  for (int i = 0; i < count + invalid; ++i) {
    auto* span = scope_spans->add_spans();
    span->set_trace_id(kTraceId);
    span->set_span_id(i < count ? std::string(7, '\x01') + static_cast<char>(i + 1)
                                : std::string(8, '\0'));
    span->set_name("span-" + std::to_string(i));
  }
  return request;
}

ExportLogsServiceRequest Logs(int count) {
  ExportLogsServiceRequest request;
  auto* scope_logs = request.add_resource_logs()->add_scope_logs();
  for (int i = 0; i < count; ++i) {
    scope_logs->add_log_records()->mutable_body()->set_string_value("line " + std::to_string(i));
  }
  return request;
}

std::string JsonSpan(const std::string& trace_id_hex, const std::string& name) {
  return R"({"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":")" + trace_id_hex +
         R"(","spanId":"00f067aa0ba902b7","name":")" + name + R"("}]}]}]})";
}

class OtlpReceiverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    StoreConfig store_config;
    store_config.data_dir = testing::MakeTempDir("otlp-receiver");
    store_config.durability = "process";
    auto store = RecordStore::Open(store_config, registry_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    sink_ = std::make_unique<StoreSink>(*store_);
    OtlpReceiverConfig config;
    config.enabled = true;
    config.grpc_listen = common::HostPort{"127.0.0.1", 0};
    config.http_listen = common::HostPort{"127.0.0.1", 0};
    config.max_request_bytes = kMaxRequestBytes;
    auto receiver = OtlpReceiver::Start(config, *sink_, registry_);
    ASSERT_TRUE(receiver.ok()) << receiver.status();
    receiver_ = *std::move(receiver);
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(receiver_->grpc_port()),
                                   grpc::InsecureChannelCredentials());
  }

  void TearDown() override {
    if (receiver_ != nullptr) receiver_->Shutdown(absl::Seconds(1));
  }

  std::vector<StoredRecord> Stored() {
    auto records =
        store_->Read(RecordFamily::kLogs, StoreKey{}, StoreKey{UINT64_MAX, UINT64_MAX}, 100000);
    EXPECT_TRUE(records.ok()) << records.status();
    return records.ok() ? *std::move(records) : std::vector<StoredRecord>{};
  }

  double Count(const std::string& name, const std::vector<std::string>& labels) {
    const std::string text = prometheus::TextSerializer().Serialize(registry_.Collect());
    return testing::SumSamples(text, name, labels);
  }

  testing::HttpResult Post(const std::string& path,
                           const std::vector<std::pair<std::string, std::string>>& headers,
                           const std::string& body) {
    return testing::HttpRequest(receiver_->http_port(), "POST", path, headers, body);
  }

  grpc::Status RawGrpc(const char* path, const std::string& bytes, grpc::ByteBuffer& response) {
    grpc::ClientContext context;
    grpc::Slice slice(bytes);
    grpc::ByteBuffer request(&slice, 1);
    return grpc::internal::BlockingUnaryCall<grpc::ByteBuffer, grpc::ByteBuffer>(
        channel_.get(), grpc::internal::RpcMethod(path, grpc::internal::RpcMethod::NORMAL_RPC),
        &context, request, &response);
  }

  prometheus::Registry registry_;
  std::unique_ptr<RecordStore> store_;
  std::unique_ptr<StoreSink> sink_;
  std::unique_ptr<OtlpReceiver> receiver_;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_F(OtlpReceiverTest, GrpcTracesAreStoredBeforeTheAnswer) {
  auto stub = TraceService::NewStub(channel_);
  grpc::ClientContext context;
  ExportTraceServiceResponse response;
  grpc::Status status = stub->Export(&context, Spans(3), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_FALSE(response.has_partial_success());
  std::vector<StoredRecord> stored = Stored();
  ASSERT_EQ(stored.size(), 3u);
  for (const StoredRecord& record : stored) {
    ASSERT_TRUE(record.record.has_received_span());
    EXPECT_EQ(record.record.received_span().trace_id(), kTraceId);
    EXPECT_EQ(record.record.received_span().service_name(), "checkout");
  }
  EXPECT_EQ(Count("meshtel_otlp_requests_total",
                  {"signal=\"traces\"", "transport=\"grpc\"", "result=\"ok\""}),
            1);
  EXPECT_EQ(Count("meshtel_otlp_items_total",
                  {"signal=\"traces\"", "transport=\"grpc\"", "result=\"accepted\""}),
            3);
}

TEST_F(OtlpReceiverTest, GrpcGzipLogsAreStored) {
  auto stub = LogsService::NewStub(channel_);
  grpc::ClientContext context;
  context.set_compression_algorithm(GRPC_COMPRESS_GZIP);
  ExportLogsServiceResponse response;
  grpc::Status status = stub->Export(&context, Logs(4), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  std::vector<StoredRecord> stored = Stored();
  ASSERT_EQ(stored.size(), 4u);
  EXPECT_EQ(stored[3].record.received_log().body(), "line 3");
  EXPECT_EQ(Count("meshtel_otlp_items_total",
                  {"signal=\"logs\"", "transport=\"grpc\"", "result=\"accepted\""}),
            4);
}

TEST_F(OtlpReceiverTest, GrpcPartialSuccessStoresTheValidSpans) {
  auto stub = TraceService::NewStub(channel_);
  grpc::ClientContext context;
  ExportTraceServiceResponse response;
  ASSERT_TRUE(stub->Export(&context, Spans(2, 1), &response).ok());
  EXPECT_EQ(response.partial_success().rejected_spans(), 1);
  EXPECT_EQ(response.partial_success().error_message(), "1 span rejected: span_id is all zero");
  EXPECT_EQ(Stored().size(), 2u);
  EXPECT_EQ(Count("meshtel_otlp_requests_total", {"transport=\"grpc\"", "result=\"partial\""}), 1);
  EXPECT_EQ(Count("meshtel_otlp_items_total", {"transport=\"grpc\"", "result=\"rejected\""}), 1);
}

TEST_F(OtlpReceiverTest, GrpcRefusesMalformedAndOversizedRequests) {
  grpc::ByteBuffer response;
  grpc::Status malformed = RawGrpc("/opentelemetry.proto.collector.trace.v1.TraceService/Export",
                                   "\x0a\xff\xff", response);
  EXPECT_EQ(malformed.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  ExportLogsServiceRequest big = Logs(1);
  big.mutable_resource_logs(0)
      ->mutable_scope_logs(0)
      ->mutable_log_records(0)
      ->mutable_body()
      ->set_string_value(std::string(kMaxRequestBytes + 10, 'x'));
  grpc::Status too_large = RawGrpc("/opentelemetry.proto.collector.logs.v1.LogsService/Export",
                                   big.SerializeAsString(), response);
  EXPECT_EQ(too_large.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(Count("meshtel_otlp_requests_total",
                  {"signal=\"traces\"", "transport=\"grpc\"", "result=\"invalid\""}),
            1);
  EXPECT_EQ(Count("meshtel_otlp_requests_total",
                  {"signal=\"logs\"", "transport=\"grpc\"", "result=\"too_large\""}),
            1);
  EXPECT_TRUE(Stored().empty());
}

TEST_F(OtlpReceiverTest, StoreFailureAsksToRetry) {
  ASSERT_TRUE(store_->Close().ok());
  auto stub = TraceService::NewStub(channel_);
  grpc::ClientContext context;
  ExportTraceServiceResponse response;
  grpc::Status status = stub->Export(&context, Spans(1), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  google::rpc::Status details;
  ASSERT_TRUE(details.ParseFromString(status.error_details()));
  ASSERT_EQ(details.details_size(), 1);
  EXPECT_EQ(details.details(0).type_url(), "type.googleapis.com/google.rpc.RetryInfo");
  google::rpc::RetryInfo retry;
  ASSERT_TRUE(retry.ParseFromString(details.details(0).value()));
  EXPECT_EQ(retry.retry_delay().seconds(), 2);

  testing::HttpResult http = Post("/v1/traces", kJson, JsonSpan(kTraceIdHex, "n"));
  EXPECT_EQ(http.status, 503);
  EXPECT_EQ(http.headers["retry-after"], "2");
  EXPECT_EQ(http.headers["content-type"], "application/json");
  EXPECT_NE(http.body.find("\"code\":14"), std::string::npos) << http.body;
  EXPECT_NE(http.body.find("google.rpc.RetryInfo"), std::string::npos) << http.body;
  EXPECT_EQ(Count("meshtel_otlp_requests_total", {"result=\"unavailable\""}), 2);
}

TEST_F(OtlpReceiverTest, HttpProtobufJsonAndGzipAreStored) {
  testing::HttpResult protobuf = Post("/v1/traces", kProtobuf, Spans(2).SerializeAsString());
  ASSERT_EQ(protobuf.status, 200) << protobuf.body;
  EXPECT_EQ(protobuf.headers["content-type"], "application/x-protobuf");
  ExportTraceServiceResponse response;
  ASSERT_TRUE(response.ParseFromString(protobuf.body));
  EXPECT_FALSE(response.has_partial_success());

  testing::HttpResult json = Post("/v1/logs", {{"Content-Type", "application/json; charset=utf-8"}},
                                  R"({"resourceLogs":[{"scopeLogs":[{"logRecords":[
                                      {"body":{"stringValue":"hello"},"severityNumber":9}]}]}]})");
  ASSERT_EQ(json.status, 200) << json.body;
  EXPECT_EQ(json.headers["content-type"], "application/json");
  EXPECT_EQ(json.body, "{}");

  testing::HttpResult gzip =
      Post("/v1/traces", {{"Content-Type", "application/json"}, {"Content-Encoding", "gzip"}},
           *meshtel::common::GzipCompress(JsonSpan(kTraceIdHex, "zipped")));
  ASSERT_EQ(gzip.status, 200) << gzip.body;

  testing::HttpResult gzip_protobuf =
      Post("/v1/logs", {{"Content-Type", "application/x-protobuf"}, {"Content-Encoding", "gzip"}},
           *meshtel::common::GzipCompress(Logs(2).SerializeAsString()));
  ASSERT_EQ(gzip_protobuf.status, 200) << gzip_protobuf.body;

  std::vector<StoredRecord> stored = Stored();
  ASSERT_EQ(stored.size(), 6u);
  EXPECT_EQ(stored[2].record.received_log().body(), "hello");
  EXPECT_EQ(stored[2].record.received_log().severity_number(), 9);
  EXPECT_EQ(stored[3].record.received_span().name(), "zipped");
  EXPECT_EQ(Count("meshtel_otlp_requests_total", {"transport=\"http\"", "result=\"ok\""}), 4);
  EXPECT_EQ(Count("meshtel_otlp_items_total",
                  {"signal=\"traces\"", "transport=\"http\"", "result=\"accepted\""}),
            3);
}

TEST_F(OtlpReceiverTest, HttpPartialSuccessInTheRequestsEncoding) {
  testing::HttpResult json = Post("/v1/traces", kJson, JsonSpan("0102", "short id"));
  ASSERT_EQ(json.status, 200);
  EXPECT_EQ(
      json.body,
      R"({"partialSuccess":{"rejectedSpans":"1","errorMessage":"1 span rejected: trace_id is not 16 bytes"}})");
  testing::HttpResult protobuf = Post("/v1/traces", kProtobuf, Spans(1, 2).SerializeAsString());
  ASSERT_EQ(protobuf.status, 200);
  ExportTraceServiceResponse response;
  ASSERT_TRUE(response.ParseFromString(protobuf.body));
  EXPECT_EQ(response.partial_success().rejected_spans(), 2);
  EXPECT_EQ(Stored().size(), 1u);
  EXPECT_EQ(Count("meshtel_otlp_items_total", {"transport=\"http\"", "result=\"rejected\""}), 3);
}

TEST_F(OtlpReceiverTest, HttpErrorsGetTheirStatusAndCount) {
  struct Case {
    std::string method;
    std::string path;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
    int status;
    std::string result;
  };
  const std::string zeros(kMaxRequestBytes + 1, '\0');
  const std::vector<Case> cases = {
      {"POST", "/v1/traces", {{"Content-Type", "text/plain"}}, "x", 415, "unsupported_media_type"},
      {"POST", "/v1/traces", {}, "x", 415, "unsupported_media_type"},
      {"POST",
       "/v1/logs",
       {{"Content-Type", "application/json"}, {"Content-Encoding", "br"}},
       "{}",
       415,
       "unsupported_media_type"},
      {"POST", "/v1/traces", kProtobuf, std::string(kMaxRequestBytes + 1, 'x'), 413, "too_large"},
      {"POST",
       "/v1/traces",
       {{"Content-Type", "application/x-protobuf"}, {"Content-Encoding", "gzip"}},
       *meshtel::common::GzipCompress(zeros),
       413,
       "too_large"},
      {"POST", "/v1/traces", kJson, "{\"resourceSpans\":[", 400, "invalid"},
      {"POST", "/v1/logs", kProtobuf, "\x0a\xff\xff", 400, "invalid"},
      {"POST",
       "/v1/logs",
       {{"Content-Type", "application/json"}, {"Content-Encoding", "gzip"}},
       "not gzip",
       400,
       "invalid"},
      {"POST", "/v1/metrics", kProtobuf, "", 404, "not_found"},
      {"GET", "/v1/traces", {}, "", 405, "method_not_allowed"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.method + " " + c.path + " → " + std::to_string(c.status));
    const double before =
        Count("meshtel_otlp_requests_total", {"transport=\"http\"", "result=\"" + c.result + "\""});
    testing::HttpResult result =
        testing::HttpRequest(receiver_->http_port(), c.method, c.path, c.headers, c.body);
    EXPECT_EQ(result.status, c.status) << result.body << result.error;
    EXPECT_EQ(
        Count("meshtel_otlp_requests_total", {"transport=\"http\"", "result=\"" + c.result + "\""}),
        before + 1);
    const bool json = !c.headers.empty() && c.headers[0].second == "application/json";
    EXPECT_EQ(result.headers["content-type"], json ? "application/json" : "application/x-protobuf");
    if (json) {
      EXPECT_EQ(result.body.rfind("{\"code\":", 0), 0u) << result.body;
    } else {
      google::rpc::Status status;
      EXPECT_TRUE(status.ParseFromString(result.body));
      EXPECT_FALSE(status.message().empty());
    }
  }
  EXPECT_EQ(testing::HttpRequest(receiver_->http_port(), "GET", "/v1/logs").headers["allow"],
            "POST");
  EXPECT_TRUE(Stored().empty());
  // The server still serves.
  EXPECT_EQ(Post("/v1/traces", kJson, JsonSpan(kTraceIdHex, "after")).status, 200);
  EXPECT_EQ(Stored().size(), 1u);
}

TEST_F(OtlpReceiverTest, SurvivesBrokenHttp) {
  const std::string garbage =
      testing::RawExchange(receiver_->http_port(), "NOT HTTP AT ALL\r\n\r\n");
  EXPECT_EQ(garbage.rfind("HTTP/1.1 400", 0), 0u) << garbage;
  // A body shorter than its Content-Length, then the client goes away.
  testing::RawExchange(receiver_->http_port(),
                       "POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: "
                       "application/json\r\nContent-Length: 100\r\n\r\n{\"res");
  // A header line too long for the parser.
  const std::string huge_header = testing::RawExchange(
      receiver_->http_port(),
      "POST /v1/traces HTTP/1.1\r\nX: " + std::string(100000, 'a') + "\r\n\r\n");
  EXPECT_EQ(huge_header.rfind("HTTP/1.1 400", 0), 0u) << huge_header.substr(0, 100);
  // A chunked body's trailer field over 64 KiB: Beast's parser would throw on it; the read
  // buffer's bound stops it first.
  const std::string huge_trailer = testing::RawExchange(
      receiver_->http_port(),
      "POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
      "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\nx-big: " +
          std::string(100 * 1024, 't') + "\r\n\r\n");
  EXPECT_EQ(huge_trailer.rfind("HTTP/1.1 400", 0), 0u) << huge_trailer.substr(0, 100);
  EXPECT_GE(Count("meshtel_otlp_requests_total", {"result=\"bad_http\""}), 3);
  EXPECT_EQ(Post("/v1/traces", kJson, JsonSpan(kTraceIdHex, "after")).status, 200);
}

TEST_F(OtlpReceiverTest, KeepsConnectionsAlive) {
  const std::string body = JsonSpan(kTraceIdHex, "kept");
  const std::string request =
      "POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: "
      "application/json\r\nContent-Length: " +
      std::to_string(body.size()) + "\r\n\r\n" + body;
  const std::string last =
      "POST /v1/traces HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
      "Content-Type: application/json\r\nContent-Length: " +
      std::to_string(body.size()) + "\r\n\r\n" + body;
  const std::string answers =
      testing::RawExchange(receiver_->http_port(), request + request + last);
  size_t oks = 0;
  for (size_t at = answers.find("HTTP/1.1 200"); at != std::string::npos;
       at = answers.find("HTTP/1.1 200", at + 1)) {
    ++oks;
  }
  EXPECT_EQ(oks, 3u) << answers;
  EXPECT_EQ(Stored().size(), 3u);
}

TEST_F(OtlpReceiverTest, ServesManyKeepAliveConnectionsAtOnce) {
  namespace asio = boost::asio;
  namespace beast = boost::beast;
  namespace http = beast::http;
  constexpr int kConnections = 64;
  asio::io_context io;
  std::vector<std::unique_ptr<beast::tcp_stream>> streams;
  for (int i = 0; i < kConnections; ++i) {
    auto stream = std::make_unique<beast::tcp_stream>(io);
    stream->connect(
        asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), receiver_->http_port()));
    streams.push_back(std::move(stream));
  }
  // Two rounds: every connection sends, then every connection reads its answer.
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < kConnections; ++i) {
      http::request<http::string_body> request(http::verb::post, "/v1/traces", 11);
      request.set(http::field::host, "x");
      request.set(http::field::content_type, "application/json");
      request.body() = JsonSpan(kTraceIdHex, "c" + std::to_string(i));
      request.prepare_payload();
      http::write(*streams[i], request);
    }
    for (int i = 0; i < kConnections; ++i) {
      beast::flat_buffer buffer;
      http::response<http::string_body> response;
      http::read(*streams[i], buffer, response);
      EXPECT_EQ(response.result_int(), 200u);
      EXPECT_TRUE(response.keep_alive());
    }
  }
  EXPECT_EQ(Stored().size(), 2u * kConnections);
}

}  // namespace
}  // namespace meshtel::collector
