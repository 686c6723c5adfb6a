// End to end: the real meshtel-collector with ingest.otlp enabled, on 127.0.0.1.
//
//   - every transport: traces and logs exported over gRPC (plain and grpc-encoding gzip),
//     HTTP/protobuf, HTTP/JSON and HTTP with Content-Encoding gzip, and requests built with the
//     official OTLP schema (../shared; that part is skipped with a printed reason without it), all
//     acknowledged; then the collector is SIGKILLed and its store is opened by the test: every
//     acknowledged span and log record is there, converted (ids, names, service, attributes);
//   - bad input: wrong Content-Type (415), oversized (413 / RESOURCE_EXHAUSTED), malformed
//     protobuf and JSON (400 / INVALID_ARGUMENT), invalid ids (partial success), unknown path
//     (404), wrong method (405), broken HTTP (400): each gets its status and its counter in
//     /metrics, and the collector keeps serving.
//
// Spans stored here reach GET /api/traces/{id} once the trace pipeline assembles received spans
// (not checked here).

#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "collector/common/gzip.h"
#include "collector/store/record_store.h"
#include "google/protobuf/text_format.h"
#include "google/rpc/status.pb.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/impl/client_unary_call.h"
#include "gtest/gtest.h"
#include "opentelemetry/proto/collector/logs/v1/logs_service.grpc.pb.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.grpc.pb.h"
#include "prometheus/registry.h"
#include "tests/support/http_get.h"
#include "tests/support/metrics_text.h"
#include "tests/support/official_schema.h"
#include "tests/support/process.h"

namespace meshtel::e2e {
namespace {

using opentelemetry::proto::collector::logs::v1::ExportLogsServiceRequest;
using opentelemetry::proto::collector::logs::v1::ExportLogsServiceResponse;
using opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest;
using opentelemetry::proto::collector::trace::v1::ExportTraceServiceResponse;
using std::chrono::seconds;

constexpr char kTraceMethod[] = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
constexpr char kLogsMethod[] = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";
constexpr uint64_t kMaxRequestBytes = 1 << 20;

std::string Hex(const std::string& bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (char c : bytes) {
    out += kDigits[static_cast<unsigned char>(c) >> 4];
    out += kDigits[static_cast<unsigned char>(c) & 0xF];
  }
  return out;
}

// A trace id whose first byte tells the transport apart: 16 bytes, never zero.
std::string TraceId(int transport) {
  std::string id(16, '\x5a');
  id[0] = static_cast<char>(transport + 1);
  return id;
}
std::string SpanId(int index) {
  std::string id(8, '\x11');
  id[7] = static_cast<char>(index + 1);
  return id;
}

ExportTraceServiceRequest Spans(int transport, int count, const std::string& service) {
  ExportTraceServiceRequest request;
  auto* resource_spans = request.add_resource_spans();
  auto* name = resource_spans->mutable_resource()->add_attributes();
  name->set_key("service.name");
  name->mutable_value()->set_string_value(service);
  auto* scope_spans = resource_spans->add_scope_spans();
  scope_spans->mutable_scope()->set_name("e2e");
  for (int i = 0; i < count; ++i) {
    auto* span = scope_spans->add_spans();
    span->set_trace_id(TraceId(transport));
    span->set_span_id(SpanId(i));
    if (i > 0) span->set_parent_span_id(SpanId(0));
    span->set_name(service + "-" + std::to_string(i));
    span->set_kind(opentelemetry::proto::trace::v1::Span::SPAN_KIND_SERVER);
    span->set_start_time_unix_nano(1755000000000000000u + static_cast<uint64_t>(i));
    span->set_end_time_unix_nano(1755000000000001000u + static_cast<uint64_t>(i));
    auto* attribute = span->add_attributes();
    attribute->set_key("http.response.status_code");
    attribute->mutable_value()->set_int_value(200);
  }
  return request;
}

ExportLogsServiceRequest Logs(int count, const std::string& service) {
  ExportLogsServiceRequest request;
  auto* resource_logs = request.add_resource_logs();
  auto* name = resource_logs->mutable_resource()->add_attributes();
  name->set_key("service.name");
  name->mutable_value()->set_string_value(service);
  auto* scope_logs = resource_logs->add_scope_logs();
  for (int i = 0; i < count; ++i) {
    auto* record = scope_logs->add_log_records();
    record->set_severity_number(9);
    record->mutable_body()->set_string_value(service + " line " + std::to_string(i));
  }
  return request;
}

std::string JsonSpans(int transport, int count, const std::string& service) {
  std::string spans;
  for (int i = 0; i < count; ++i) {
    if (i > 0) spans += ",";
    spans +=
        R"({"traceId":")" + Hex(TraceId(transport)) + R"(","spanId":")" + Hex(SpanId(i)) +
        R"(","name":")" + service + "-" + std::to_string(i) +
        R"(","kind":2,"startTimeUnixNano":"1755000000000000000","endTimeUnixNano":1755000000000001000,)"
        R"("attributes":[{"key":"http.response.status_code","value":{"intValue":"200"}}]})";
  }
  return R"({"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":")" +
         service + R"("}}]},"scopeSpans":[{"scope":{"name":"e2e"},"spans":[)" + spans + "]}]}]}";
}

std::string JsonLogs(int count, const std::string& service) {
  std::string records;
  for (int i = 0; i < count; ++i) {
    if (i > 0) records += ",";
    records += R"({"severityNumber":9,"body":{"stringValue":")" + service + " line " +
               std::to_string(i) + R"("}})";
  }
  return R"({"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":")" +
         service + R"("}}]},"scopeLogs":[{"logRecords":[)" + records + "]}]}]}";
}

class OtlpReceiverE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("meshtel-otlp-e2e");
    admin_port_ = testing::FreePort();
    grpc_port_ = testing::FreePort();
    http_port_ = testing::FreePort();
    testing::WriteFile(dir_ + "/collector.yaml",
                       "ingest:\n"
                       "  listen: \"127.0.0.1:" +
                           std::to_string(testing::FreePort()) +
                           "\"\n"
                           "  otlp:\n"
                           "    enabled: true\n"
                           "    grpc_listen: \"127.0.0.1:" +
                           std::to_string(grpc_port_) +
                           "\"\n"
                           "    http_listen: \"127.0.0.1:" +
                           std::to_string(http_port_) +
                           "\"\n"
                           "    max_request_bytes: " +
                           std::to_string(kMaxRequestBytes) +
                           "\n"
                           "admin: {listen: \"127.0.0.1:" +
                           std::to_string(admin_port_) +
                           "\"}\n"
                           "store: {data_dir: \"" +
                           dir_ +
                           "/data\", durability: process}\n"
                           "shutdown_grace: 1s\n");
    ASSERT_TRUE(testing::StartCollector(dir_ + "/collector.yaml", dir_ + "/collector.log",
                                        admin_port_, collector_));
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(grpc_port_),
                                   grpc::InsecureChannelCredentials());
  }
  void TearDown() override {
    if (HasFailure() && collector_ != nullptr) std::printf("%s\n", collector_->Log().c_str());
  }

  grpc::Status RawGrpc(const char* method, const std::string& bytes, std::string* response,
                       bool gzip = false) {
    grpc::ClientContext context;
    if (gzip) context.set_compression_algorithm(GRPC_COMPRESS_GZIP);
    grpc::Slice slice(bytes);
    grpc::ByteBuffer request(&slice, 1);
    grpc::ByteBuffer reply;
    grpc::Status status = grpc::internal::BlockingUnaryCall<grpc::ByteBuffer, grpc::ByteBuffer>(
        channel_.get(), grpc::internal::RpcMethod(method, grpc::internal::RpcMethod::NORMAL_RPC),
        &context, request, &reply);
    if (status.ok() && response != nullptr) {
      grpc::Slice single;
      if (reply.DumpToSingleSlice(&single).ok()) {
        response->assign(reinterpret_cast<const char*>(single.begin()), single.size());
      }
    }
    return status;
  }

  testing::HttpResult Post(const std::string& path, const std::string& content_type,
                           const std::string& body, bool gzip = false) {
    std::vector<std::pair<std::string, std::string>> headers = {{"Content-Type", content_type}};
    if (gzip) headers.emplace_back("Content-Encoding", "gzip");
    return testing::HttpRequest(http_port_, "POST", path, headers,
                                gzip ? *meshtel::common::GzipCompress(body) : body);
  }

  double Counter(const std::string& name, const std::vector<std::string>& labels) {
    testing::HttpResult metrics = testing::HttpGet(admin_port_, "/metrics");
    EXPECT_EQ(metrics.status, 200);
    return testing::SumSamples(metrics.body, name, labels);
  }

  // Every entry of the store's logs family, read by the test after the collector is gone.
  std::vector<meshtel::v1::RequestRecord> StoredAfterKill() {
    collector_->Kill();
    prometheus::Registry registry;
    collector::StoreConfig config;
    config.data_dir = dir_ + "/data";
    auto store = collector::RecordStore::Open(config, registry);
    EXPECT_TRUE(store.ok()) << store.status();
    if (!store.ok()) return {};
    auto records = (*store)->Read(collector::RecordFamily::kLogs, collector::StoreKey{},
                                  collector::StoreKey{UINT64_MAX, UINT64_MAX}, 1000000);
    EXPECT_TRUE(records.ok()) << records.status();
    std::vector<meshtel::v1::RequestRecord> out;
    if (records.ok()) {
      for (collector::StoredRecord& record : *records) out.push_back(std::move(record.record));
    }
    return out;
  }

  std::string dir_;
  uint16_t admin_port_ = 0;
  uint16_t grpc_port_ = 0;
  uint16_t http_port_ = 0;
  std::unique_ptr<testing::ChildProcess> collector_;
  std::shared_ptr<grpc::Channel> channel_;
};

// The official-schema requests, in protobuf text format with the official field names.
constexpr char kOfficialTraces[] = R"pb(
  resource_spans {
    resource {
      attributes {
        key: "service.name"
        value { string_value: "official" }
      }
    }
    scope_spans {
      scope { name: "official-scope" version: "1.0" }
      spans {
        trace_id: "\x07\x5a\x5a\x5a\x5a\x5a\x5a\x5a\x5a\x5a\x5a\x5a\x5a\x5a\x5a\x5a"
        span_id: "\x11\x11\x11\x11\x11\x11\x11\x01"
        name: "official-0"
        kind: SPAN_KIND_CLIENT
        start_time_unix_nano: 1755000000000000000
        end_time_unix_nano: 1755000000000002000
        flags: 0x301
        attributes {
          key: "peer.service"
          value { string_value: "db" }
        }
        attributes {
          key: "list"
          value {
            array_value {
              values { int_value: 1 }
              values { bool_value: true }
            }
          }
        }
        events { time_unix_nano: 1755000000000001000 name: "retry" }
        status { code: STATUS_CODE_ERROR message: "timeout" }
      }
    }
  }
)pb";
constexpr char kOfficialLogs[] = R"pb(
  resource_logs {
    resource {
      attributes {
        key: "service.name"
        value { string_value: "official" }
      }
    }
    scope_logs {
      scope { name: "official-logger" }
      log_records {
        time_unix_nano: 1755000000000000000
        severity_number: SEVERITY_NUMBER_WARN
        severity_text: "WARN"
        body {
          kvlist_value {
            values {
              key: "msg"
              value { string_value: "official log" }
            }
          }
        }
        trace_id: "\x07\x5a\x5a\x5a\x5a\x5a\x5a\x5a\x5a\x5a\x5a\x5a\x5a\x5a\x5a\x5a"
        span_id: "\x11\x11\x11\x11\x11\x11\x11\x01"
        event_name: "e2e.event"
      }
    }
  }
)pb";

// The official message `type` parsed from `text` and serialized, or why there is none.
std::string OfficialBytes(const std::string& type, const char* text, std::string* unavailable) {
  testing::OfficialMessage official = testing::NewOfficialMessage(type);
  if (!official.unavailable.empty()) {
    *unavailable = official.unavailable;
    return "";
  }
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, official.message.get()));
  return official.message->SerializeAsString();
}

TEST_F(OtlpReceiverE2eTest, EveryTransportIsAcknowledgedOnlyOnceDurable) {
  // transport index → expected spans (service name, count).
  std::map<std::string, int> expected_spans;  // span name → trace id transport index
  std::multiset<std::string> expected_logs;   // bodies

  // 0: gRPC, 1: gRPC gzip, 2: HTTP/protobuf, 3: HTTP/protobuf gzip, 4: HTTP/JSON, 5: HTTP/JSON
  // gzip.
  const struct {
    const char* service;
    int transport;
  } kinds[] = {{"grpc", 0},          {"grpc-gzip", 1},
               {"http-protobuf", 2}, {"http-protobuf-gzip", 3},
               {"http-json", 4},     {"http-json-gzip", 5}};
  for (const auto& kind : kinds) {
    SCOPED_TRACE(kind.service);
    const int spans = 3;
    const int logs = 2;
    if (kind.transport <= 1) {
      std::string reply;
      ASSERT_TRUE(RawGrpc(kTraceMethod,
                          Spans(kind.transport, spans, kind.service).SerializeAsString(), &reply,
                          kind.transport == 1)
                      .ok());
      ExportTraceServiceResponse response;
      ASSERT_TRUE(response.ParseFromString(reply));
      EXPECT_FALSE(response.has_partial_success());
      ASSERT_TRUE(RawGrpc(kLogsMethod, Logs(logs, kind.service).SerializeAsString(), &reply,
                          kind.transport == 1)
                      .ok());
    } else if (kind.transport <= 3) {
      const bool gzip = kind.transport == 3;
      testing::HttpResult traces =
          Post("/v1/traces", "application/x-protobuf",
               Spans(kind.transport, spans, kind.service).SerializeAsString(), gzip);
      ASSERT_EQ(traces.status, 200) << traces.body;
      EXPECT_EQ(traces.headers["content-type"], "application/x-protobuf");
      ExportTraceServiceResponse response;
      ASSERT_TRUE(response.ParseFromString(traces.body));
      EXPECT_FALSE(response.has_partial_success());
      testing::HttpResult logs_result = Post("/v1/logs", "application/x-protobuf",
                                             Logs(logs, kind.service).SerializeAsString(), gzip);
      ASSERT_EQ(logs_result.status, 200) << logs_result.body;
    } else {
      const bool gzip = kind.transport == 5;
      testing::HttpResult traces = Post("/v1/traces", "application/json",
                                        JsonSpans(kind.transport, spans, kind.service), gzip);
      ASSERT_EQ(traces.status, 200) << traces.body;
      EXPECT_EQ(traces.headers["content-type"], "application/json");
      EXPECT_EQ(traces.body, "{}");
      testing::HttpResult logs_result =
          Post("/v1/logs", "application/json", JsonLogs(logs, kind.service), gzip);
      ASSERT_EQ(logs_result.status, 200) << logs_result.body;
      EXPECT_EQ(logs_result.body, "{}");
    }
    for (int i = 0; i < spans; ++i) {
      expected_spans[std::string(kind.service) + "-" + std::to_string(i)] = kind.transport;
    }
    for (int i = 0; i < logs; ++i) {
      expected_logs.insert(std::string(kind.service) + " line " + std::to_string(i));
    }
  }

  // Requests built with the official schema, over gRPC and HTTP/protobuf.
  std::string unavailable;
  const std::string official_traces =
      OfficialBytes("opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest",
                    kOfficialTraces, &unavailable);
  const std::string official_logs =
      OfficialBytes("opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest", kOfficialLogs,
                    &unavailable);
  const bool official = unavailable.empty();
  if (official) {
    ASSERT_TRUE(RawGrpc(kTraceMethod, official_traces, nullptr).ok());
    ASSERT_EQ(Post("/v1/logs", "application/x-protobuf", official_logs).status, 200);
  } else {
    std::printf("skipping the official-schema requests: %s\n", unavailable.c_str());
  }

  EXPECT_EQ(Counter("meshtel_otlp_items_total", {"signal=\"traces\"", "result=\"accepted\""}),
            18 + (official ? 1 : 0));
  EXPECT_EQ(Counter("meshtel_otlp_items_total", {"signal=\"logs\"", "result=\"accepted\""}),
            12 + (official ? 1 : 0));
  EXPECT_EQ(Counter("meshtel_otlp_requests_total", {"transport=\"grpc\"", "result=\"ok\""}),
            4 + (official ? 1 : 0));
  EXPECT_EQ(Counter("meshtel_otlp_requests_total", {"transport=\"http\"", "result=\"ok\""}),
            8 + (official ? 1 : 0));

  // Acknowledged means durable: SIGKILL, then read the store.
  std::map<std::string, int> found_spans;
  std::multiset<std::string> found_logs;
  const meshtel::v1::Span* official_span = nullptr;
  const meshtel::v1::LogEntry* official_log = nullptr;
  const std::vector<meshtel::v1::RequestRecord> stored = StoredAfterKill();
  for (const meshtel::v1::RequestRecord& record : stored) {
    if (record.has_received_span()) {
      const meshtel::v1::Span& span = record.received_span();
      if (span.name() == "official-0") {
        official_span = &span;
        continue;
      }
      found_spans[span.name()] = static_cast<unsigned char>(span.trace_id()[0]) - 1;
      EXPECT_EQ(span.trace_id().size(), 16u);
      EXPECT_EQ(span.span_id().size(), 8u);
      EXPECT_EQ(span.kind(), meshtel::v1::SPAN_KIND_SERVER);
      EXPECT_EQ(span.service_name() + "-", span.name().substr(0, span.service_name().size() + 1));
      EXPECT_EQ(span.scope_name(), "e2e");
      ASSERT_EQ(span.attributes_size(), 1);
      EXPECT_EQ(span.attributes(0).int_value(), 200);
    } else if (record.has_received_log()) {
      if (record.received_log().service_name() == "official") {
        official_log = &record.received_log();
        continue;
      }
      found_logs.insert(record.received_log().body());
      EXPECT_EQ(record.received_log().severity_number(), 9);
      EXPECT_GT(record.received_log().observed_time_unix_nano(), 0u);
    }
  }
  EXPECT_EQ(found_spans, expected_spans);
  EXPECT_EQ(found_logs, expected_logs);
  if (official) {
    ASSERT_NE(official_span, nullptr);
    EXPECT_EQ(Hex(official_span->trace_id()), "075a5a5a5a5a5a5a5a5a5a5a5a5a5a5a");
    EXPECT_EQ(official_span->kind(), meshtel::v1::SPAN_KIND_CLIENT);
    EXPECT_EQ(official_span->flags(), 1u);
    EXPECT_EQ(official_span->status_code(), meshtel::v1::SPAN_STATUS_CODE_ERROR);
    EXPECT_EQ(official_span->status_message(), "timeout");
    EXPECT_EQ(official_span->service_name(), "official");
    EXPECT_EQ(official_span->scope_version(), "1.0");
    std::map<std::string, std::string> attributes;
    for (const auto& attribute : official_span->attributes()) {
      attributes[attribute.key()] = attribute.string_value();
    }
    EXPECT_EQ(attributes["peer.service"], "db");
    EXPECT_EQ(attributes["list"], "[1,true]");
    EXPECT_EQ(attributes["otlp.events"],
              R"([{"timeUnixNano":"1755000000000001000","name":"retry","attributes":{}}])");
    ASSERT_NE(official_log, nullptr);
    EXPECT_EQ(official_log->severity_number(), 13);
    EXPECT_EQ(official_log->severity_text(), "WARN");
    EXPECT_EQ(official_log->body(), R"({"msg":"official log"})");
    EXPECT_TRUE(official_log->body_is_json());
    EXPECT_EQ(official_log->event_name(), "e2e.event");
    EXPECT_EQ(official_log->span_id().size(), 8u);
    EXPECT_EQ(official_log->scope_name(), "official-logger");
  }
}

TEST_F(OtlpReceiverE2eTest, BadInputGetsItsStatusAndCounterAndServingGoesOn) {
  struct Case {
    const char* what;
    std::string path;
    std::string content_type;
    std::string body;
    bool gzip;
    int status;
    const char* result;
  };
  const std::vector<Case> cases = {
      {"wrong content type", "/v1/traces", "text/plain", "{}", false, 415,
       "unsupported_media_type"},
      {"over the limit", "/v1/logs", "application/x-protobuf",
       std::string(kMaxRequestBytes + 1, 'x'), false, 413, "too_large"},
      {"over the limit once inflated", "/v1/traces", "application/json",
       std::string(kMaxRequestBytes + 1, ' '), true, 413, "too_large"},
      {"malformed JSON", "/v1/traces", "application/json", "{\"resourceSpans\":[{]}", false, 400,
       "invalid"},
      {"malformed protobuf", "/v1/logs", "application/x-protobuf", "\x0a\x05\x0a", false, 400,
       "invalid"},
      {"unknown path", "/v1/profiles", "application/json", "{}", false, 404, "not_found"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    const std::vector<std::string> labels = {"transport=\"http\"",
                                             std::string("result=\"") + c.result + "\""};
    const double before = Counter("meshtel_otlp_requests_total", labels);
    testing::HttpResult result = Post(c.path, c.content_type, c.body, c.gzip);
    EXPECT_EQ(result.status, c.status) << result.body << result.error;
    if (c.content_type == "application/json") {
      EXPECT_EQ(result.headers["content-type"], "application/json");
      EXPECT_EQ(result.body.rfind("{\"code\":", 0), 0u) << result.body;
    } else {
      google::rpc::Status status;
      EXPECT_TRUE(status.ParseFromString(result.body));
      EXPECT_FALSE(status.message().empty());
    }
    EXPECT_EQ(Counter("meshtel_otlp_requests_total", labels), before + 1);
  }
  testing::HttpResult get = testing::HttpGet(http_port_, "/v1/traces");
  EXPECT_EQ(get.status, 405);
  EXPECT_EQ(get.headers["allow"], "POST");
  EXPECT_EQ(Counter("meshtel_otlp_requests_total", {"result=\"method_not_allowed\""}), 1);

  const std::string garbage = testing::RawExchange(http_port_, "\x16\x03\x01 not http\r\n\r\n");
  EXPECT_EQ(garbage.rfind("HTTP/1.1 400", 0), 0u) << garbage;
  EXPECT_EQ(Counter("meshtel_otlp_requests_total", {"result=\"bad_http\""}), 1);

  // Invalid ids: the valid spans are stored, the others rejected with partial success.
  testing::HttpResult partial = Post("/v1/traces", "application/json",
                                     R"({"resourceSpans":[{"scopeSpans":[{"spans":[
               {"traceId":"00000000000000000000000000000000","spanId":"00f067aa0ba902b7"},
               {"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","spanId":"00f067aa0ba902"},
               {"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","spanId":"00f067aa0ba902b7","name":"ok"}]}]}]})");
  ASSERT_EQ(partial.status, 200);
  EXPECT_EQ(
      partial.body,
      R"({"partialSuccess":{"rejectedSpans":"2","errorMessage":"2 spans rejected; the first: trace_id is all zero"}})");
  ExportLogsServiceRequest bad_logs = Logs(2, "bad");
  bad_logs.mutable_resource_logs(0)->mutable_scope_logs(0)->mutable_log_records(1)->set_span_id(
      "xyz");
  std::string reply;
  ASSERT_TRUE(RawGrpc(kLogsMethod, bad_logs.SerializeAsString(), &reply).ok());
  ExportLogsServiceResponse logs_response;
  ASSERT_TRUE(logs_response.ParseFromString(reply));
  EXPECT_EQ(logs_response.partial_success().rejected_log_records(), 1);
  EXPECT_EQ(Counter("meshtel_otlp_items_total", {"result=\"rejected\""}), 3);
  EXPECT_EQ(Counter("meshtel_otlp_requests_total", {"result=\"partial\""}), 2);

  // gRPC refusals.
  EXPECT_EQ(RawGrpc(kTraceMethod, "\x0a\x05\x0a", nullptr).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  ExportLogsServiceRequest big = Logs(1, "big");
  big.mutable_resource_logs(0)
      ->mutable_scope_logs(0)
      ->mutable_log_records(0)
      ->mutable_body()
      ->set_string_value(std::string(kMaxRequestBytes, 'x'));
  EXPECT_EQ(RawGrpc(kLogsMethod, big.SerializeAsString(), nullptr).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(Counter("meshtel_otlp_requests_total", {"transport=\"grpc\"", "result=\"invalid\""}),
            1);
  EXPECT_EQ(Counter("meshtel_otlp_requests_total", {"transport=\"grpc\"", "result=\"too_large\""}),
            1);

  // Still serving both transports.
  EXPECT_EQ(Post("/v1/traces", "application/json", JsonSpans(4, 1, "after")).status, 200);
  EXPECT_TRUE(RawGrpc(kTraceMethod, Spans(0, 1, "after").SerializeAsString(), nullptr).ok());
  const std::vector<meshtel::v1::RequestRecord> stored = StoredAfterKill();
  std::multiset<std::string> names;
  for (const auto& record : stored) {
    if (record.has_received_span()) names.insert(record.received_span().name());
    if (record.has_received_log()) names.insert(record.received_log().body());
  }
  EXPECT_EQ(names, (std::multiset<std::string>{"ok", "bad line 0", "after-0", "after-0"}));
}

}  // namespace
}  // namespace meshtel::e2e
