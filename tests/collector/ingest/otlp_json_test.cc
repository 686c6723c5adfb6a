#include "collector/ingest/otlp_json.h"

#include <cmath>
#include <string>

#include "google/protobuf/util/message_differencer.h"
#include "google/rpc/status.pb.h"
#include "gtest/gtest.h"

namespace meshtel::collector::otlp {
namespace {

using opentelemetry::proto::collector::logs::v1::ExportLogsServiceRequest;
using opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest;

// wire-facts §2.2's example.
constexpr char kExample[] =
    R"({"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"checkout"}}]},
  "scopeSpans":[{"scope":{"name":"meshtel"},"spans":[{
    "traceId":"4bf92f3577b34da6a3ce929d0e0e4736","spanId":"00f067aa0ba902b7",
    "name":"GET /cart","kind":2,
    "startTimeUnixNano":"1755000000000000000","endTimeUnixNano":"1755000000012000000",
    "attributes":[{"key":"http.response.status_code","value":{"intValue":"200"}}],
    "status":{"code":0}}]}]}]})";

std::string Bytes(std::initializer_list<int> values) {
  std::string out;
  for (int value : values) out += static_cast<char>(value);
  return out;
}

TEST(OtlpJsonTest, ReadsTheSpecExample) {
  ExportTraceServiceRequest request;
  ASSERT_TRUE(ParseTraceRequestJson(kExample, request).ok());
  ASSERT_EQ(request.resource_spans_size(), 1);
  const auto& resource_spans = request.resource_spans(0);
  EXPECT_EQ(resource_spans.resource().attributes(0).key(), "service.name");
  EXPECT_EQ(resource_spans.resource().attributes(0).value().string_value(), "checkout");
  EXPECT_EQ(resource_spans.scope_spans(0).scope().name(), "meshtel");
  const auto& span = resource_spans.scope_spans(0).spans(0);
  EXPECT_EQ(span.trace_id(), Bytes({0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce,
                                    0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}));
  EXPECT_EQ(span.span_id(), Bytes({0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}));
  EXPECT_EQ(span.name(), "GET /cart");
  EXPECT_EQ(span.kind(), opentelemetry::proto::trace::v1::Span::SPAN_KIND_SERVER);
  EXPECT_EQ(span.start_time_unix_nano(), 1755000000000000000u);
  EXPECT_EQ(span.end_time_unix_nano(), 1755000000012000000u);
  EXPECT_EQ(span.attributes(0).value().int_value(), 200);
  EXPECT_TRUE(span.has_status());
}

TEST(OtlpJsonTest, MatchesTheSameRequestBuiltInProtobuf) {
  ExportTraceServiceRequest from_json;
  ASSERT_TRUE(ParseTraceRequestJson(
                  R"({"resourceSpans":[{"scopeSpans":[{"spans":[{
      "traceId":"4BF92F3577B34DA6A3CE929D0E0E4736","spanId":"00F067AA0BA902B7",
      "parentSpanId":"0102030405060708","traceState":"a=b","flags":257,
      "startTimeUnixNano":1755000000000000000,"endTimeUnixNano":"1755000000000000001",
      "droppedAttributesCount":"3","droppedEventsCount":1,"droppedLinksCount":2,
      "attributes":[
        {"key":"b","value":{"boolValue":true}},
        {"key":"d","value":{"doubleValue":1.5}},
        {"key":"n","value":{"doubleValue":"NaN"}},
        {"key":"i","value":{"intValue":-9223372036854775808}},
        {"key":"y","value":{"bytesValue":"AAEC/w=="}},
        {"key":"w","value":{"bytesValue":"AAEC_w"}},
        {"key":"a","value":{"arrayValue":{"values":[{"stringValue":"x"},{"intValue":"1"}]}}},
        {"key":"k","value":{"kvlistValue":{"values":[{"key":"in","value":{"boolValue":false}}]}}},
        {"key":"e","value":{}}],
      "events":[{"timeUnixNano":"5","name":"ev","attributes":[{"key":"x","value":{"intValue":1}}]}],
      "links":[{"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"1112131415161718",
                "traceState":"t","flags":1}],
      "status":{"code":2,"message":"boom"}}]}]}]})",
                  from_json)
                  .ok());

  ExportTraceServiceRequest built;
  auto* span = built.add_resource_spans()->add_scope_spans()->add_spans();
  span->set_trace_id(Bytes({0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d,
                            0x0e, 0x0e, 0x47, 0x36}));
  span->set_span_id(Bytes({0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}));
  span->set_parent_span_id(Bytes({1, 2, 3, 4, 5, 6, 7, 8}));
  span->set_trace_state("a=b");
  span->set_flags(257);
  span->set_start_time_unix_nano(1755000000000000000u);
  span->set_end_time_unix_nano(1755000000000000001u);
  span->set_dropped_attributes_count(3);
  span->set_dropped_events_count(1);
  span->set_dropped_links_count(2);
  auto add = [span](const char* key) {
    auto* attribute = span->add_attributes();
    attribute->set_key(key);
    return attribute->mutable_value();
  };
  add("b")->set_bool_value(true);
  add("d")->set_double_value(1.5);
  add("n")->set_double_value(std::nan(""));
  add("i")->set_int_value(INT64_MIN);
  add("y")->set_bytes_value(Bytes({0, 1, 2, 0xff}));
  add("w")->set_bytes_value(Bytes({0, 1, 2, 0xff}));
  auto* array = add("a")->mutable_array_value();
  array->add_values()->set_string_value("x");
  array->add_values()->set_int_value(1);
  auto* inner = add("k")->mutable_kvlist_value()->add_values();
  inner->set_key("in");
  inner->mutable_value()->set_bool_value(false);
  add("e");
  auto* event = span->add_events();
  event->set_time_unix_nano(5);
  event->set_name("ev");
  auto* event_attribute = event->add_attributes();
  event_attribute->set_key("x");
  event_attribute->mutable_value()->set_int_value(1);
  auto* link = span->add_links();
  link->set_trace_id(Bytes({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}));
  link->set_span_id(Bytes({0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18}));
  link->set_trace_state("t");
  link->set_flags(1);
  span->mutable_status()->set_code(opentelemetry::proto::trace::v1::Status::STATUS_CODE_ERROR);
  span->mutable_status()->set_message("boom");

  // NaN != NaN: compare it apart, then the rest.
  EXPECT_TRUE(std::isnan(
      from_json.resource_spans(0).scope_spans(0).spans(0).attributes(2).value().double_value()));
  from_json.mutable_resource_spans(0)
      ->mutable_scope_spans(0)
      ->mutable_spans(0)
      ->mutable_attributes(2)
      ->mutable_value()
      ->set_double_value(0);
  span->mutable_attributes(2)->mutable_value()->set_double_value(0);
  std::string difference;
  google::protobuf::util::MessageDifferencer differencer;
  differencer.ReportDifferencesToString(&difference);
  EXPECT_TRUE(differencer.Compare(built, from_json)) << difference;
}

TEST(OtlpJsonTest, IgnoresUnknownAndSnakeCaseKeysAndNulls) {
  ExportTraceServiceRequest request;
  ASSERT_TRUE(ParseTraceRequestJson(R"({"resourceSpans":[{"scopeSpans":[{"spans":[{
      "trace_id":"zz","spanId":null,"name":"n","future":{"deep":[1,2,{"x":null}]},
      "start_time_unix_nano":"x"}]}]}],"extra":1})",
                                    request)
                  .ok());
  const auto& span = request.resource_spans(0).scope_spans(0).spans(0);
  EXPECT_EQ(span.name(), "n");
  EXPECT_TRUE(span.trace_id().empty());
  EXPECT_TRUE(span.span_id().empty());
  EXPECT_EQ(span.start_time_unix_nano(), 0u);
}

TEST(OtlpJsonTest, KeepsWrongLengthHexIdsForTheReceiverToReject) {
  ExportTraceServiceRequest request;
  ASSERT_TRUE(
      ParseTraceRequestJson(
          R"({"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"0102","spanId":""}]}]}]})",
          request)
          .ok());
  EXPECT_EQ(request.resource_spans(0).scope_spans(0).spans(0).trace_id(), Bytes({1, 2}));
}

TEST(OtlpJsonTest, RefusesInvalidValuesNamingThePath) {
  struct Case {
    const char* body;
    const char* error;
  };
  for (
      const Case& c : std::initializer_list<Case>{
          {R"([])", "the body is not an object"},
          {R"({"resourceSpans":{}})", "resourceSpans: not an array"},
          {R"({"resourceSpans":[1]})", "resourceSpans[0]: not an object"},
          {R"({"resourceSpans":[{"scopeSpans":[{"spans":[{"kind":"SPAN_KIND_SERVER"}]}]}]})",
           "resourceSpans[0].scopeSpans[0].spans[0].kind: an enum must be an integer number"},
          {R"({"resourceSpans":[{"scopeSpans":[{},{"spans":[{},{"traceId":"xyz0"}]}]}]})",
           "resourceSpans[0].scopeSpans[1].spans[1].traceId: an id must be hex digits"},
          {R"({"resourceSpans":[{"scopeSpans":[{"spans":[{"spanId":"abc"}]}]}]})",
           "an id must have an even number of hex digits"},
          {R"({"resourceSpans":[{"scopeSpans":[{"spans":[{"startTimeUnixNano":-1}]}]}]})",
           "startTimeUnixNano: '-1' is out of range"},
          {R"({"resourceSpans":[{"scopeSpans":[{"spans":[{"startTimeUnixNano":"1.5"}]}]}]})",
           "'1.5' is not an integer"},
          {R"({"resourceSpans":[{"scopeSpans":[{"spans":[{"flags":4294967296}]}]}]})",
           "flags: '4294967296' is out of range"},
          {R"({"resourceSpans":[{"scopeSpans":[{"spans":[{"name":5}]}]}]})", "name: not a string"},
          {R"({"resourceSpans":[{"resource":{"attributes":[{"key":"k","value":{"bytesValue":"!!"}}]}}]})",
           "resourceSpans[0].resource.attributes[0].value.bytesValue: not valid base64"},
          {R"({"resourceSpans":[{"resource":{"attributes":[{"key":"k","value":{"arrayValue":{"values":[{"intValue":true}]}}}]}}]})",
           "attributes[0].value.arrayValue.values[0].intValue: not an integer"},
          {R"({"resourceSpans":[{"scopeSpans":[{"spans":[{"attributes":[{"key":"k","value":{"doubleValue":"1x"}}]}]}]}]})",
           "doubleValue: '1x' is not a number"},
          {R"({"resourceSpans":[)", "JSON: "},
      }) {
    ExportTraceServiceRequest request;
    absl::Status status = ParseTraceRequestJson(c.body, request);
    ASSERT_FALSE(status.ok()) << c.body;
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(status.message().find(c.error), std::string::npos)
        << status.message() << "\nexpected: " << c.error;
  }
}

TEST(OtlpJsonTest, AcceptsWholeNumbersWrittenWithExponent) {
  ExportTraceServiceRequest request;
  ASSERT_TRUE(
      ParseTraceRequestJson(
          R"({"resourceSpans":[{"scopeSpans":[{"spans":[{"startTimeUnixNano":1.5e3,"kind":2.0}]}]}]})",
          request)
          .ok());
  EXPECT_EQ(request.resource_spans(0).scope_spans(0).spans(0).start_time_unix_nano(), 1500u);
  EXPECT_EQ(request.resource_spans(0).scope_spans(0).spans(0).kind(), 2);
}

TEST(OtlpJsonTest, ReadsLogs) {
  ExportLogsServiceRequest request;
  ASSERT_TRUE(ParseLogsRequestJson(R"({"resourceLogs":[{
      "resource":{"attributes":[{"key":"service.name","value":{"stringValue":"cart"}}]},
      "scopeLogs":[{"scope":{"name":"s","version":"1"},"logRecords":[{
        "timeUnixNano":"1","observedTimeUnixNano":"2","severityNumber":9,"severityText":"INFO",
        "body":{"kvlistValue":{"values":[{"key":"msg","value":{"stringValue":"hi"}}]}},
        "attributes":[{"key":"a","value":{"intValue":"7"}}],"droppedAttributesCount":1,
        "flags":1,"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"1112131415161718",
        "eventName":"e"}]}]}]})",
                                   request)
                  .ok());
  const auto& record = request.resource_logs(0).scope_logs(0).log_records(0);
  EXPECT_EQ(record.time_unix_nano(), 1u);
  EXPECT_EQ(record.observed_time_unix_nano(), 2u);
  EXPECT_EQ(record.severity_number(), 9);
  EXPECT_EQ(record.severity_text(), "INFO");
  EXPECT_EQ(record.body().kvlist_value().values(0).value().string_value(), "hi");
  EXPECT_EQ(record.attributes(0).value().int_value(), 7);
  EXPECT_EQ(record.dropped_attributes_count(), 1u);
  EXPECT_EQ(record.flags(), 1u);
  EXPECT_EQ(record.trace_id().size(), 16u);
  EXPECT_EQ(record.span_id().size(), 8u);
  EXPECT_EQ(record.event_name(), "e");
  EXPECT_EQ(request.resource_logs(0).scope_logs(0).scope().version(), "1");
}

TEST(OtlpJsonTest, WritesResponsesAndStatus) {
  EXPECT_EQ(TraceResponseJson(0, ""), "{}");
  EXPECT_EQ(TraceResponseJson(2, "bad \"id\""),
            R"({"partialSuccess":{"rejectedSpans":"2","errorMessage":"bad \"id\""}})");
  EXPECT_EQ(LogsResponseJson(1, "x"),
            R"({"partialSuccess":{"rejectedLogRecords":"1","errorMessage":"x"}})");
  EXPECT_EQ(StatusJson(3, "bad"), R"({"code":3,"message":"bad"})");
  EXPECT_EQ(
      StatusJson(14, "full", absl::Seconds(2)),
      R"({"code":14,"message":"full","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"2s"}]})");
}

}  // namespace
}  // namespace meshtel::collector::otlp
