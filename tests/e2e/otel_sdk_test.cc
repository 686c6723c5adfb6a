// End to end: the official OpenTelemetry JS SDK (tests/e2e/otel-js/send.mjs, its real OTLP
// exporters) sends a trace and log records to a real meshtel-collector's OTLP receiver
// (ingest.otlp, gRPC and HTTP on free loopback ports); the collector stores them and delivers
// the spans to a Jaeger and an OTLP backend and the log records to Loki (the test receivers of
// tests/support). What each backend gets is compared field by field with what the SDK sent:
//   - traces over all three transports (gRPC, HTTP protobuf, HTTP JSON): ids, parent links
//     (Jaeger CHILD_OF references), names, kinds, times to the nanosecond, typed attributes
//     (arrays, which meshtel keeps as JSON strings, as their JSON), status, resource and scope;
//   - logs over all three transports: Loki entry time, line (the body; a structured body as
//     its JSON), stream labels (service_name, service_namespace, k8s_namespace_name),
//     structured metadata (trace_id, span_id, severity, attributes).

#include <algorithm>
#include <cctype>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

#include "fmt/format.h"
#include "fmt/ranges.h"
#include "gtest/gtest.h"
#include "tests/support/http_get.h"
#include "tests/support/jaeger_receiver.h"
#include "tests/support/loki_receiver.h"
#include "tests/support/metrics_text.h"
#include "tests/support/otel_js.h"
#include "tests/support/otlp_receiver.h"
#include "tests/support/process.h"

namespace meshtel::e2e {
namespace {

using std::chrono::seconds;
using testing::AttributeValue;
using testing::ChildProcess;
using testing::OtelJsLog;
using testing::OtelJsRun;
using testing::OtelJsSpan;
using testing::OtelValue;
using testing::ReceivedSpan;

std::string KindName(int kind) {
  static const char* const kNames[] = {"", "internal", "server", "client", "producer", "consumer"};
  return kind >= 0 && kind <= 5 ? kNames[kind] : fmt::format("kind {}", kind);
}

// Loki's labels string `{a="b", c="d"}` as a map (values unescaped).
std::map<std::string, std::string> ParseLokiLabels(const std::string& text) {
  std::map<std::string, std::string> labels;
  size_t i = text.find('{');
  if (i == std::string::npos) return labels;
  ++i;
  while (i < text.size()) {
    while (i < text.size() && (text[i] == ' ' || text[i] == ',')) ++i;
    const size_t equals = text.find('=', i);
    if (equals == std::string::npos || equals + 1 >= text.size() || text[equals + 1] != '"') break;
    const std::string name = text.substr(i, equals - i);
    std::string value;
    size_t j = equals + 2;
    for (; j < text.size() && text[j] != '"'; ++j) {
      if (text[j] == '\\' && j + 1 < text.size()) {
        ++j;
        value += text[j] == 'n' ? '\n' : text[j];
      } else {
        value += text[j];
      }
    }
    labels[name] = value;
    i = j + 1;
  }
  return labels;
}

// The value of `key`, or "(none)".
std::string Get(const std::map<std::string, std::string>& map, const std::string& key) {
  const auto found = map.find(key);
  return found == map.end() ? "(none)" : found->second;
}

// An attribute as meshtel keeps it: typed scalars, arrays as their JSON rendering (a string).
// EXPECTs `got` to be `expected` in that form.
void ExpectAttribute(const OtelValue& expected, const AttributeValue& got) {
  switch (expected.type) {
    case OtelValue::Type::kString:
      EXPECT_EQ(got, AttributeValue(expected.string_value));
      return;
    case OtelValue::Type::kInt:
      EXPECT_EQ(got, AttributeValue(expected.int_value));
      return;
    case OtelValue::Type::kDouble:
      EXPECT_EQ(got, AttributeValue(expected.double_value));
      return;
    case OtelValue::Type::kBool:
      EXPECT_EQ(got, AttributeValue(expected.bool_value));
      return;
    default: {
      ASSERT_TRUE(std::holds_alternative<std::string>(got)) << "not a string";
      std::string why;
      EXPECT_TRUE(testing::MatchesJson(expected, std::get<std::string>(got), &why)) << why;
      return;
    }
  }
}

// An attribute as Loki shows it in structured metadata: text (ints in decimal, doubles in the
// shortest form that reads back, bools as true/false, arrays as their JSON).
void ExpectMetadata(const OtelValue& expected, const std::string& got) {
  switch (expected.type) {
    case OtelValue::Type::kString:
      EXPECT_EQ(got, expected.string_value);
      return;
    case OtelValue::Type::kInt:
      EXPECT_EQ(got, std::to_string(expected.int_value));
      return;
    case OtelValue::Type::kDouble:
      EXPECT_EQ(std::stod(got), expected.double_value) << got;
      return;
    case OtelValue::Type::kBool:
      EXPECT_EQ(got, expected.bool_value ? "true" : "false");
      return;
    default: {
      std::string why;
      EXPECT_TRUE(testing::MatchesJson(expected, got, &why)) << why;
      return;
    }
  }
}

class OtelSdkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string reason = testing::OtelJsUnavailableReason();
    if (!reason.empty()) GTEST_SKIP() << reason;
    dir_ = testing::MakeTempDir("meshtel-otel-sdk");
    ingest_port_ = testing::FreePort();
    admin_port_ = testing::FreePort();
    otlp_grpc_port_ = testing::FreePort();
    otlp_http_port_ = testing::FreePort();
    const std::string retry = "retry: {initial_backoff: 50ms, max_backoff: 500ms}";
    const std::string batch = "batch: {max_wait: 50ms}";
    testing::WriteFile(
        dir_ + "/collector.yaml",
        fmt::format("ingest:\n"
                    "  listen: \"127.0.0.1:{}\"\n"
                    "  otlp:\n"
                    "    enabled: true\n"
                    "    grpc_listen: \"127.0.0.1:{}\"\n"
                    "    http_listen: \"127.0.0.1:{}\"\n"
                    "admin: {{listen: \"127.0.0.1:{}\"}}\n"
                    "store: {{data_dir: \"{}/data\"}}\n"
                    "shutdown_grace: 1s\n"
                    "traces:\n"
                    "  assembly: {{idle_timeout: 300ms, max_wait: 20s}}\n"
                    "  sampling: {{latency_threshold: 0s}}\n"
                    "exporters:\n"
                    "  - {{name: jaeger, type: jaeger, jaeger: {{endpoint: \"{}\"}}, {}, {}}}\n"
                    "  - {{name: tempo, type: otlp,\n"
                    "     otlp: {{protocol: grpc, endpoint: \"{}\"}}, {}, {}}}\n"
                    "  - {{name: loki, type: loki, loki: {{url: \"{}\"}}, {}, {}}}\n",
                    ingest_port_, otlp_grpc_port_, otlp_http_port_, admin_port_, dir_,
                    jaeger_.endpoint(), batch, retry, otlp_.grpc_endpoint(), batch, retry,
                    loki_.url(), batch, retry));
    ASSERT_TRUE(testing::StartCollector(dir_ + "/collector.yaml", dir_ + "/collector.log",
                                        admin_port_, collector_));
    ASSERT_TRUE(testing::WaitFor(
        [&] {
          return testing::CanConnect(otlp_grpc_port_) && testing::CanConnect(otlp_http_port_);
        },
        seconds(20)))
        << collector_->Log();
  }

  std::string Endpoint(const std::string& transport, const std::string& signal) const {
    if (transport == "grpc") return fmt::format("http://127.0.0.1:{}", otlp_grpc_port_);
    return fmt::format("http://127.0.0.1:{}/v1/{}", otlp_http_port_, signal);
  }

  OtelJsRun Send(const std::string& transport, bool traces, bool logs) {
    testing::OtelJsOptions options;
    options.transport = transport;
    if (traces) options.traces_endpoint = Endpoint(transport, "traces");
    if (logs) options.logs_endpoint = Endpoint(transport, "logs");
    options.spec_json = fmt::format(R"({{"run": "{}", "timeout_ms": 10000}})", transport);
    return testing::RunOtelJs(options);
  }

  // The collector's meshtel_otlp_items_total for `signal`, `transport` and `result`.
  double OtlpItems(const std::string& signal, const std::string& transport,
                   const std::string& result) {
    return testing::SumSamples(testing::HttpGet(admin_port_, "/metrics").body,
                               "meshtel_otlp_items_total",
                               {"signal=\"" + signal + "\"", "transport=\"" + transport + "\"",
                                "result=\"" + result + "\""});
  }

  std::string dir_;
  uint16_t ingest_port_ = 0, admin_port_ = 0, otlp_grpc_port_ = 0, otlp_http_port_ = 0;
  testing::JaegerReceiver jaeger_;
  testing::OtlpReceiver otlp_;
  testing::LokiReceiver loki_;
  std::unique_ptr<ChildProcess> collector_;
};

class OtelSdkTraceTest : public OtelSdkTest, public ::testing::WithParamInterface<std::string> {};

TEST_P(OtelSdkTraceTest, TheTraceArrivesAtJaegerAndOtlpAsTheSdkSentIt) {
  const OtelJsRun sent = Send(GetParam(), /*traces=*/true, /*logs=*/false);
  ASSERT_EQ(sent.exit_code, 0) << sent.Describe() << "\ncollector:\n" << collector_->Log();
  ASSERT_EQ(sent.parse_error, "") << sent.Describe();
  // The receiver stored all three (it answered only after the store write).
  const std::string transport = GetParam() == "grpc" ? "grpc" : "http";
  EXPECT_EQ(OtlpItems("traces", transport, "accepted"), 3);
  EXPECT_EQ(OtlpItems("traces", transport, "rejected"), 0);
  ASSERT_TRUE(jaeger_.WaitForSpans(3, absl::Seconds(60))) << collector_->Log();
  ASSERT_TRUE(otlp_.WaitForSpans(3, absl::Seconds(60))) << collector_->Log();
  // Nothing more than the three (each delivered once here: no failure, no restart).
  std::this_thread::sleep_for(std::chrono::milliseconds(500));

  // Jaeger: what the backend got, on the wire and decoded.
  std::vector<const jaeger::api_v2::Span*> jaeger_wire;
  const std::vector<testing::JaegerCall> jaeger_calls = jaeger_.Calls();
  for (const testing::JaegerCall& call : jaeger_calls) {
    if (call.official_checked) {
      EXPECT_TRUE(call.official_mismatches.empty())
          << fmt::format("{}", fmt::join(call.official_mismatches, "\n"));
    }
    for (const auto& span : call.request.batch().spans()) jaeger_wire.push_back(&span);
  }
  const std::vector<ReceivedSpan> at_jaeger = jaeger_.Spans();
  EXPECT_EQ(at_jaeger.size(), 3u);
  for (const OtelJsSpan& expected : sent.spans) {
    SCOPED_TRACE("jaeger: " + expected.name);
    const auto found = std::find_if(at_jaeger.begin(), at_jaeger.end(), [&](const auto& span) {
      return span.span_id == expected.span_id;
    });
    ASSERT_NE(found, at_jaeger.end()) << expected.span_id;
    const ReceivedSpan& span = *found;
    EXPECT_EQ(span.trace_id, expected.trace_id);
    EXPECT_EQ(span.parent_span_id, expected.parent_span_id);
    EXPECT_EQ(span.name, expected.name);
    EXPECT_EQ(span.kind, expected.kind);
    EXPECT_EQ(span.start_unix_nano, expected.start_unix_nano);
    EXPECT_EQ(span.end_unix_nano, expected.end_unix_nano);
    EXPECT_EQ(span.flags & 0x1u, expected.trace_flags & 0x1u);
    EXPECT_EQ(span.service, "checkout");
    EXPECT_EQ(span.scope_name, sent.scope_name);
    ASSERT_TRUE(span.attributes.contains("otel.scope.version"));
    EXPECT_EQ(span.attributes.at("otel.scope.version"), AttributeValue(sent.scope_version));
    EXPECT_EQ(span.status, expected.status);
    EXPECT_EQ(span.status_message, expected.status_message);
    if (expected.status == "ERROR") {
      ASSERT_TRUE(span.attributes.contains("error"));
      EXPECT_EQ(span.attributes.at("error"), AttributeValue(true));
    } else {
      EXPECT_FALSE(span.attributes.contains("error"));
    }
    for (const auto& [key, value] : expected.attributes) {
      SCOPED_TRACE(key);
      ASSERT_TRUE(span.attributes.contains(key));
      ExpectAttribute(value, span.attributes.at(key));
    }
    for (const auto& [key, value] : sent.resource) {
      if (key == "service.name") continue;  // the process's service_name
      SCOPED_TRACE("process tag " + key);
      ASSERT_TRUE(span.resource.contains(key));
      ExpectAttribute(value, span.resource.at(key));
    }
    // The parent link is one CHILD_OF reference in the same trace; the root has none.
    const auto wire = std::find_if(jaeger_wire.begin(), jaeger_wire.end(), [&](const auto* s) {
      return testing::Hex(s->span_id()) == expected.span_id;
    });
    ASSERT_NE(wire, jaeger_wire.end());
    if (expected.parent_span_id.empty()) {
      EXPECT_EQ((*wire)->references_size(), 0);
    } else {
      ASSERT_EQ((*wire)->references_size(), 1);
      EXPECT_EQ((*wire)->references(0).ref_type(), jaeger::api_v2::CHILD_OF);
      EXPECT_EQ(testing::Hex((*wire)->references(0).trace_id()), expected.trace_id);
      EXPECT_EQ(testing::Hex((*wire)->references(0).span_id()), expected.parent_span_id);
    }
  }

  // OTLP: the request on the wire.
  std::vector<std::pair<const opentelemetry::proto::trace::v1::ResourceSpans*,
                        const opentelemetry::proto::trace::v1::ScopeSpans*>>
      scopes;
  std::vector<const opentelemetry::proto::trace::v1::Span*> otlp_wire;
  const std::vector<testing::OtlpCall> otlp_calls = otlp_.Calls();
  for (const testing::OtlpCall& call : otlp_calls) {
    EXPECT_EQ(call.decode_error, "");
    if (call.official_checked) {
      EXPECT_TRUE(call.official_mismatches.empty())
          << fmt::format("{}", fmt::join(call.official_mismatches, "\n"));
    }
    for (const auto& resource_spans : call.request.resource_spans()) {
      for (const auto& scope_spans : resource_spans.scope_spans()) {
        for (const auto& span : scope_spans.spans()) {
          otlp_wire.push_back(&span);
          scopes.emplace_back(&resource_spans, &scope_spans);
        }
      }
    }
  }
  EXPECT_EQ(otlp_wire.size(), 3u);
  for (const OtelJsSpan& expected : sent.spans) {
    SCOPED_TRACE("otlp: " + expected.name);
    size_t index = 0;
    while (index < otlp_wire.size() &&
           testing::Hex(otlp_wire[index]->span_id()) != expected.span_id) {
      ++index;
    }
    ASSERT_LT(index, otlp_wire.size()) << expected.span_id;
    const auto& span = *otlp_wire[index];
    EXPECT_EQ(testing::Hex(span.trace_id()), expected.trace_id);
    EXPECT_EQ(testing::Hex(span.parent_span_id()), expected.parent_span_id);
    EXPECT_EQ(span.name(), expected.name);
    EXPECT_EQ(KindName(span.kind()), expected.kind);
    EXPECT_EQ(span.start_time_unix_nano(), expected.start_unix_nano);
    EXPECT_EQ(span.end_time_unix_nano(), expected.end_unix_nano);
    EXPECT_EQ(span.flags() & 0xffu, expected.trace_flags);
    const std::string status = span.status().code() == 2   ? "ERROR"
                               : span.status().code() == 1 ? "OK"
                                                           : "";
    EXPECT_EQ(status, expected.status);
    EXPECT_EQ(span.status().message(), expected.status_message);
    const testing::OtelAttributes attributes = testing::FromOtlp(span.attributes());
    for (const auto& [key, value] : expected.attributes) {
      SCOPED_TRACE(key);
      ASSERT_TRUE(attributes.contains(key));
      const OtelValue& got = attributes.at(key);
      if (value.type == OtelValue::Type::kStringArray) {
        // meshtel keeps arrays as their JSON rendering.
        ASSERT_EQ(got.type, OtelValue::Type::kString) << testing::ToString(got);
        std::string why;
        EXPECT_TRUE(testing::MatchesJson(value, got.string_value, &why)) << why;
      } else {
        EXPECT_EQ(got, value);
      }
    }
    const testing::OtelAttributes resource =
        testing::FromOtlp(scopes[index].first->resource().attributes());
    for (const auto& [key, value] : sent.resource) {
      SCOPED_TRACE("resource " + key);
      ASSERT_TRUE(resource.contains(key));
      EXPECT_EQ(resource.at(key), value);
    }
    EXPECT_EQ(scopes[index].second->scope().name(), sent.scope_name);
    EXPECT_EQ(scopes[index].second->scope().version(), sent.scope_version);
  }
}

INSTANTIATE_TEST_SUITE_P(Transports, OtelSdkTraceTest, ::testing::Values("grpc", "proto", "http"));

class OtelSdkLogTest : public OtelSdkTest, public ::testing::WithParamInterface<std::string> {};

TEST_P(OtelSdkLogTest, LogRecordsArriveAtLokiAsTheSdkSentThem) {
  const OtelJsRun sent = Send(GetParam(), /*traces=*/false, /*logs=*/true);
  ASSERT_EQ(sent.exit_code, 0) << sent.Describe() << "\ncollector:\n" << collector_->Log();
  ASSERT_EQ(sent.parse_error, "") << sent.Describe();
  const std::string transport = GetParam() == "grpc" ? "grpc" : "http";
  EXPECT_EQ(OtlpItems("logs", transport, "accepted"), 3);
  EXPECT_EQ(OtlpItems("logs", transport, "rejected"), 0);

  struct Entry {
    std::map<std::string, std::string> labels;
    uint64_t time_unix_nano = 0;
    std::string line;
    std::map<std::string, std::string> metadata;
  };
  std::vector<Entry> entries;
  const bool arrived = testing::WaitFor(
      [&] {
        entries.clear();
        for (const testing::LokiPush& push : loki_.Pushes()) {
          EXPECT_EQ(push.decode_error, "");
          if (push.official_checked) {
            EXPECT_TRUE(push.official_mismatches.empty())
                << fmt::format("{}", fmt::join(push.official_mismatches, "\n"));
          }
          for (const auto& stream : push.request.streams()) {
            for (const auto& entry : stream.entries()) {
              Entry out;
              out.labels = ParseLokiLabels(stream.labels());
              out.time_unix_nano =
                  static_cast<uint64_t>(entry.timestamp().seconds()) * 1'000'000'000u +
                  static_cast<uint64_t>(entry.timestamp().nanos());
              out.line = entry.line();
              for (const auto& pair : entry.structuredmetadata()) {
                out.metadata[pair.name()] = pair.value();
              }
              entries.push_back(std::move(out));
            }
          }
        }
        return entries.size() >= sent.logs.size();
      },
      seconds(60));
  ASSERT_TRUE(arrived) << entries.size() << " entries\n" << collector_->Log();
  auto describe_entries = [&] {
    std::string text;
    for (const Entry& entry : entries) {
      text += fmt::format("  {} {{", entry.time_unix_nano);
      for (const auto& [name, value] : entry.labels) text += name + "=" + value + " ";
      text += "} " + entry.line + "\n";
    }
    return text;
  };
  EXPECT_EQ(entries.size(), sent.logs.size()) << describe_entries();
  for (const OtelJsLog& expected : sent.logs) {
    SCOPED_TRACE(testing::ToString(expected.body));
    const auto found = std::find_if(entries.begin(), entries.end(), [&](const Entry& entry) {
      return entry.time_unix_nano == expected.time_unix_nano;
    });
    ASSERT_TRUE(found != entries.end()) << "no entry at " << expected.time_unix_nano << "; got:\n"
                                        << describe_entries();
    const Entry& entry = *found;
    // Stream labels: the resource attributes Loki's OTLP ingestion indexes.
    EXPECT_EQ(Get(entry.labels, "service_name"), "checkout");
    EXPECT_EQ(Get(entry.labels, "service_namespace"), "shop");
    EXPECT_EQ(Get(entry.labels, "k8s_namespace_name"), "shop-prod");
    EXPECT_FALSE(entry.labels.contains("trace_id"));  // never a label: one stream per trace
    // The line is the body; a structured body its JSON.
    if (expected.body.type == OtelValue::Type::kString) {
      EXPECT_EQ(entry.line, expected.body.string_value);
    } else {
      std::string why;
      EXPECT_TRUE(testing::MatchesJson(expected.body, entry.line, &why)) << why;
    }
    // Structured metadata: trace context, severity, attributes, the other resource attributes.
    if (expected.trace_id.empty()) {
      EXPECT_FALSE(entry.metadata.contains("trace_id"));
      EXPECT_FALSE(entry.metadata.contains("span_id"));
    } else {
      EXPECT_EQ(Get(entry.metadata, "trace_id"), expected.trace_id);
      EXPECT_EQ(Get(entry.metadata, "span_id"), expected.span_id);
    }
    EXPECT_EQ(Get(entry.metadata, "severity_text"), expected.severity_text);
    EXPECT_EQ(Get(entry.metadata, "severity_number"), std::to_string(expected.severity_number));
    std::string level = expected.severity_text;
    std::transform(level.begin(), level.end(), level.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    EXPECT_EQ(Get(entry.metadata, "detected_level"), level);
    EXPECT_EQ(Get(entry.metadata, "scope_name"), sent.scope_name);
    EXPECT_EQ(Get(entry.metadata, "scope_version"), sent.scope_version);
    EXPECT_EQ(Get(entry.metadata, "observed_timestamp"),
              std::to_string(expected.observed_time_unix_nano));
    EXPECT_EQ(Get(entry.metadata, "flags"),
              expected.trace_flags == 0 ? "(none)" : std::to_string(expected.trace_flags));
    EXPECT_EQ(Get(entry.metadata, "deployment_environment_name"), "e2e");
    for (const auto& [key, value] : expected.attributes) {
      std::string name = key;
      std::replace_if(
          name.begin(), name.end(),
          [](char c) { return !std::isalnum(static_cast<unsigned char>(c)) && c != '_'; }, '_');
      SCOPED_TRACE(name);
      ASSERT_TRUE(entry.metadata.contains(name));
      ExpectMetadata(value, entry.metadata.at(name));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Transports, OtelSdkLogTest, ::testing::Values("grpc", "proto", "http"));

}  // namespace
}  // namespace meshtel::e2e
