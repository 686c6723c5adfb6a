// The official OpenTelemetry JS SDK (tests/e2e/otel-js, its real OTLP trace exporters over gRPC
// and HTTP/protobuf, plain and gzip) against the project's test OTLP receiver
// (tests/support/otlp_receiver.h): what the SDK says it sent arrives field by field, and an
// export the receiver refuses, or answers with a partial success, makes send.mjs fail. This shows
// that the receiver the exporter tests rely on speaks what the official SDK speaks, and that
// send.mjs reports what it sent truthfully (the end-to-end test of meshtel's own OTLP receiver,
// otel_sdk_test.cc, relies on both).

#include <ostream>
#include <string>
#include <variant>
#include <vector>

#include "fmt/format.h"
#include "fmt/ranges.h"
#include "gtest/gtest.h"
#include "tests/support/otel_js.h"
#include "tests/support/otlp_receiver.h"

namespace meshtel::testing {
namespace {

using opentelemetry::proto::trace::v1::Span;

struct Transport {
  std::string transport;  // send.mjs's: grpc or proto
  std::string compression;
};

void PrintTo(const Transport& transport, std::ostream* out) {
  *out << transport.transport << "/" << transport.compression;
}

std::string KindName(int kind) {
  switch (kind) {
    case Span::SPAN_KIND_INTERNAL:
      return "internal";
    case Span::SPAN_KIND_SERVER:
      return "server";
    case Span::SPAN_KIND_CLIENT:
      return "client";
    default:
      return fmt::format("kind {}", kind);
  }
}

std::string StatusName(int code) {
  switch (code) {
    case 0:
      return "";
    case 1:
      return "OK";
    case 2:
      return "ERROR";
    default:
      return fmt::format("code {}", code);
  }
}

class OtelSdkReceiverTest : public ::testing::TestWithParam<Transport> {
 protected:
  void SetUp() override {
    const std::string reason = OtelJsUnavailableReason();
    if (!reason.empty()) GTEST_SKIP() << reason;
  }

  OtelJsOptions Options(const std::string& run) const {
    OtelJsOptions options;
    options.transport = GetParam().transport;
    options.traces_endpoint = GetParam().transport == "grpc" ? "http://" + receiver_.grpc_endpoint()
                                                             : receiver_.http_url();
    options.spec_json = fmt::format(R"({{"run": "{}", "compression": "{}", "timeout_ms": 5000}})",
                                    run, GetParam().compression);
    return options;
  }

  OtlpReceiver receiver_;
};

TEST_P(OtelSdkReceiverTest, EverySpanArrivesAsTheSdkSentIt) {
  const std::string run_id = GetParam().transport + "-" + GetParam().compression;
  const OtelJsRun sent = RunOtelJs(Options(run_id));
  ASSERT_EQ(sent.exit_code, 0) << sent.Describe();
  ASSERT_EQ(sent.parse_error, "") << sent.Describe();
  ASSERT_EQ(sent.spans.size(), 3u);

  // One export request carries the whole trace (send.mjs's batch), on the transport asked for.
  const std::vector<OtlpCall> calls = receiver_.Calls();
  ASSERT_EQ(calls.size(), 1u) << sent.Describe();
  const OtlpCall& call = calls[0];
  EXPECT_EQ(call.decode_error, "");
  EXPECT_TRUE(call.accepted);
  EXPECT_EQ(call.grpc, GetParam().transport == "grpc");
  if (!call.grpc) {
    EXPECT_EQ(call.target, "/v1/traces");
    EXPECT_EQ(call.content_encoding, GetParam().compression == "gzip" ? "gzip" : "");
  }
  if (call.official_checked) {
    EXPECT_TRUE(call.official_mismatches.empty())
        << fmt::format("{}", fmt::join(call.official_mismatches, "\n"));
  }
  const auto user_agent = call.headers.find("user-agent");
  ASSERT_NE(user_agent, call.headers.end());
  EXPECT_NE(user_agent->second.find("OTel-OTLP-Exporter-JavaScript"), std::string::npos)
      << user_agent->second;

  // The resource and the scope.
  ASSERT_EQ(call.request.resource_spans_size(), 1);
  const auto& resource_spans = call.request.resource_spans(0);
  const OtelAttributes resource = FromOtlp(resource_spans.resource().attributes());
  for (const auto& [key, value] : sent.resource) {
    ASSERT_TRUE(resource.contains(key)) << key;
    EXPECT_EQ(resource.at(key), value) << key;
  }
  ASSERT_EQ(resource_spans.scope_spans_size(), 1);
  const auto& scope_spans = resource_spans.scope_spans(0);
  EXPECT_EQ(scope_spans.scope().name(), sent.scope_name);
  EXPECT_EQ(scope_spans.scope().version(), sent.scope_version);
  ASSERT_EQ(scope_spans.spans_size(), 3);

  // Each span, field by field, on the wire (the receiver's decode of the request) ...
  for (const OtelJsSpan& expected : sent.spans) {
    SCOPED_TRACE(expected.name);
    const Span* found = nullptr;
    for (const Span& span : scope_spans.spans()) {
      if (Hex(span.span_id()) == expected.span_id) found = &span;
    }
    ASSERT_NE(found, nullptr) << expected.span_id;
    const Span& span = *found;
    EXPECT_EQ(Hex(span.trace_id()), expected.trace_id);
    EXPECT_EQ(Hex(span.parent_span_id()), expected.parent_span_id);
    EXPECT_EQ(span.name(), expected.name);
    EXPECT_EQ(KindName(span.kind()), expected.kind);
    EXPECT_EQ(span.start_time_unix_nano(), expected.start_unix_nano);
    EXPECT_EQ(span.end_time_unix_nano(), expected.end_unix_nano);
    // The low byte is the W3C trace-flags byte; only bits 8 and 9 may be set beside it.
    EXPECT_EQ(span.flags() & 0xffu, expected.trace_flags);
    EXPECT_EQ(span.flags() & ~0x3ffu, 0u) << span.flags();
    EXPECT_EQ(StatusName(span.status().code()), expected.status);
    EXPECT_EQ(span.status().message(), expected.status_message);
    EXPECT_EQ(FromOtlp(span.attributes()), expected.attributes);
    EXPECT_EQ(span.attributes_size(), static_cast<int>(expected.attributes.size()));
  }
  // ... and as the receiver hands spans to the tests that use it.
  const std::vector<ReceivedSpan> received = receiver_.Spans();
  ASSERT_EQ(received.size(), 3u);
  for (const OtelJsSpan& expected : sent.spans) {
    SCOPED_TRACE(expected.name);
    const ReceivedSpan* found = nullptr;
    for (const ReceivedSpan& span : received) {
      if (span.span_id == expected.span_id) found = &span;
    }
    ASSERT_NE(found, nullptr);
    EXPECT_EQ(found->trace_id, expected.trace_id);
    EXPECT_EQ(found->parent_span_id, expected.parent_span_id);
    EXPECT_EQ(found->name, expected.name);
    EXPECT_EQ(found->kind, expected.kind);
    EXPECT_EQ(found->service, "checkout");
    EXPECT_EQ(found->scope_name, sent.scope_name);
    EXPECT_EQ(found->status, expected.status);
    EXPECT_EQ(found->status_message, expected.status_message);
    EXPECT_EQ(found->start_unix_nano, expected.start_unix_nano);
    EXPECT_EQ(found->end_unix_nano, expected.end_unix_nano);
    EXPECT_EQ(found->attributes.at("test.run"), AttributeValue(std::string(run_id)));
    for (const auto& [key, value] : expected.attributes) {
      SCOPED_TRACE(key);
      ASSERT_TRUE(found->attributes.contains(key));
      const AttributeValue& got = found->attributes.at(key);
      switch (value.type) {
        case OtelValue::Type::kString:
          EXPECT_EQ(got, AttributeValue(value.string_value));
          break;
        case OtelValue::Type::kInt:
          EXPECT_EQ(got, AttributeValue(value.int_value));
          break;
        case OtelValue::Type::kDouble:
          EXPECT_EQ(got, AttributeValue(value.double_value));
          break;
        case OtelValue::Type::kBool:
          EXPECT_EQ(got, AttributeValue(value.bool_value));
          break;
        default:  // arrays: their text form (checked on the wire above)
          EXPECT_TRUE(std::holds_alternative<std::string>(got));
          break;
      }
    }
  }
}

TEST_P(OtelSdkReceiverTest, ARefusedExportFailsTheScript) {
  if (GetParam().transport == "grpc") {
    receiver_.AnswerGrpc(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "refused by the test"));
  } else {
    receiver_.AnswerHttp(400, {{"Content-Type", "application/x-protobuf"}});
  }
  const OtelJsRun sent = RunOtelJs(Options("refused"));
  EXPECT_EQ(sent.exit_code, 1) << sent.Describe();
  EXPECT_NE(sent.stderr_text.find("traces: export of 3 failed"), std::string::npos)
      << sent.Describe();
  EXPECT_TRUE(receiver_.Spans().empty());
  // Refused for good (not retryable): sent once.
  EXPECT_EQ(receiver_.Calls().size(), 1u);
}

TEST_P(OtelSdkReceiverTest, APartialSuccessFailsTheScript) {
  // The SDK counts a partial success as a success (and only logs it); send.mjs does not.
  receiver_.AnswerPartialSuccess(1, "one span refused by the test");
  const OtelJsRun sent = RunOtelJs(Options("partial"));
  EXPECT_EQ(sent.exit_code, 1) << sent.Describe();
  EXPECT_NE(sent.stderr_text.find("partial success"), std::string::npos) << sent.Describe();
  EXPECT_NE(sent.stderr_text.find("one span refused by the test"), std::string::npos)
      << sent.Describe();
  EXPECT_EQ(receiver_.Calls().size(), 1u);  // not retried
}

INSTANTIATE_TEST_SUITE_P(Transports, OtelSdkReceiverTest,
                         ::testing::Values(Transport{"grpc", "none"}, Transport{"grpc", "gzip"},
                                           Transport{"proto", "none"}, Transport{"proto", "gzip"}),
                         [](const ::testing::TestParamInfo<Transport>& info) {
                           return info.param.transport + "_" + info.param.compression;
                         });

}  // namespace
}  // namespace meshtel::testing
