#include "collector/ingest/otlp_convert.h"

#include <string>

#include "google/rpc/status.pb.h"
#include "gtest/gtest.h"
#include "tests/support/otlp_requests.h"

namespace meshtel::collector::otlp {
namespace {

using opentelemetry::proto::collector::logs::v1::ExportLogsServiceRequest;
using opentelemetry::proto::collector::logs::v1::ExportLogsServiceResponse;
using opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest;
using opentelemetry::proto::collector::trace::v1::ExportTraceServiceResponse;
namespace trace_pb = opentelemetry::proto::trace::v1;
namespace common_pb = opentelemetry::proto::common::v1;

using meshtel::testing::otlp_requests::AddAttribute;
using meshtel::testing::otlp_requests::kSpanId;
using meshtel::testing::otlp_requests::kTraceId;

trace_pb::Span* AddSpan(ExportTraceServiceRequest& request) {
  if (request.resource_spans_size() == 0) request.add_resource_spans()->add_scope_spans();
  trace_pb::Span* span = request.mutable_resource_spans(0)->mutable_scope_spans(0)->add_spans();
  span->set_trace_id(kTraceId);
  span->set_span_id(kSpanId);
  return span;
}

const meshtel::v1::SpanAttribute* Find(
    const google::protobuf::RepeatedPtrField<meshtel::v1::SpanAttribute>& attributes,
    const std::string& key) {
  for (const auto& attribute : attributes) {
    if (attribute.key() == key) return &attribute;
  }
  return nullptr;
}

TEST(OtlpConvertTest, ConvertsASpanWithItsResourceAndScope) {
  ExportTraceServiceRequest request;
  auto* resource_spans = request.add_resource_spans();
  auto& resource = *resource_spans->mutable_resource()->mutable_attributes();
  AddAttribute(resource, "service.name")->set_string_value("checkout");
  AddAttribute(resource, "k8s.namespace.name")->set_string_value("shop");
  auto* scope_spans = resource_spans->add_scope_spans();
  scope_spans->mutable_scope()->set_name("io.opentelemetry.http");
  scope_spans->mutable_scope()->set_version("1.2");
  trace_pb::Span* span = scope_spans->add_spans();
  span->set_trace_id(kTraceId);
  span->set_span_id(kSpanId);
  span->set_parent_span_id(std::string("\x01\x02\x03\x04\x05\x06\x07\x08", 8));
  span->set_trace_state("k=v");
  span->set_name("GET /cart");
  span->set_kind(trace_pb::Span::SPAN_KIND_CLIENT);
  span->set_start_time_unix_nano(10);
  span->set_end_time_unix_nano(20);
  span->set_flags(0x301);
  span->mutable_status()->set_code(trace_pb::Status::STATUS_CODE_ERROR);
  span->mutable_status()->set_message("boom");
  AddAttribute(*span->mutable_attributes(), "s")->set_string_value("x");
  AddAttribute(*span->mutable_attributes(), "b")->set_bool_value(true);
  AddAttribute(*span->mutable_attributes(), "i")->set_int_value(-3);
  AddAttribute(*span->mutable_attributes(), "d")->set_double_value(0.5);
  AddAttribute(*span->mutable_attributes(), "y")->set_bytes_value(std::string("\x00\xff", 2));
  auto* array = AddAttribute(*span->mutable_attributes(), "a")->mutable_array_value();
  array->add_values()->set_string_value("q\"");
  array->add_values()->set_int_value(1);
  array->add_values()->set_double_value(2.5);
  auto* kv = AddAttribute(*span->mutable_attributes(), "k")->mutable_kvlist_value()->add_values();
  kv->set_key("in");
  kv->mutable_value()->mutable_array_value()->add_values()->set_bool_value(false);
  AddAttribute(*span->mutable_attributes(), "empty");
  auto* event = span->add_events();
  event->set_time_unix_nano(15);
  event->set_name("retry");
  AddAttribute(*event->mutable_attributes(), "n")->set_int_value(2);
  auto* link = span->add_links();
  link->set_trace_id(kTraceId);
  link->set_span_id(kSpanId);
  span->set_dropped_events_count(4);

  Converted out;
  ConvertTraces(request, out);
  EXPECT_EQ(out.rejected, 0);
  EXPECT_EQ(out.message, "");
  ASSERT_EQ(out.records.size(), 1);
  const meshtel::v1::RequestRecord& record = out.records[0];
  ASSERT_TRUE(record.has_received_span());
  EXPECT_FALSE(record.has_received_log());
  EXPECT_EQ(record.path(), "");
  const meshtel::v1::Span& converted = record.received_span();
  EXPECT_EQ(converted.trace_id(), kTraceId);
  EXPECT_EQ(converted.span_id(), kSpanId);
  EXPECT_EQ(converted.parent_span_id(), "\x01\x02\x03\x04\x05\x06\x07\x08");
  EXPECT_EQ(converted.trace_state(), "k=v");
  EXPECT_EQ(converted.name(), "GET /cart");
  EXPECT_EQ(converted.kind(), meshtel::v1::SPAN_KIND_CLIENT);
  EXPECT_EQ(converted.start_time_unix_nano(), 10u);
  EXPECT_EQ(converted.end_time_unix_nano(), 20u);
  EXPECT_EQ(converted.flags(), 1u);
  EXPECT_EQ(converted.status_code(), meshtel::v1::SPAN_STATUS_CODE_ERROR);
  EXPECT_EQ(converted.status_message(), "boom");
  EXPECT_EQ(converted.service_name(), "checkout");
  ASSERT_EQ(converted.resource_attributes_size(), 1);
  EXPECT_EQ(converted.resource_attributes(0).key(), "k8s.namespace.name");
  EXPECT_EQ(converted.resource_attributes(0).string_value(), "shop");
  EXPECT_EQ(converted.scope_name(), "io.opentelemetry.http");
  EXPECT_EQ(converted.scope_version(), "1.2");
  const auto& attributes = converted.attributes();
  EXPECT_EQ(Find(attributes, "s")->string_value(), "x");
  EXPECT_TRUE(Find(attributes, "b")->bool_value());
  EXPECT_EQ(Find(attributes, "i")->int_value(), -3);
  EXPECT_EQ(Find(attributes, "d")->double_value(), 0.5);
  EXPECT_EQ(Find(attributes, "y")->string_value(), "AP8=");
  EXPECT_EQ(Find(attributes, "a")->string_value(), R"(["q\"",1,2.5])");
  EXPECT_EQ(Find(attributes, "k")->string_value(), R"({"in":[false]})");
  ASSERT_NE(Find(attributes, "empty"), nullptr);
  EXPECT_EQ(Find(attributes, "empty")->value_case(), meshtel::v1::SpanAttribute::kStringValue);
  EXPECT_EQ(Find(attributes, "otlp.events")->string_value(),
            R"([{"timeUnixNano":"15","name":"retry","attributes":{"n":2}}])");
  EXPECT_EQ(Find(attributes, "otlp.links")->string_value(),
            R"([{"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","spanId":"00f067aa0ba902b7",)"
            R"("traceState":"","attributes":{}}])");
  EXPECT_EQ(Find(attributes, "otlp.dropped_events_count")->int_value(), 4);
  EXPECT_EQ(Find(attributes, "otlp.dropped_links_count"), nullptr);
}

TEST(OtlpConvertTest, RejectsInvalidSpansOneByOne) {
  ExportTraceServiceRequest request;
  AddSpan(request)->set_name("good");
  AddSpan(request)->set_trace_id(kTraceId.substr(0, 15));
  AddSpan(request)->set_trace_id(std::string(16, '\0'));
  AddSpan(request)->set_span_id(std::string(8, '\0'));
  AddSpan(request)->set_span_id("");
  AddSpan(request)->set_parent_span_id("\x01");
  trace_pb::Span* zero_parent = AddSpan(request);
  zero_parent->set_parent_span_id(std::string(8, '\0'));
  zero_parent->set_name("root");
  AddSpan(request)->set_kind(static_cast<trace_pb::Span::SpanKind>(42));

  Converted out;
  ConvertTraces(request, out);
  EXPECT_EQ(out.rejected, 5);
  EXPECT_EQ(out.message, "5 spans rejected; the first: trace_id is not 16 bytes");
  ASSERT_EQ(out.records.size(), 3);
  EXPECT_EQ(out.records[0].received_span().name(), "good");
  EXPECT_EQ(out.records[1].received_span().name(), "root");
  EXPECT_TRUE(out.records[1].received_span().parent_span_id().empty());
  EXPECT_EQ(out.records[2].received_span().kind(), meshtel::v1::SPAN_KIND_UNSPECIFIED);

  ExportTraceServiceRequest one;
  AddSpan(one)->set_span_id(std::string(8, '\0'));
  Converted single;
  ConvertTraces(one, single);
  EXPECT_EQ(single.message, "1 span rejected: span_id is all zero");
}

TEST(OtlpConvertTest, ConvertsLogRecords) {
  ExportLogsServiceRequest request;
  auto* resource_logs = request.add_resource_logs();
  AddAttribute(*resource_logs->mutable_resource()->mutable_attributes(), "service.name")
      ->set_int_value(7);
  auto* scope_logs = resource_logs->add_scope_logs();
  scope_logs->mutable_scope()->set_name("logger");
  auto* text = scope_logs->add_log_records();
  text->set_time_unix_nano(5);
  text->set_observed_time_unix_nano(6);
  text->set_severity_number(17);
  text->set_severity_text("ERROR");
  text->mutable_body()->set_string_value("disk full");
  text->set_trace_id(kTraceId);
  text->set_span_id(kSpanId);
  text->set_flags(0x101);
  text->set_event_name("ev");
  AddAttribute(*text->mutable_attributes(), "a")->set_bool_value(true);
  auto* structured = scope_logs->add_log_records();
  auto* field = structured->mutable_body()->mutable_kvlist_value()->add_values();
  field->set_key("msg");
  field->mutable_value()->set_string_value("hi");
  scope_logs->add_log_records()->set_trace_id("short");
  scope_logs->add_log_records()->set_span_id("short");

  Converted out;
  ConvertLogs(request, 99, out);
  EXPECT_EQ(out.rejected, 2);
  EXPECT_EQ(out.message,
            "2 log records rejected; the first: trace_id is neither empty nor 16 bytes");
  ASSERT_EQ(out.records.size(), 2);
  ASSERT_TRUE(out.records[0].has_received_log());
  const meshtel::v1::LogEntry& entry = out.records[0].received_log();
  EXPECT_EQ(entry.time_unix_nano(), 5u);
  EXPECT_EQ(entry.observed_time_unix_nano(), 6u);
  EXPECT_EQ(entry.severity_number(), 17);
  EXPECT_EQ(entry.severity_text(), "ERROR");
  EXPECT_EQ(entry.body(), "disk full");
  EXPECT_FALSE(entry.body_is_json());
  EXPECT_EQ(entry.trace_id(), kTraceId);
  EXPECT_EQ(entry.span_id(), kSpanId);
  EXPECT_EQ(entry.flags(), 1u);
  EXPECT_EQ(entry.event_name(), "ev");
  EXPECT_EQ(entry.service_name(), "7");
  EXPECT_EQ(entry.scope_name(), "logger");
  EXPECT_TRUE(entry.attributes(0).bool_value());
  const meshtel::v1::LogEntry& json = out.records[1].received_log();
  EXPECT_EQ(json.body(), R"({"msg":"hi"})");
  EXPECT_TRUE(json.body_is_json());
  EXPECT_EQ(json.observed_time_unix_nano(), 99u);
}

TEST(OtlpConvertTest, DecodesProtobufAndJsonAlike) {
  ExportTraceServiceRequest request;
  AddSpan(request)->set_name("n");
  Converted from_protobuf;
  ASSERT_TRUE(DecodeAndConvert(Signal::kTraces, Encoding::kProtobuf, request.SerializeAsString(), 0,
                               from_protobuf)
                  .ok());
  Converted from_json;
  ASSERT_TRUE(DecodeAndConvert(Signal::kTraces, Encoding::kJson,
                               R"({"resourceSpans":[{"scopeSpans":[{"spans":[{
                               "traceId":"4bf92f3577b34da6a3ce929d0e0e4736",
                               "spanId":"00f067aa0ba902b7","name":"n"}]}]}]})",
                               0, from_json)
                  .ok());
  ASSERT_EQ(from_protobuf.records.size(), 1);
  ASSERT_EQ(from_json.records.size(), 1);
  EXPECT_EQ(from_protobuf.records[0].SerializeAsString(), from_json.records[0].SerializeAsString());

  Converted bad;
  EXPECT_EQ(DecodeAndConvert(Signal::kTraces, Encoding::kProtobuf, "\xff\xff\xff", 0, bad).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DecodeAndConvert(Signal::kLogs, Encoding::kJson, "{", 0, bad).code(),
            absl::StatusCode::kInvalidArgument);
  Converted empty;
  EXPECT_TRUE(DecodeAndConvert(Signal::kLogs, Encoding::kProtobuf, "", 0, empty).ok());
  EXPECT_TRUE(empty.records.empty());
}

TEST(OtlpConvertTest, WritesResponsesInBothEncodings) {
  ExportTraceServiceResponse traces;
  ASSERT_TRUE(traces.ParseFromString(ExportResponse(Signal::kTraces, Encoding::kProtobuf, 0, "")));
  EXPECT_FALSE(traces.has_partial_success());
  ASSERT_TRUE(traces.ParseFromString(ExportResponse(Signal::kTraces, Encoding::kProtobuf, 3, "x")));
  EXPECT_EQ(traces.partial_success().rejected_spans(), 3);
  EXPECT_EQ(traces.partial_success().error_message(), "x");
  ExportLogsServiceResponse logs;
  ASSERT_TRUE(logs.ParseFromString(ExportResponse(Signal::kLogs, Encoding::kProtobuf, 2, "y")));
  EXPECT_EQ(logs.partial_success().rejected_log_records(), 2);
  EXPECT_EQ(ExportResponse(Signal::kLogs, Encoding::kJson, 0, ""), "{}");

  google::rpc::Status status;
  ASSERT_TRUE(status.ParseFromString(StatusBody(Encoding::kProtobuf, 14, "full", 2)));
  EXPECT_EQ(status.code(), 14);
  EXPECT_EQ(status.message(), "full");
  ASSERT_EQ(status.details_size(), 1);
  EXPECT_EQ(status.details(0).type_url(), "type.googleapis.com/google.rpc.RetryInfo");
  google::rpc::RetryInfo retry;
  ASSERT_TRUE(retry.ParseFromString(status.details(0).value()));
  EXPECT_EQ(retry.retry_delay().seconds(), 2);
  EXPECT_EQ(StatusBody(Encoding::kJson, 3, "bad"), R"({"code":3,"message":"bad"})");
}

}  // namespace
}  // namespace meshtel::collector::otlp
