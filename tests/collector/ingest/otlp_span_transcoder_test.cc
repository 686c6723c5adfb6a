#include "collector/ingest/otlp_span_transcoder.h"

#include <string>

#include "collector/common/protobuf_wire.h"
#include "collector/ingest/otlp_convert.h"
#include "gtest/gtest.h"
#include "tests/support/otlp_requests.h"

namespace meshtel::collector::otlp {
namespace {

using opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest;
namespace trace_pb = opentelemetry::proto::trace::v1;
namespace common_pb = opentelemetry::proto::common::v1;

using meshtel::testing::otlp_requests::AddAttribute;
using meshtel::testing::otlp_requests::kSpanId;
using meshtel::testing::otlp_requests::kTraceId;
constexpr uint32_t kSpanNameField = 5;  // opentelemetry.proto.trace.v1.Span.name
const std::string kParentId("\x01\x02\x03\x04\x05\x06\x07\x08", 8);

trace_pb::Span* AddSpan(trace_pb::ScopeSpans& scope_spans, int index) {
  trace_pb::Span* span = scope_spans.add_spans();
  span->set_trace_id(kTraceId);
  span->set_span_id(std::string(7, '\x01') + static_cast<char>(index + 1));
  span->set_parent_span_id(kParentId);
  span->set_name("GET /cart/" + std::to_string(index));
  span->set_kind(trace_pb::Span::SPAN_KIND_SERVER);
  span->set_start_time_unix_nano(1700000000000000000ULL + index);
  span->set_end_time_unix_nano(1700000000000005000ULL + index);
  span->set_flags(0x301);
  AddAttribute(*span->mutable_attributes(), "http.request.method")->set_string_value("GET");
  AddAttribute(*span->mutable_attributes(), "http.response.status_code")->set_int_value(200);
  return span;
}

// A request as an SDK sends it: two resources, one with two scopes.
ExportTraceServiceRequest TypicalRequest() {
  ExportTraceServiceRequest request;
  for (int r = 0; r < 2; ++r) {
    auto* resource_spans = request.add_resource_spans();
    auto& resource = *resource_spans->mutable_resource()->mutable_attributes();
    AddAttribute(resource, "service.name")->set_string_value(r == 0 ? "checkout" : "cart");
    AddAttribute(resource, "k8s.namespace.name")->set_string_value("shop");
    AddAttribute(resource, "process.pid")->set_int_value(42);
    resource_spans->set_schema_url("https://opentelemetry.io/schemas/1.24.0");
    for (int s = 0; s < (r == 0 ? 2 : 1); ++s) {
      auto* scope_spans = resource_spans->add_scope_spans();
      scope_spans->mutable_scope()->set_name("io.opentelemetry.http");
      scope_spans->mutable_scope()->set_version(s == 0 ? "1.2" : "");
      for (int i = 0; i < 3; ++i) AddSpan(*scope_spans, 10 * r + 3 * s + i);
    }
  }
  return request;
}

// The transcoder takes `body` and gives the records DecodeAndConvert gives.
void ExpectSameAsConverted(const std::string& body) {
  EncodedRecords encoded;
  ASSERT_TRUE(TranscodeTraceRequest(body, encoded));
  Converted converted;
  ASSERT_TRUE(DecodeAndConvert(Signal::kTraces, Encoding::kProtobuf, body, 1, converted).ok());
  ASSERT_EQ(encoded.size(), static_cast<size_t>(converted.records.size()));
  for (size_t i = 0; i < encoded.size(); ++i) {
    meshtel::v1::RequestRecord transcoded;
    ASSERT_TRUE(transcoded.ParseFromString(std::string(encoded.record(i)))) << "record " << i;
    EXPECT_EQ(transcoded.SerializeAsString(),
              converted.records[static_cast<int>(i)].SerializeAsString())
        << "record " << i << "\ntranscoded: " << transcoded.ShortDebugString()
        << "\nconverted: " << converted.records[static_cast<int>(i)].ShortDebugString();
  }
  EXPECT_EQ(encoded.rejected, converted.rejected);
  EXPECT_EQ(encoded.message, converted.message);
}

void AppendField(uint32_t field, common::WireType wire_type, std::string_view value,
                 std::string& out) {
  common::AppendVarint(common::FieldTag(field, wire_type), out);
  if (wire_type == common::WireType::kLengthDelimited) common::AppendVarint(value.size(), out);
  out.append(value);
}

TEST(OtlpSpanTranscoderTest, GivesTheRecordsOfTheConversionForATypicalRequest) {
  const std::string body = TypicalRequest().SerializeAsString();
  ExpectSameAsConverted(body);
  EncodedRecords encoded;
  ASSERT_TRUE(TranscodeTraceRequest(body, encoded));
  ASSERT_EQ(encoded.size(), 9u);
  meshtel::v1::RequestRecord record;
  ASSERT_TRUE(record.ParseFromString(std::string(encoded.record(8))));
  EXPECT_EQ(record.received_span().service_name(), "cart");
  EXPECT_EQ(record.received_span().scope_name(), "io.opentelemetry.http");
  EXPECT_EQ(record.received_span().name(), "GET /cart/12");
  EXPECT_EQ(record.received_span().flags(), 1u);
}

TEST(OtlpSpanTranscoderTest, MapsEveryValueTypeKindAndStatusAsTheConversionDoes) {
  ExportTraceServiceRequest request;
  auto* scope_spans = request.add_resource_spans()->add_scope_spans();
  int index = 0;
  for (int kind : {0, 1, 3, 5, 6, -1}) {
    for (int code : {0, 1, 2, 3}) {
      trace_pb::Span* span = AddSpan(*scope_spans, index++);
      span->set_kind(static_cast<trace_pb::Span::SpanKind>(kind));
      span->mutable_status()->set_code(static_cast<trace_pb::Status::StatusCode>(code));
      if (code == 2) span->mutable_status()->set_message("boom");
    }
  }
  trace_pb::Span* span = AddSpan(*scope_spans, index++);
  span->set_trace_state("k=v");
  span->set_parent_span_id(std::string(8, '\0'));  // no parent
  span->set_start_time_unix_nano(0);
  span->set_flags(0);
  auto& attributes = *span->mutable_attributes();
  AddAttribute(attributes, "s")->set_string_value("x ü");
  AddAttribute(attributes, "s0")->set_string_value("");
  AddAttribute(attributes, "t")->set_bool_value(true);
  AddAttribute(attributes, "f")->set_bool_value(false);
  AddAttribute(attributes, "i")->set_int_value(-3);
  AddAttribute(attributes, "i0")->set_int_value(0);
  AddAttribute(attributes, "d")->set_double_value(0.5);
  AddAttribute(attributes, "d0")->set_double_value(0);
  AddAttribute(attributes, "empty");
  attributes.Add();  // no key, no value
  attributes.Add()->set_key("novalue");
  // Spans the walk leaves to protobuf, among the others: events, links, dropped counts, and the
  // value types it does not map itself.
  AddSpan(*scope_spans, index++)->add_events()->set_name("retry");
  AddSpan(*scope_spans, index++)->add_links()->set_trace_id(kTraceId);
  AddSpan(*scope_spans, index++)->set_dropped_attributes_count(2);
  AddAttribute(*AddSpan(*scope_spans, index++)->mutable_attributes(), "y")
      ->set_bytes_value(std::string("\x00\xff", 2));
  AddAttribute(*AddSpan(*scope_spans, index++)->mutable_attributes(), "a")
      ->mutable_array_value()
      ->add_values()
      ->set_int_value(1);
  ExpectSameAsConverted(request.SerializeAsString());
}

TEST(OtlpSpanTranscoderTest, RejectsInvalidSpansAsTheConversionDoes) {
  ExportTraceServiceRequest request;
  auto* scope_spans = request.add_resource_spans()->add_scope_spans();
  AddSpan(*scope_spans, 0)->set_trace_id("short");
  AddSpan(*scope_spans, 1);
  AddSpan(*scope_spans, 2)->set_span_id(std::string(8, '\0'));
  AddSpan(*scope_spans, 3)->set_parent_span_id("xyz");
  AddSpan(*scope_spans, 4)->set_trace_id(std::string(16, '\0'));
  AddSpan(*scope_spans, 5)->clear_span_id();
  // Invalid and left to protobuf (it has an event): rejected the same way.
  trace_pb::Span* with_event = AddSpan(*scope_spans, 6);
  with_event->clear_trace_id();
  with_event->add_events();
  ExpectSameAsConverted(request.SerializeAsString());
  EncodedRecords encoded;
  ASSERT_TRUE(TranscodeTraceRequest(request.SerializeAsString(), encoded));
  EXPECT_EQ(encoded.size(), 1u);
  EXPECT_EQ(encoded.rejected, 6);
  EXPECT_EQ(encoded.message, "6 spans rejected; the first: trace_id is not 16 bytes");

  ExportTraceServiceRequest one;
  AddSpan(*one.add_resource_spans()->add_scope_spans(), 0)->set_span_id("x");
  ASSERT_TRUE(TranscodeTraceRequest(one.SerializeAsString(), encoded));
  EXPECT_EQ(encoded.message, "1 span rejected: span_id is not 8 bytes");
}

TEST(OtlpSpanTranscoderTest, ReadsFieldsInAnyOrderAndSkipsUnknownOnes) {
  ExportTraceServiceRequest request = TypicalRequest();
  std::string body;
  for (const trace_pb::ResourceSpans& resource_spans : request.resource_spans()) {
    // The resource after its scopes, and unknown fields of every wire type between them.
    std::string reordered;
    for (const trace_pb::ScopeSpans& scope_spans : resource_spans.scope_spans()) {
      std::string scope;
      for (const trace_pb::Span& span : scope_spans.spans()) {
        std::string span_bytes;
        AppendField(99, common::WireType::kVarint, "\x05", span_bytes);
        // The name first, then the other fields.
        AppendField(kSpanNameField, common::WireType::kLengthDelimited, span.name(), span_bytes);
        trace_pb::Span rest = span;
        rest.clear_name();
        span_bytes += rest.SerializeAsString();
        AppendField(98, common::WireType::kFixed32, "abcd", span_bytes);
        AppendField(2, common::WireType::kLengthDelimited, span_bytes, scope);
      }
      AppendField(1, common::WireType::kLengthDelimited, scope_spans.scope().SerializeAsString(),
                  scope);
      AppendField(97, common::WireType::kFixed64, "abcdefgh", scope);
      AppendField(2, common::WireType::kLengthDelimited, scope, reordered);
    }
    AppendField(1, common::WireType::kLengthDelimited,
                resource_spans.resource().SerializeAsString(), reordered);
    AppendField(96, common::WireType::kLengthDelimited, "anything", reordered);
    AppendField(1, common::WireType::kLengthDelimited, reordered, body);
  }
  AppendField(95, common::WireType::kVarint, "\x01", body);
  ExpectSameAsConverted(body);
}

TEST(OtlpSpanTranscoderTest, LeavesIrregularSpansToProtobufWithTheSameResult) {
  ExportTraceServiceRequest request;
  auto* scope_spans = request.add_resource_spans()->add_scope_spans();
  const std::string base = AddSpan(*scope_spans, 0)->SerializeAsString();
  std::string body;
  auto add_span = [&](const std::string& span_bytes) {
    std::string scope;
    AppendField(2, common::WireType::kLengthDelimited, span_bytes, scope);
    std::string resource_spans;
    AppendField(2, common::WireType::kLengthDelimited, scope, resource_spans);
    AppendField(1, common::WireType::kLengthDelimited, resource_spans, body);
  };
  // A name given twice (the last one counts), a kind given as fixed32 (an unknown field then),
  // an attribute with two values (merged), a group.
  std::string twice = base;
  AppendField(kSpanNameField, common::WireType::kLengthDelimited, "second", twice);
  add_span(twice);
  std::string wrong_type = base;
  AppendField(6, common::WireType::kFixed32, std::string_view("\x02\x00\x00\x00", 4), wrong_type);
  add_span(wrong_type);
  std::string merged = base;
  common_pb::KeyValue first;
  first.set_key("k");
  first.mutable_value()->set_string_value("a");
  common_pb::AnyValue second;
  second.set_int_value(7);
  std::string key_value = first.SerializeAsString();
  AppendField(2, common::WireType::kLengthDelimited, second.SerializeAsString(), key_value);
  AppendField(9, common::WireType::kLengthDelimited, key_value, merged);
  add_span(merged);
  std::string group = base;
  group += "\xa3\x06\xa4\x06";  // field 100: start group, end group
  add_span(group);
  ExpectSameAsConverted(body);
}

TEST(OtlpSpanTranscoderTest, LeavesMalformedRequestsToTheCaller) {
  const std::string body = TypicalRequest().SerializeAsString();
  EncodedRecords encoded;
  Converted converted;
  // Truncated anywhere: the transcoder refuses, and so does the conversion.
  for (size_t size : {body.size() - 1, body.size() / 2, size_t{3}}) {
    const std::string cut = body.substr(0, size);
    EXPECT_FALSE(TranscodeTraceRequest(cut, encoded)) << size;
    EXPECT_FALSE(DecodeAndConvert(Signal::kTraces, Encoding::kProtobuf, cut, 1, converted).ok());
  }
  // Invalid UTF-8 in a span name and in a resource attribute.
  ExportTraceServiceRequest request = TypicalRequest();
  request.mutable_resource_spans(0)->mutable_scope_spans(0)->mutable_spans(1)->set_name("\xff");
  EXPECT_FALSE(TranscodeTraceRequest(request.SerializeAsString(), encoded));
  request = TypicalRequest();
  request.mutable_resource_spans(1)
      ->mutable_resource()
      ->mutable_attributes(0)
      ->mutable_value()
      ->set_string_value("\xc3");
  EXPECT_FALSE(TranscodeTraceRequest(request.SerializeAsString(), encoded));
  // A length over 5 bytes: protobuf's parser refuses it.
  EXPECT_FALSE(TranscodeTraceRequest(std::string("\x0a\x80\x80\x80\x80\x80\x00", 7), encoded));
  EXPECT_FALSE(DecodeAndConvert(Signal::kTraces, Encoding::kProtobuf,
                                std::string("\x0a\x80\x80\x80\x80\x80\x00", 7), 1, converted)
                   .ok());
  // Nothing at all is a request without spans.
  ASSERT_TRUE(TranscodeTraceRequest("", encoded));
  EXPECT_EQ(encoded.size(), 0u);
}

// An attribute value nested `depth` key-value lists deep, in a span of a request.
std::string NestedRequest(int depth, bool in_resource) {
  common_pb::AnyValue value;
  value.set_string_value("leaf");
  for (int i = 0; i < depth; ++i) {
    common_pb::AnyValue outer;
    common_pb::KeyValue* entry = outer.mutable_kvlist_value()->add_values();
    entry->set_key("k");
    *entry->mutable_value() = value;
    value = outer;
  }
  ExportTraceServiceRequest request;
  auto* resource_spans = request.add_resource_spans();
  trace_pb::Span* span = AddSpan(*resource_spans->add_scope_spans(), 0);
  auto& attributes = in_resource ? *resource_spans->mutable_resource()->mutable_attributes()
                                 : *span->mutable_attributes();
  *AddAttribute(attributes, "nested") = value;
  return request.SerializeAsString();
}

TEST(OtlpSpanTranscoderTest, RefusesExactlyTheNestingProtobufRefuses) {
  for (bool in_resource : {false, true}) {
    // The deepest nesting the conversion accepts.
    int deepest = 0;
    Converted converted;
    while (DecodeAndConvert(Signal::kTraces, Encoding::kProtobuf,
                            NestedRequest(deepest + 1, in_resource), 1, converted)
               .ok()) {
      ++deepest;
      ASSERT_LT(deepest, 200);
    }
    ASSERT_GT(deepest, 10);
    ExpectSameAsConverted(NestedRequest(deepest, in_resource));
    EncodedRecords encoded;
    EXPECT_FALSE(TranscodeTraceRequest(NestedRequest(deepest + 1, in_resource), encoded))
        << in_resource;
  }
}

}  // namespace
}  // namespace meshtel::collector::otlp
