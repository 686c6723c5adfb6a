// Received spans and log records (entries of the ingest log with only received_span or
// received_log set, as the OTLP receiver stores them) through the real collector: the trace
// pipeline, the delivery engine and the Loki, Fluentd, Jaeger and OTLP exporters, each pointing
// at its test receiver (tests/support/). The collector runs in-process (Collector::Start with the
// program's exporter registry, a real store in a temp dir, real admin server) and the entries go
// in through ReceivedRecordSink::Store, as a receiver hands them over; what reaches each backend
// is checked field by field.

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "collector/collector.h"
#include "collector/config/collector_config.h"
#include "collector/traces/trace_json.h"
#include "exporters/exporter_registry.h"
#include "gtest/gtest.h"
#include "tests/support/fluentd_receiver.h"
#include "tests/support/http_get.h"
#include "tests/support/jaeger_receiver.h"
#include "tests/support/loki_receiver.h"
#include "tests/support/metrics_text.h"
#include "tests/support/otlp_receiver.h"
#include "tests/support/process.h"
#include "yaml-cpp/yaml.h"

namespace meshtel {
namespace {

using exporters::fluentd::MsgpackValue;
using std::chrono::seconds;

constexpr char kTraceMixed[] = "4bf92f3577b34da6a3ce929d0e0e4736";
constexpr char kTraceError[] = "5bf92f3577b34da6a3ce929d0e0e4736";
constexpr char kTraceDropped[] = "6bf92f3577b34da6a3ce929d0e0e4736";
constexpr char kProxySpan[] = "00f067aa0ba902b7";
constexpr char kSdkSpan[] = "00f067aa0ba902b8";
constexpr char kErrorSpan[] = "00f067aa0ba902b9";

std::string Bytes(const std::string& hex) { return *collector::ParseHexId(hex); }

testing::AttributeValue Text(const std::string& value) { return testing::AttributeValue(value); }

void AddString(google::protobuf::RepeatedPtrField<meshtel::v1::SpanAttribute>& to,
               const std::string& key, const std::string& value) {
  meshtel::v1::SpanAttribute* attribute = to.Add();
  attribute->set_key(key);
  attribute->set_string_value(value);
}

void AddInt(google::protobuf::RepeatedPtrField<meshtel::v1::SpanAttribute>& to,
            const std::string& key, int64_t value) {
  meshtel::v1::SpanAttribute* attribute = to.Add();
  attribute->set_key(key);
  attribute->set_int_value(value);
}

class ReceivedEntriesTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::MakeTempDir("received-entries"); }
  // Starts the collector; `otlp` true: with its OTLP receiver on loopback (http_port_).
  void StartCollector(bool otlp) {
    http_port_ = testing::FreePort();
    const std::string otlp_block =
        otlp
            ? absl::StrCat(", otlp: {enabled: true, grpc_listen: \"127.0.0.1:", testing::FreePort(),
                           "\", http_listen: \"127.0.0.1:", http_port_, "\"}")
            : "";
    const std::string yaml =
        absl::StrCat("ingest: {listen: \"127.0.0.1:", testing::FreePort(), "\"", otlp_block,
                     "}\n"
                     "admin: {listen: \"127.0.0.1:",
                     testing::FreePort(),
                     "\"}\n"
                     "store: {data_dir: \"",
                     dir_,
                     "/data\", durability: process}\n"
                     "traces:\n"
                     "  assembly: {idle_timeout: 300ms, max_wait: 20s}\n"
                     "  sampling: {latency_threshold: 0s}\n"
                     "exporters:\n"
                     "  - {name: loki, type: loki, batch: {max_wait: 200ms},\n"
                     "     loki: {url: \"",
                     loki_.url(),
                     "\", timeout: 5s}}\n"
                     "  - {name: fluentd, type: fluentd, batch: {max_wait: 200ms},\n"
                     "     fluentd: {address: \"127.0.0.1:",
                     fluentd_.port(),
                     "\", timeout: 5s}}\n"
                     "  - {name: jaeger, type: jaeger, batch: {max_wait: 200ms},\n"
                     "     jaeger: {endpoint: \"",
                     jaeger_.endpoint(),
                     "\"}}\n"
                     "  - {name: tempo, type: otlp, batch: {max_wait: 200ms},\n"
                     "     otlp: {protocol: grpc, endpoint: \"",
                     otlp_.grpc_endpoint(), "\"}}\n");
    absl::StatusOr<collector::CollectorConfig> config =
        collector::ParseCollectorConfig(YAML::Load(yaml));
    ASSERT_TRUE(config.ok()) << config.status() << "\n" << yaml;
    absl::StatusOr<std::unique_ptr<collector::Collector>> started =
        collector::Collector::Start(*config, &exporters::BuildExporter);
    ASSERT_TRUE(started.ok()) << started.status();
    collector_ = *std::move(started);
  }
  void TearDown() override {
    if (collector_ != nullptr) {
      EXPECT_TRUE(collector_->Shutdown().ok());
    }
  }

  std::string Admin(const std::string& target) {
    return testing::HttpGet(collector_->admin_port(), target).body;
  }

  // The inbound proxy's record of GET /cart on cart-v1: the SERVER span that is the trace's
  // root.
  static meshtel::v1::RequestRecord ProxyRecord(uint64_t start) {
    meshtel::v1::RequestRecord record;
    record.set_reporter(meshtel::v1::REPORTER_DESTINATION);
    record.set_start_time_unix_nano(start);
    record.set_duration_ns(10'000'000);
    record.set_method("GET");
    record.set_authority("cart:8080");
    record.set_path("/cart");
    record.set_protocol("HTTP/1.1");
    record.set_response_code(200);
    record.set_request_id("6f1c2b9e-3d1a");
    record.set_trace_id(Bytes(kTraceMixed));
    record.set_span_id(Bytes(kProxySpan));
    record.set_sampled(true);
    record.mutable_destination()->set_workload("cart-v1");
    record.mutable_destination()->set_namespace_("shop");
    record.mutable_destination()->set_app("cart");
    return record;
  }

  // The cart app's own span (its Java SDK), child of the proxy's SERVER span.
  static meshtel::v1::RequestRecord SdkSpan(uint64_t start) {
    meshtel::v1::RequestRecord record;
    meshtel::v1::Span& span = *record.mutable_received_span();
    span.set_trace_id(Bytes(kTraceMixed));
    span.set_span_id(Bytes(kSdkSpan));
    span.set_parent_span_id(Bytes(kProxySpan));
    span.set_name("GET /cart");
    span.set_kind(meshtel::v1::SPAN_KIND_SERVER);
    span.set_start_time_unix_nano(start + 1'000'000);
    span.set_end_time_unix_nano(start + 9'000'000);
    span.set_flags(1);
    span.set_trace_state("vendor=1");
    AddString(*span.mutable_attributes(), "http.route", "/cart");
    AddInt(*span.mutable_attributes(), "http.response.status_code", 200);
    span.set_status_code(meshtel::v1::SPAN_STATUS_CODE_OK);
    span.set_service_name("cart");
    AddString(*span.mutable_resource_attributes(), "service.namespace", "shop");
    AddString(*span.mutable_resource_attributes(), "k8s.pod.name", "cart-7d9f8b6c5-x2x9z");
    AddString(*span.mutable_resource_attributes(), "telemetry.sdk.language", "java");
    span.set_scope_name("io.opentelemetry.spring-webmvc-6.0");
    span.set_scope_version("2.1.0");
    return record;
  }

  // A root span of payments, not sampled, whose SDK left the status unset on a 503.
  static meshtel::v1::RequestRecord ErrorSpan(uint64_t start, const std::string& trace) {
    meshtel::v1::RequestRecord record;
    meshtel::v1::Span& span = *record.mutable_received_span();
    span.set_trace_id(Bytes(trace));
    span.set_span_id(Bytes(kErrorSpan));
    span.set_name("POST /pay");
    span.set_kind(meshtel::v1::SPAN_KIND_SERVER);
    span.set_start_time_unix_nano(start);
    span.set_end_time_unix_nano(start + 2'000'000);
    AddInt(*span.mutable_attributes(), "http.response.status_code",
           trace == kTraceError ? 503 : 200);
    AddString(*span.mutable_resource_attributes(), "service.name", "payments");
    span.set_scope_name("payments-tracer");
    return record;
  }

  static meshtel::v1::RequestRecord Log(uint64_t time, const std::string& body) {
    meshtel::v1::RequestRecord record;
    meshtel::v1::LogEntry& log = *record.mutable_received_log();
    log.set_time_unix_nano(time);
    log.set_observed_time_unix_nano(time + 1000);
    log.set_severity_number(17);
    log.set_severity_text("ERROR");
    log.set_body(body);
    log.set_trace_id(Bytes(kTraceMixed));
    log.set_span_id(Bytes(kSdkSpan));
    log.set_flags(1);
    log.set_service_name("cart");
    AddString(*log.mutable_resource_attributes(), "k8s.namespace.name", "shop");
    AddString(*log.mutable_resource_attributes(), "host.name", "node-3");
    AddString(*log.mutable_attributes(), "order.id", "o-17");
    log.set_scope_name("com.shop.cart");
    return record;
  }

  std::string dir_;
  uint16_t http_port_ = 0;
  testing::LokiReceiver loki_;
  testing::FluentdReceiver fluentd_;
  testing::JaegerReceiver jaeger_;
  testing::OtlpReceiver otlp_;
  std::unique_ptr<collector::Collector> collector_;
};

const testing::ReceivedSpan* Find(const std::vector<testing::ReceivedSpan>& spans,
                                  const std::string& trace, const std::string& span) {
  for (const testing::ReceivedSpan& received : spans) {
    if (received.trace_id == trace && received.span_id == span) return &received;
  }
  return nullptr;
}

TEST_F(ReceivedEntriesTest, ReceivedSpansAndLogsReachEveryBackendAsWhatTheyAre) {
  StartCollector(/*otlp=*/false);
  ASSERT_NE(collector_, nullptr);
  const uint64_t start = static_cast<uint64_t>(absl::ToUnixNanos(absl::Now() - absl::Minutes(1)));
  const uint64_t stale = static_cast<uint64_t>(absl::ToUnixNanos(absl::Now() - absl::Hours(200)));
  google::protobuf::RepeatedPtrField<meshtel::v1::RequestRecord> entries;
  *entries.Add() = ProxyRecord(start);
  *entries.Add() = SdkSpan(start);
  *entries.Add() = ErrorSpan(start, kTraceError);
  *entries.Add() = ErrorSpan(start, kTraceDropped);
  *entries.Add() = Log(start + 5'000'000, "payment declined");
  *entries.Add() = Log(stale, "stale entry");  // past Loki's 7 days: a Loki dead letter
  ASSERT_TRUE(collector_->Store(entries).ok());

  // Traces: the mixed trace (proxy + SDK span) and the error trace are kept, the unsampled
  // 200 is not.
  ASSERT_TRUE(jaeger_.WaitForSpans(3, absl::Seconds(60)));
  ASSERT_TRUE(otlp_.WaitForSpans(3, absl::Seconds(60)));
  for (const auto& [backend, spans] :
       std::vector<std::pair<std::string, std::vector<testing::ReceivedSpan>>>{
           {"jaeger", jaeger_.Spans()}, {"otlp", otlp_.Spans()}}) {
    SCOPED_TRACE(backend);
    EXPECT_EQ(spans.size(), 3u);
    const testing::ReceivedSpan* sdk = Find(spans, kTraceMixed, kSdkSpan);
    const testing::ReceivedSpan* proxy = Find(spans, kTraceMixed, kProxySpan);
    const testing::ReceivedSpan* error = Find(spans, kTraceError, kErrorSpan);
    ASSERT_NE(sdk, nullptr);
    ASSERT_NE(proxy, nullptr);
    ASSERT_NE(error, nullptr);
    EXPECT_EQ(Find(spans, kTraceDropped, kErrorSpan), nullptr);
    // The SDK's span as the SDK sent it: its service, resource, scope, attributes.
    EXPECT_EQ(sdk->parent_span_id, kProxySpan);
    EXPECT_EQ(sdk->name, "GET /cart");
    EXPECT_EQ(sdk->kind, "server");
    EXPECT_EQ(sdk->service, "cart");
    EXPECT_EQ(sdk->resource.at("service.namespace"), Text("shop"));
    EXPECT_EQ(sdk->resource.at("k8s.pod.name"), Text("cart-7d9f8b6c5-x2x9z"));
    EXPECT_EQ(sdk->resource.at("telemetry.sdk.language"), Text("java"));
    EXPECT_FALSE(sdk->resource.contains("service.name"));
    EXPECT_EQ(sdk->scope_name, "io.opentelemetry.spring-webmvc-6.0");
    EXPECT_EQ(sdk->attributes.at("http.route"), Text("/cart"));
    EXPECT_EQ(sdk->attributes.at("http.response.status_code"),
              testing::AttributeValue(int64_t{200}));
    EXPECT_EQ(sdk->status, "OK");
    EXPECT_EQ(sdk->flags & 1, 1u);
    EXPECT_EQ(sdk->start_unix_nano, start + 1'000'000);
    EXPECT_EQ(sdk->end_unix_nano, start + 9'000'000);
    EXPECT_FALSE(sdk->attributes.contains("meshtel.anomaly"));
    // The proxy's span of the same trace keeps the proxy's identity.
    EXPECT_TRUE(proxy->parent_span_id.empty());
    EXPECT_EQ(proxy->kind, "server");
    EXPECT_EQ(proxy->scope_name, "meshtel-proxy");
    EXPECT_NE(proxy->service, "cart");
    // service.name from the SDK's resource; kept as an error on its HTTP status alone.
    EXPECT_EQ(error->service, "payments");
    EXPECT_FALSE(error->resource.contains("service.name"));
    EXPECT_EQ(error->scope_name, "payments-tracer");
    EXPECT_EQ(error->status, "");
  }
  const std::string trace_json = Admin(absl::StrCat("/api/traces/", kTraceMixed));
  EXPECT_NE(trace_json.find(absl::StrCat("\"spanId\":\"", kSdkSpan, "\"")), std::string::npos)
      << trace_json;
  EXPECT_NE(trace_json.find("{\"name\":\"io.opentelemetry.spring-webmvc-6.0\",\"version\":"
                            "\"2.1.0\"}"),
            std::string::npos)
      << trace_json;
  EXPECT_NE(trace_json.find("{\"key\":\"service.name\",\"value\":{\"stringValue\":\"cart\"}}"),
            std::string::npos)
      << trace_json;

  // Logs: Loki gets the access line and the log record; the stale one is set aside.
  struct LokiEntry {
    std::string labels;
    logproto::EntryAdapter entry;
  };
  const auto loki_entries = [&] {
    std::vector<LokiEntry> out;
    for (const testing::LokiPush& push : loki_.Pushes()) {
      for (const auto& stream : push.request.streams()) {
        for (const auto& entry : stream.entries()) out.push_back({stream.labels(), entry});
      }
    }
    return out;
  };
  ASSERT_TRUE(testing::WaitFor([&] { return loki_entries().size() >= 2; }, seconds(60)));
  ASSERT_TRUE(testing::WaitFor([&] { return fluentd_.events().size() >= 3; }, seconds(60)));
  // Each exporter counts each entry once: Loki 2 delivered + 1 rejected + 3 spans filtered,
  // Fluentd 3 delivered + 3 filtered; the trace exporters read the spans family (3 each).
  const auto counts = [&](const std::string& name) {
    const std::string json = Admin("/api/exporters");
    const size_t at = json.find("{\"name\":\"" + name + "\"");
    if (at == std::string::npos) return std::string("no exporter ") + name;
    const size_t from = json.find("\"delivered\"", at);
    const size_t to = json.find(",\"retrying\"", from);
    return json.substr(from, to - from);
  };
  const std::map<std::string, std::string> expected_counts = {
      {"loki", "\"delivered\":2,\"rejected\":1,\"filtered\":3"},
      {"fluentd", "\"delivered\":3,\"rejected\":0,\"filtered\":3"},
      {"jaeger", "\"delivered\":3,\"rejected\":0,\"filtered\":0"},
      {"tempo", "\"delivered\":3,\"rejected\":0,\"filtered\":0"}};
  for (const auto& [name, expected] : expected_counts) {
    EXPECT_TRUE(testing::WaitFor([&] { return counts(name) == expected; }, seconds(30)))
        << name << ": " << counts(name);
  }

  const std::vector<LokiEntry> entries_at_loki = loki_entries();
  ASSERT_EQ(entries_at_loki.size(), 2u);
  const LokiEntry* log = nullptr;
  const LokiEntry* access = nullptr;
  for (const LokiEntry& entry : entries_at_loki) {
    (entry.entry.line() == "payment declined" ? log : access) = &entry;
  }
  ASSERT_NE(log, nullptr);
  ASSERT_NE(access, nullptr);
  EXPECT_EQ(log->labels, "{job=\"meshtel\", k8s_namespace_name=\"shop\", service_name=\"cart\"}");
  EXPECT_EQ(static_cast<uint64_t>(log->entry.timestamp().seconds()) * 1'000'000'000 +
                static_cast<uint64_t>(log->entry.timestamp().nanos()),
            start + 5'000'000);
  std::map<std::string, std::string> metadata;
  for (const auto& pair : log->entry.structuredmetadata()) metadata[pair.name()] = pair.value();
  EXPECT_EQ(metadata, (std::map<std::string, std::string>{
                          {"host_name", "node-3"},
                          {"scope_name", "com.shop.cart"},
                          {"order_id", "o-17"},
                          {"trace_id", kTraceMixed},
                          {"span_id", kSdkSpan},
                          {"severity_text", "ERROR"},
                          {"severity_number", "17"},
                          {"detected_level", "error"},
                          {"flags", "1"},
                          {"observed_timestamp", std::to_string(start + 5'001'000)},
                      }));
  EXPECT_NE(access->entry.line().find("/cart"), std::string::npos) << access->entry.line();
  EXPECT_NE(access->labels.find("workload=\"cart-v1\""), std::string::npos) << access->labels;
  for (const testing::LokiPush& push : loki_.Pushes()) {
    EXPECT_TRUE(push.official_mismatches.empty()) << push.official_mismatches.front();
  }

  // Fluentd: the access event under its tag, both log records under meshtel.log.
  std::vector<testing::FluentdReceiver::Event> events = fluentd_.events();
  ASSERT_EQ(events.size(), 3u);
  std::map<std::string, const testing::FluentdReceiver::Event*> by_message;
  for (const auto& event : events) {
    if (event.tag == "meshtel.access") {
      EXPECT_EQ(event.record.Find("path")->bytes, "/cart");
      continue;
    }
    EXPECT_EQ(event.tag, "meshtel.log");
    by_message[event.record.Find("message")->bytes] = &event;
  }
  ASSERT_TRUE(by_message.contains("payment declined"));
  ASSERT_TRUE(by_message.contains("stale entry"));
  const MsgpackValue& record = by_message["payment declined"]->record;
  EXPECT_EQ(record.Find("severity")->bytes, "ERROR");
  EXPECT_EQ(record.Find("severity_number")->AsInt(), 17);
  EXPECT_EQ(record.Find("level")->bytes, "error");
  EXPECT_EQ(record.Find("service_name")->bytes, "cart");
  EXPECT_EQ(record.Find("trace_id")->bytes, kTraceMixed);
  EXPECT_EQ(record.Find("span_id")->bytes, kSdkSpan);
  EXPECT_EQ(record.Find("attributes")->Find("order.id")->bytes, "o-17");
  EXPECT_EQ(record.Find("resource")->Find("service.name")->bytes, "cart");
  EXPECT_EQ(record.Find("resource")->Find("k8s.namespace.name")->bytes, "shop");
  EXPECT_EQ(by_message["payment declined"]->seconds, (start + 5'000'000) / 1'000'000'000);
  EXPECT_EQ(by_message["payment declined"]->nanoseconds, (start + 5'000'000) % 1'000'000'000);

  // The dead letter says what it holds.
  const std::string letters = Admin("/api/dead-letters?exporter=loki");
  EXPECT_NE(letters.find("\"kind\":\"received_log\""), std::string::npos) << letters;
  EXPECT_NE(letters.find("ERROR cart: stale entry trace_id=" + std::string(kTraceMixed)),
            std::string::npos)
      << letters;

  // Request metrics count the one request, never the received entries.
  const std::string metrics = Admin("/metrics");
  EXPECT_EQ(testing::SumSamples(metrics, "istio_requests_total", {}), 1) << metrics;
}

// The same path from the network: an SDK's OTLP/HTTP JSON export to the collector's OTLP receiver.
TEST_F(ReceivedEntriesTest, OtlpFromTheNetworkReachesEveryBackend) {
  StartCollector(/*otlp=*/true);
  ASSERT_NE(collector_, nullptr);
  const uint64_t start = static_cast<uint64_t>(absl::ToUnixNanos(absl::Now() - absl::Minutes(1)));
  const std::string trace = "7bf92f3577b34da6a3ce929d0e0e4736";
  const std::string resource =
      R"({"attributes":[{"key":"service.name","value":{"stringValue":"web"}},)"
      R"({"key":"k8s.namespace.name","value":{"stringValue":"shop"}}]})";
  const std::string spans = absl::StrCat(
      R"({"resourceSpans":[{"resource":)", resource,
      R"(,"scopeSpans":[{"scope":{"name":"web-tracer","version":"1.0"},"spans":[{"traceId":")",
      trace, R"(","spanId":"1111111111111111","name":"GET /","kind":2,"startTimeUnixNano":")",
      start, R"(","endTimeUnixNano":")", start + 8'000'000,
      R"(","flags":0,"status":{"code":2,"message":"boom"},)",
      R"("attributes":[{"key":"http.route","value":{"stringValue":"/"}}]},{"traceId":")", trace,
      R"(","spanId":"2222222222222222","parentSpanId":"1111111111111111",)",
      R"("name":"SELECT cart","kind":3,"startTimeUnixNano":")", start + 1'000'000,
      R"(","endTimeUnixNano":")", start + 3'000'000, R"("}]}]}]})");
  const std::string logs = absl::StrCat(
      R"({"resourceLogs":[{"resource":)", resource,
      R"(,"scopeLogs":[{"scope":{"name":"web-logger"},"logRecords":[{"timeUnixNano":")",
      start + 2'000'000, R"(","severityNumber":9,"severityText":"INFO",)",
      R"("body":{"stringValue":"hello from web"},"traceId":")", trace,
      R"(","spanId":"1111111111111111","attributes":[{"key":"user.id",)",
      R"("value":{"intValue":"42"}}]}]}]}]})");
  const std::vector<std::pair<std::string, std::string>> json = {
      {"Content-Type", "application/json"}};
  testing::HttpResult answer = testing::HttpRequest(http_port_, "POST", "/v1/traces", json, spans);
  ASSERT_EQ(answer.status, 200) << answer.error << answer.body;
  answer = testing::HttpRequest(http_port_, "POST", "/v1/logs", json, logs);
  ASSERT_EQ(answer.status, 200) << answer.error << answer.body;

  // The trace (an error, not sampled) reaches both trace backends as the SDK made it.
  ASSERT_TRUE(jaeger_.WaitForSpans(2, absl::Seconds(60)));
  ASSERT_TRUE(otlp_.WaitForSpans(2, absl::Seconds(60)));
  for (const auto& [backend, received] :
       std::vector<std::pair<std::string, std::vector<testing::ReceivedSpan>>>{
           {"jaeger", jaeger_.Spans()}, {"otlp", otlp_.Spans()}}) {
    SCOPED_TRACE(backend);
    ASSERT_EQ(received.size(), 2u);
    const testing::ReceivedSpan* root = Find(received, trace, "1111111111111111");
    const testing::ReceivedSpan* child = Find(received, trace, "2222222222222222");
    ASSERT_NE(root, nullptr);
    ASSERT_NE(child, nullptr);
    EXPECT_EQ(root->service, "web");
    EXPECT_EQ(root->resource.at("k8s.namespace.name"), Text("shop"));
    EXPECT_EQ(root->scope_name, "web-tracer");
    EXPECT_EQ(root->status, "ERROR");
    EXPECT_EQ(root->status_message, "boom");
    EXPECT_EQ(root->kind, "server");
    EXPECT_EQ(root->attributes.at("http.route"), Text("/"));
    EXPECT_EQ(child->parent_span_id, "1111111111111111");
    EXPECT_EQ(child->kind, "client");
    EXPECT_EQ(child->start_unix_nano, start + 1'000'000);
  }

  // The log record reaches Loki and Fluentd as a log record.
  ASSERT_TRUE(testing::WaitFor([&] { return !loki_.Pushes().empty(); }, seconds(60)));
  ASSERT_TRUE(testing::WaitFor([&] { return !fluentd_.events().empty(); }, seconds(60)));
  const testing::LokiPush push = loki_.Pushes().front();
  ASSERT_EQ(push.request.streams_size(), 1);
  EXPECT_EQ(push.request.streams(0).labels(),
            "{job=\"meshtel\", k8s_namespace_name=\"shop\", service_name=\"web\"}");
  ASSERT_EQ(push.request.streams(0).entries_size(), 1);
  const logproto::EntryAdapter& entry = push.request.streams(0).entries(0);
  EXPECT_EQ(entry.line(), "hello from web");
  std::map<std::string, std::string> metadata;
  for (const auto& pair : entry.structuredmetadata()) metadata[pair.name()] = pair.value();
  EXPECT_EQ(metadata["trace_id"], trace);
  EXPECT_EQ(metadata["span_id"], "1111111111111111");
  EXPECT_EQ(metadata["user_id"], "42");
  EXPECT_EQ(metadata["severity_text"], "INFO");
  EXPECT_EQ(metadata["detected_level"], "info");
  EXPECT_EQ(metadata["scope_name"], "web-logger");
  const testing::FluentdReceiver::Event event = fluentd_.events().front();
  EXPECT_EQ(event.tag, "meshtel.log");
  EXPECT_EQ(event.record.Find("message")->bytes, "hello from web");
  EXPECT_EQ(event.record.Find("service_name")->bytes, "web");
  EXPECT_EQ(event.record.Find("attributes")->Find("user.id")->AsInt(), 42);
  EXPECT_EQ(testing::SumSamples(Admin("/metrics"), "istio_requests_total", {}), 0);
}

}  // namespace
}  // namespace meshtel
