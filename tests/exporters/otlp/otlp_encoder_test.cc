#include "exporters/otlp/otlp_encoder.h"

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/support/received_spans.h"
#include "tests/support/span_samples.h"

namespace meshtel::exporters {
namespace {

namespace otlp_common = opentelemetry::proto::common::v1;
namespace otlp_trace = opentelemetry::proto::trace::v1;
namespace otlp_collector = opentelemetry::proto::collector::trace::v1;
using testing::SampleSpan;
using testing::StoredSpan;
using testing::Unhex;

constexpr char kTrace[] = "4bf92f3577b34da6a3ce929d0e0e4736";
constexpr char kRoot[] = "00f067aa0ba902b7";
constexpr char kChild[] = "b7ad6b7169203331";

const otlp_common::AnyValue* Attribute(
    const google::protobuf::RepeatedPtrField<otlp_common::KeyValue>& attributes,
    const std::string& key) {
  for (const otlp_common::KeyValue& kv : attributes) {
    if (kv.key() == key) return &kv.value();
  }
  return nullptr;
}

OtlpConfig Config(OtlpProtocol protocol, OtlpCompression compression) {
  OtlpConfig config;
  config.protocol = protocol;
  config.compression = compression;
  return config;
}

TEST(ToOtlpSpanTest, IdsKindTimesFlagsAndTypedAttributes) {
  meshtel::v1::Span span = SampleSpan(kTrace, kChild, kRoot, "cart");
  span.set_trace_state("congo=t61rcWkgMzE");
  span.set_flags(0x01);
  otlp_trace::Span out;
  ToOtlpSpan(span, out);
  EXPECT_EQ(out.trace_id(), Unhex(kTrace));
  EXPECT_EQ(out.span_id(), Unhex(kChild));
  EXPECT_EQ(out.parent_span_id(), Unhex(kRoot));
  EXPECT_EQ(out.trace_state(), "congo=t61rcWkgMzE");
  EXPECT_EQ(out.flags(), 1u);
  EXPECT_EQ(out.name(), "cart.shop.svc.cluster.local:8080/*");
  EXPECT_EQ(out.kind(), otlp_trace::Span::SPAN_KIND_SERVER);
  EXPECT_EQ(out.start_time_unix_nano(), 1'755'000'000'123'456'789ull);
  EXPECT_EQ(out.end_time_unix_nano(), 1'755'000'000'135'456'789ull);
  ASSERT_EQ(out.attributes_size(), span.attributes_size());
  EXPECT_EQ(out.attributes(0).key(), "http.request.method");
  EXPECT_EQ(out.attributes(0).value().string_value(), "GET");
  const otlp_common::AnyValue* status = Attribute(out.attributes(), "http.response.status_code");
  ASSERT_NE(status, nullptr);
  EXPECT_EQ(status->value_case(), otlp_common::AnyValue::kIntValue);
  EXPECT_EQ(status->int_value(), 200);
  const otlp_common::AnyValue* sampled = Attribute(out.attributes(), "meshtel.sampled");
  ASSERT_NE(sampled, nullptr);
  EXPECT_EQ(sampled->value_case(), otlp_common::AnyValue::kBoolValue);
  const otlp_common::AnyValue* ratio = Attribute(out.attributes(), "sampling.ratio");
  ASSERT_NE(ratio, nullptr);
  EXPECT_EQ(ratio->value_case(), otlp_common::AnyValue::kDoubleValue);
  EXPECT_EQ(ratio->double_value(), 0.25);
  EXPECT_FALSE(out.has_status());
  EXPECT_EQ(out.events_size(), 0);
  EXPECT_EQ(out.links_size(), 0);
}

TEST(ToOtlpSpanTest, EveryKindKeepsItsNumber) {
  for (int kind = 0; kind <= 5; ++kind) {
    meshtel::v1::Span span = SampleSpan(kTrace, kRoot, "", "web");
    span.set_kind(static_cast<meshtel::v1::SpanKind>(kind));
    otlp_trace::Span out;
    ToOtlpSpan(span, out);
    EXPECT_EQ(static_cast<int>(out.kind()), kind);
  }
}

TEST(ToOtlpSpanTest, ARootHasNoParentAndOnlyTheTraceFlagsByte) {
  meshtel::v1::Span span = SampleSpan(kTrace, kRoot, "", "web");
  span.set_flags(0x301);
  otlp_trace::Span out;
  ToOtlpSpan(span, out);
  EXPECT_TRUE(out.parent_span_id().empty());
  EXPECT_EQ(out.flags(), 0x01u);
}

TEST(ToOtlpSpanTest, StatusAndAnomalies) {
  meshtel::v1::Span span = SampleSpan(kTrace, kRoot, "", "web");
  span.set_status_code(meshtel::v1::SPAN_STATUS_CODE_ERROR);
  span.set_status_message("upstream reset");
  span.set_anomalies((1u << meshtel::v1::SPAN_ANOMALY_ORPHAN) |
                     (1u << meshtel::v1::SPAN_ANOMALY_TRACE_EVICTED));
  otlp_trace::Span out;
  ToOtlpSpan(span, out);
  EXPECT_EQ(out.status().code(), otlp_trace::Status::STATUS_CODE_ERROR);
  EXPECT_EQ(out.status().message(), "upstream reset");
  const otlp_common::AnyValue* anomaly = Attribute(out.attributes(), "meshtel.anomaly");
  ASSERT_NE(anomaly, nullptr);
  EXPECT_EQ(anomaly->string_value(), "orphan,trace_evicted");

  span.set_status_code(meshtel::v1::SPAN_STATUS_CODE_OK);
  span.clear_status_message();
  out.Clear();
  ToOtlpSpan(span, out);
  EXPECT_EQ(out.status().code(), otlp_trace::Status::STATUS_CODE_OK);
}

TEST(BuildOtlpRequestTest, GroupsByResourceThenScope) {
  meshtel::v1::Span other_scope = SampleSpan(kTrace, "3333333333333333", kRoot, "web");
  other_scope.set_scope_name("meshtel-collector");
  std::vector<collector::StoredRecord> records = {
      StoredSpan(SampleSpan(kTrace, kRoot, "", "web"), 1),
      StoredSpan(SampleSpan(kTrace, kChild, kRoot, "cart"), 2), StoredSpan(other_scope, 3),
      StoredSpan(SampleSpan(kTrace, "1111111111111111", kChild, "web"), 4),
      StoredSpan(SampleSpan(kTrace, "2222222222222222", kChild, "cart", "other-ns"), 5)};
  auto request = std::make_unique<otlp_collector::ExportTraceServiceRequest>();
  const absl::Status built = BuildOtlpRequest(records, *request);
  ASSERT_TRUE(built.ok()) << built;
  ASSERT_EQ(request->resource_spans_size(), 3);

  const otlp_trace::ResourceSpans& web = request->resource_spans(0);
  ASSERT_GE(web.resource().attributes_size(), 1);
  EXPECT_EQ(web.resource().attributes(0).key(), "service.name");
  EXPECT_EQ(web.resource().attributes(0).value().string_value(), "web");
  const otlp_common::AnyValue* ns = Attribute(web.resource().attributes(), "k8s.namespace.name");
  ASSERT_NE(ns, nullptr);
  EXPECT_EQ(ns->string_value(), "shop");
  ASSERT_EQ(web.scope_spans_size(), 2);
  EXPECT_EQ(web.scope_spans(0).scope().name(), "meshtel-proxy");
  EXPECT_EQ(web.scope_spans(0).scope().version(), "0.1.0");
  ASSERT_EQ(web.scope_spans(0).spans_size(), 2);
  EXPECT_EQ(web.scope_spans(0).spans(0).span_id(), Unhex(kRoot));
  EXPECT_EQ(web.scope_spans(0).spans(1).span_id(), Unhex("1111111111111111"));
  EXPECT_EQ(web.scope_spans(1).scope().name(), "meshtel-collector");
  ASSERT_EQ(web.scope_spans(1).spans_size(), 1);

  EXPECT_EQ(request->resource_spans(1).resource().attributes(0).value().string_value(), "cart");
  EXPECT_EQ(request->resource_spans(2).resource().attributes(0).value().string_value(), "cart");
  EXPECT_EQ(Attribute(request->resource_spans(2).resource().attributes(), "k8s.namespace.name")
                ->string_value(),
            "other-ns");
}

TEST(BuildOtlpRequestTest, ServiceNameFromTheResourceOrUnknownAndNeverTwice) {
  meshtel::v1::Span named = SampleSpan(kTrace, kRoot, "", "");
  testing::AddString(*named.mutable_resource_attributes(), "service.name", "from-resource");
  std::vector<collector::StoredRecord> records = {
      StoredSpan(named, 1), StoredSpan(SampleSpan(kTrace, kChild, kRoot, ""), 2)};
  auto request = std::make_unique<otlp_collector::ExportTraceServiceRequest>();
  const absl::Status built = BuildOtlpRequest(records, *request);
  ASSERT_TRUE(built.ok()) << built;
  ASSERT_EQ(request->resource_spans_size(), 2);
  int service_names = 0;
  for (const otlp_common::KeyValue& kv : request->resource_spans(0).resource().attributes()) {
    if (kv.key() == "service.name") {
      ++service_names;
      EXPECT_EQ(kv.value().string_value(), "from-resource");
    }
  }
  EXPECT_EQ(service_names, 1);
  EXPECT_EQ(request->resource_spans(1).resource().attributes(0).value().string_value(),
            "unknown_service");
}

TEST(BuildOtlpRequestTest, AReceivedSpanKeepsItsResourceAndScopeBesideTheProxysSpan) {
  // An SDK's span (received over OTLP) under the proxy's SERVER span; its sender left
  // service.name in the resource attributes as well.
  meshtel::v1::Span sdk;
  sdk.set_trace_id(Unhex(kTrace));
  sdk.set_span_id(Unhex(kChild));
  sdk.set_parent_span_id(Unhex(kRoot));
  sdk.set_name("GET /cart");
  sdk.set_kind(meshtel::v1::SPAN_KIND_INTERNAL);
  sdk.set_service_name("cart");
  testing::AddString(*sdk.mutable_resource_attributes(), "service.name", "cart");
  testing::AddString(*sdk.mutable_resource_attributes(), "telemetry.sdk.language", "go");
  sdk.set_scope_name("go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp");
  sdk.set_scope_version("0.53.0");
  std::vector<collector::StoredRecord> records = {
      StoredSpan(SampleSpan(kTrace, kRoot, "", "cart"), 1), StoredSpan(sdk, 2)};
  auto request = std::make_unique<otlp_collector::ExportTraceServiceRequest>();
  const absl::Status built = BuildOtlpRequest(records, *request);
  ASSERT_TRUE(built.ok()) << built;
  // Same service name, another resource: two ResourceSpans.
  ASSERT_EQ(request->resource_spans_size(), 2);
  const otlp_trace::ResourceSpans& received = request->resource_spans(1);
  ASSERT_EQ(received.resource().attributes_size(), 2);
  EXPECT_EQ(received.resource().attributes(0).key(), "service.name");
  EXPECT_EQ(received.resource().attributes(0).value().string_value(), "cart");
  EXPECT_EQ(received.resource().attributes(1).key(), "telemetry.sdk.language");
  ASSERT_EQ(received.scope_spans_size(), 1);
  EXPECT_EQ(received.scope_spans(0).scope().name(),
            "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp");
  EXPECT_EQ(received.scope_spans(0).scope().version(), "0.53.0");
  EXPECT_EQ(received.scope_spans(0).spans(0).kind(), otlp_trace::Span::SPAN_KIND_INTERNAL);
  EXPECT_EQ(received.scope_spans(0).spans(0).parent_span_id(), Unhex(kRoot));
  EXPECT_EQ(request->resource_spans(0).scope_spans(0).scope().name(), "meshtel-proxy");
}

TEST(OtlpEncoderTest, GzipOnlyForHttp) {
  std::vector<collector::StoredRecord> records = {
      StoredSpan(SampleSpan(kTrace, kRoot, "", "web"), 1)};
  otlp_collector::ExportTraceServiceRequest request;
  ASSERT_TRUE(BuildOtlpRequest(records, request).ok());
  const std::string plain = request.SerializeAsString();

  OtlpEncoder http_gzip(Config(OtlpProtocol::kHttpProtobuf, OtlpCompression::kGzip));
  absl::StatusOr<collector::Payload> payload = http_gzip.Encode(records);
  ASSERT_TRUE(payload.ok()) << payload.status();
  EXPECT_EQ(payload->content_type, "application/x-protobuf");
  EXPECT_EQ(payload->content_encoding, "gzip");
  EXPECT_EQ(payload->entries, 1u);
  const std::optional<std::string> inflated = testing::Gunzip(payload->body);
  ASSERT_TRUE(inflated.has_value());
  EXPECT_EQ(*inflated, plain);

  OtlpEncoder grpc_gzip(Config(OtlpProtocol::kGrpc, OtlpCompression::kGzip));
  payload = grpc_gzip.Encode(records);
  ASSERT_TRUE(payload.ok()) << payload.status();
  EXPECT_EQ(payload->content_encoding, "");
  EXPECT_EQ(payload->body, plain);  // the gRPC channel compresses

  OtlpEncoder http_plain(Config(OtlpProtocol::kHttpProtobuf, OtlpCompression::kNone));
  payload = http_plain.Encode(records);
  ASSERT_TRUE(payload.ok()) << payload.status();
  EXPECT_EQ(payload->content_encoding, "");
  EXPECT_EQ(payload->body, plain);
}

TEST(OtlpEncoderTest, MeasureRefusesInvalidIds) {
  OtlpEncoder encoder(Config(OtlpProtocol::kGrpc, OtlpCompression::kNone));
  const collector::StoredRecord good = StoredSpan(SampleSpan(kTrace, kRoot, "", "web"));
  ASSERT_TRUE(encoder.Measure(good).ok());
  EXPECT_GE(*encoder.Measure(good), good.span.ByteSizeLong());
  collector::StoredRecord zero_trace = good;
  zero_trace.span.set_trace_id(std::string(16, '\0'));
  EXPECT_EQ(encoder.Measure(zero_trace).status().code(), absl::StatusCode::kInvalidArgument);
  collector::StoredRecord bad_parent = good;
  bad_parent.span.set_parent_span_id("abc");
  EXPECT_EQ(encoder.Measure(bad_parent).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(encoder.Encode(std::vector<collector::StoredRecord>{bad_parent}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(OtlpEncoderTest, TheOfficialSchemaDecodesTheRequestAlike) {
  meshtel::v1::Span error = SampleSpan(kTrace, kChild, kRoot, "cart");
  error.set_status_code(meshtel::v1::SPAN_STATUS_CODE_ERROR);
  error.set_status_message("boom");
  error.set_anomalies(1u << meshtel::v1::SPAN_ANOMALY_ORPHAN);
  error.set_trace_state("a=b");
  std::vector<collector::StoredRecord> records = {
      StoredSpan(SampleSpan(kTrace, kRoot, "", "web"), 1), StoredSpan(error, 2)};
  OtlpEncoder encoder(Config(OtlpProtocol::kHttpProtobuf, OtlpCompression::kNone));
  absl::StatusOr<collector::Payload> payload = encoder.Encode(records);
  ASSERT_TRUE(payload.ok()) << payload.status();
  otlp_collector::ExportTraceServiceRequest own;
  ASSERT_TRUE(own.ParseFromString(payload->body));
  std::string unavailable;
  const std::vector<std::string> mismatches = testing::CompareWithOfficial(
      own, payload->body, "opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest",
      &unavailable);
  if (!unavailable.empty()) GTEST_SKIP() << "official schema unavailable: " << unavailable;
  EXPECT_TRUE(mismatches.empty()) << ::testing::PrintToString(mismatches);
}

TEST(OtlpEncoderTest, TheSubsetKeepsEventsLinksAndAnyValueArraysAndMaps) {
  // What the OTLP receiver (a later issue) will decode: a full span round-trips through the
  // project's subset and the official schema alike.
  otlp_collector::ExportTraceServiceRequest request;
  otlp_trace::Span* span = request.add_resource_spans()->add_scope_spans()->add_spans();
  span->set_trace_id(Unhex(kTrace));
  span->set_span_id(Unhex(kRoot));
  otlp_trace::Span::Event* event = span->add_events();
  event->set_time_unix_nano(5);
  event->set_name("retry");
  otlp_common::KeyValue* attempt = event->add_attributes();
  attempt->set_key("attempt");
  otlp_common::ArrayValue* array = attempt->mutable_value()->mutable_array_value();
  array->add_values()->set_int_value(1);
  array->add_values()->set_string_value("two");
  otlp_trace::Span::Link* link = span->add_links();
  link->set_trace_id(Unhex(kTrace));
  link->set_span_id(Unhex(kChild));
  link->set_flags(0x301);
  otlp_common::KeyValue* map = link->add_attributes();
  map->set_key("map");
  otlp_common::KeyValue* inner = map->mutable_value()->mutable_kvlist_value()->add_values();
  inner->set_key("bytes");
  inner->mutable_value()->set_bytes_value(std::string("\x00\x01", 2));
  span->set_dropped_events_count(2);
  span->set_dropped_links_count(3);
  const std::string bytes = request.SerializeAsString();
  std::string unavailable;
  const std::vector<std::string> mismatches = testing::CompareWithOfficial(
      request, bytes, "opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest",
      &unavailable);
  if (!unavailable.empty()) GTEST_SKIP() << "official schema unavailable: " << unavailable;
  EXPECT_TRUE(mismatches.empty()) << ::testing::PrintToString(mismatches);
}

}  // namespace
}  // namespace meshtel::exporters
