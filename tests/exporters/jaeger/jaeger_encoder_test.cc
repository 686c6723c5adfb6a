#include "exporters/jaeger/jaeger_encoder.h"

#include <map>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/support/received_spans.h"
#include "tests/support/span_samples.h"

namespace meshtel::exporters {
namespace {

namespace api = jaeger::api_v2;
using testing::SampleSpan;
using testing::StoredSpan;
using testing::Unhex;

constexpr char kTrace[] = "4bf92f3577b34da6a3ce929d0e0e4736";
constexpr char kRoot[] = "00f067aa0ba902b7";
constexpr char kChild[] = "b7ad6b7169203331";

const api::KeyValue* Tag(const api::Span& span, const std::string& key) {
  const api::KeyValue* found = nullptr;
  int count = 0;
  for (const api::KeyValue& tag : span.tags()) {
    if (tag.key() == key) {
      found = &tag;
      ++count;
    }
  }
  EXPECT_LE(count, 1) << "tag " << key << " appears " << count << " times";
  return found;
}

std::vector<api::PostSpansRequest> Decode(const collector::Payload& payload) {
  absl::StatusOr<std::vector<std::string_view>> parts = SplitJaegerPayload(payload.body);
  EXPECT_TRUE(parts.ok()) << parts.status();
  std::vector<api::PostSpansRequest> requests;
  if (!parts.ok()) return requests;
  for (std::string_view part : *parts) {
    api::PostSpansRequest request;
    EXPECT_TRUE(request.ParseFromString(std::string(part)));
    requests.push_back(request);
  }
  return requests;
}

TEST(ToJaegerSpanTest, IdsReferenceFlagsAndTimes) {
  api::Span out;
  ToJaegerSpan(SampleSpan(kTrace, kChild, kRoot, "cart"), out);
  EXPECT_EQ(out.trace_id(), Unhex(kTrace));
  EXPECT_EQ(out.trace_id().size(), 16u);
  EXPECT_EQ(static_cast<unsigned char>(out.trace_id()[0]), 0x4b);  // high half first, big-endian
  EXPECT_EQ(out.span_id(), Unhex(kChild));
  EXPECT_EQ(out.operation_name(), "cart.shop.svc.cluster.local:8080/*");
  ASSERT_EQ(out.references_size(), 1);
  EXPECT_EQ(out.references(0).ref_type(), api::CHILD_OF);
  EXPECT_EQ(out.references(0).trace_id(), Unhex(kTrace));
  EXPECT_EQ(out.references(0).span_id(), Unhex(kRoot));
  EXPECT_EQ(out.flags(), 1u);
  EXPECT_EQ(out.start_time().seconds(), 1'755'000'000);
  EXPECT_EQ(out.start_time().nanos(), 123'456'789);
  EXPECT_EQ(out.duration().seconds(), 0);
  EXPECT_EQ(out.duration().nanos(), 12'000'000);
  EXPECT_FALSE(out.has_process());
}

TEST(ToJaegerSpanTest, ARootHasNoReference) {
  api::Span out;
  ToJaegerSpan(SampleSpan(kTrace, kRoot, "", "frontend"), out);
  EXPECT_EQ(out.references_size(), 0);
}

TEST(ToJaegerSpanTest, OnlyTheSampledBitOfTheTraceFlags) {
  meshtel::v1::Span span = SampleSpan(kTrace, kRoot, "", "frontend");
  span.set_flags(0x03);  // sampled + W3C "random": Jaeger's 0x2 would mean debug
  api::Span out;
  ToJaegerSpan(span, out);
  EXPECT_EQ(out.flags(), 1u);
  span.set_flags(0x02);
  out.Clear();
  ToJaegerSpan(span, out);
  EXPECT_EQ(out.flags(), 0u);
}

TEST(ToJaegerSpanTest, TypedTags) {
  api::Span out;
  ToJaegerSpan(SampleSpan(kTrace, kChild, kRoot, "cart"), out);
  const api::KeyValue* method = Tag(out, "http.request.method");
  ASSERT_NE(method, nullptr);
  EXPECT_EQ(method->v_type(), api::STRING);
  EXPECT_EQ(method->v_str(), "GET");
  const api::KeyValue* status = Tag(out, "http.response.status_code");
  ASSERT_NE(status, nullptr);
  EXPECT_EQ(status->v_type(), api::INT64);
  EXPECT_EQ(status->v_int64(), 200);
  const api::KeyValue* sampled = Tag(out, "meshtel.sampled");
  ASSERT_NE(sampled, nullptr);
  EXPECT_EQ(sampled->v_type(), api::BOOL);
  EXPECT_TRUE(sampled->v_bool());
  const api::KeyValue* ratio = Tag(out, "sampling.ratio");
  ASSERT_NE(ratio, nullptr);
  EXPECT_EQ(ratio->v_type(), api::FLOAT64);
  EXPECT_EQ(ratio->v_float64(), 0.25);
  const api::KeyValue* scope = Tag(out, "otel.scope.name");
  ASSERT_NE(scope, nullptr);
  EXPECT_EQ(scope->v_str(), "meshtel-proxy");
  ASSERT_NE(Tag(out, "otel.scope.version"), nullptr);
  EXPECT_EQ(Tag(out, "otel.scope.version")->v_str(), "0.1.0");
  // Attributes keep their order; the exporter's tags follow.
  EXPECT_EQ(out.tags(0).key(), "http.request.method");
}

TEST(ToJaegerSpanTest, KindTags) {
  const std::vector<std::pair<meshtel::v1::SpanKind, std::string>> kinds = {
      {meshtel::v1::SPAN_KIND_CLIENT, "client"},     {meshtel::v1::SPAN_KIND_SERVER, "server"},
      {meshtel::v1::SPAN_KIND_PRODUCER, "producer"}, {meshtel::v1::SPAN_KIND_CONSUMER, "consumer"},
      {meshtel::v1::SPAN_KIND_INTERNAL, ""},         {meshtel::v1::SPAN_KIND_UNSPECIFIED, ""}};
  for (const auto& [kind, name] : kinds) {
    meshtel::v1::Span span = SampleSpan(kTrace, kRoot, "", "frontend");
    span.set_kind(kind);
    api::Span out;
    ToJaegerSpan(span, out);
    const api::KeyValue* tag = Tag(out, "span.kind");
    if (name.empty()) {
      EXPECT_EQ(tag, nullptr) << kind;
    } else {
      ASSERT_NE(tag, nullptr) << kind;
      EXPECT_EQ(tag->v_type(), api::STRING);
      EXPECT_EQ(tag->v_str(), name);
    }
  }
}

TEST(ToJaegerSpanTest, StatusTagsAsTheOpenTelemetryTranslatorWritesThem) {
  meshtel::v1::Span span = SampleSpan(kTrace, kRoot, "", "frontend");
  api::Span unset;
  ToJaegerSpan(span, unset);
  EXPECT_EQ(Tag(unset, "error"), nullptr);
  EXPECT_EQ(Tag(unset, "otel.status_code"), nullptr);
  EXPECT_EQ(Tag(unset, "otel.status_description"), nullptr);

  span.set_status_code(meshtel::v1::SPAN_STATUS_CODE_OK);
  api::Span ok;
  ToJaegerSpan(span, ok);
  EXPECT_EQ(Tag(ok, "error"), nullptr);
  ASSERT_NE(Tag(ok, "otel.status_code"), nullptr);
  EXPECT_EQ(Tag(ok, "otel.status_code")->v_str(), "OK");

  span.set_status_code(meshtel::v1::SPAN_STATUS_CODE_ERROR);
  span.set_status_message("upstream reset");
  api::Span error;
  ToJaegerSpan(span, error);
  const api::KeyValue* flag = Tag(error, "error");
  ASSERT_NE(flag, nullptr);
  EXPECT_EQ(flag->v_type(), api::BOOL);
  EXPECT_TRUE(flag->v_bool());
  EXPECT_EQ(Tag(error, "otel.status_code")->v_str(), "ERROR");
  ASSERT_NE(Tag(error, "otel.status_description"), nullptr);
  EXPECT_EQ(Tag(error, "otel.status_description")->v_str(), "upstream reset");
}

TEST(ToJaegerSpanTest, AnAttributeOfTheSameKeyIsNotRepeated) {
  meshtel::v1::Span span = SampleSpan(kTrace, kRoot, "", "frontend");
  span.set_status_code(meshtel::v1::SPAN_STATUS_CODE_ERROR);
  meshtel::v1::SpanAttribute* error = span.add_attributes();
  error->set_key("error");
  error->set_bool_value(true);
  api::Span out;
  ToJaegerSpan(span, out);  // Tag() fails the test on a second "error"
  ASSERT_NE(Tag(out, "error"), nullptr);
  EXPECT_TRUE(Tag(out, "error")->v_bool());
}

TEST(ToJaegerSpanTest, AnomaliesTraceStateAndABackwardsSpan) {
  meshtel::v1::Span span = SampleSpan(kTrace, kChild, kRoot, "cart");
  span.set_anomalies((1u << meshtel::v1::SPAN_ANOMALY_ORPHAN) |
                     (1u << meshtel::v1::SPAN_ANOMALY_ENDS_BEFORE_START));
  span.set_end_time_unix_nano(span.start_time_unix_nano() - 5);
  span.set_trace_state("congo=t61rcWkgMzE");
  api::Span out;
  ToJaegerSpan(span, out);
  ASSERT_NE(Tag(out, "meshtel.anomaly"), nullptr);
  EXPECT_EQ(Tag(out, "meshtel.anomaly")->v_str(), "ends_before_start,orphan");
  ASSERT_NE(Tag(out, "w3c.tracestate"), nullptr);
  EXPECT_EQ(Tag(out, "w3c.tracestate")->v_str(), "congo=t61rcWkgMzE");
  EXPECT_TRUE(out.has_duration());
  EXPECT_EQ(out.duration().seconds(), 0);
  EXPECT_EQ(out.duration().nanos(), 0);
}

TEST(ToJaegerProcessTest, ServiceAndResourceTags) {
  api::Process process;
  ToJaegerProcess(SampleSpan(kTrace, kRoot, "", "frontend"), process);
  EXPECT_EQ(process.service_name(), "frontend");
  ASSERT_EQ(process.tags_size(), 3);
  EXPECT_EQ(process.tags(0).key(), "service.namespace");
  EXPECT_EQ(process.tags(0).v_str(), "shop");
  EXPECT_EQ(process.tags(1).key(), "k8s.namespace.name");
  EXPECT_EQ(process.tags(2).key(), "k8s.pod.name");
  EXPECT_EQ(process.tags(2).v_str(), "frontend-7d9f8b6c5-x2x9z");
}

TEST(JaegerEncoderTest, OneBatchPerProcessInOrderOfFirstSpan) {
  std::vector<collector::StoredRecord> records = {
      StoredSpan(SampleSpan(kTrace, kRoot, "", "frontend"), 1),
      StoredSpan(SampleSpan(kTrace, kChild, kRoot, "cart"), 2),
      StoredSpan(SampleSpan(kTrace, "1111111111111111", kChild, "frontend"), 3),
      StoredSpan(SampleSpan(kTrace, "2222222222222222", kChild, "cart", "other-ns"), 4)};
  JaegerEncoder encoder;
  absl::StatusOr<collector::Payload> payload = encoder.Encode(records);
  ASSERT_TRUE(payload.ok()) << payload.status();
  EXPECT_EQ(payload->entries, 4u);
  EXPECT_EQ(payload->content_type, "application/x-meshtel-delimited-jaeger-post-spans");
  const std::vector<api::PostSpansRequest> requests = Decode(*payload);
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[0].batch().process().service_name(), "frontend");
  ASSERT_EQ(requests[0].batch().spans_size(), 2);
  EXPECT_EQ(requests[0].batch().spans(0).span_id(), Unhex(kRoot));
  EXPECT_EQ(requests[0].batch().spans(1).span_id(), Unhex("1111111111111111"));
  EXPECT_EQ(requests[1].batch().process().service_name(), "cart");
  ASSERT_EQ(requests[1].batch().spans_size(), 1);
  EXPECT_EQ(requests[2].batch().process().service_name(), "cart");  // another namespace
  EXPECT_EQ(requests[2].batch().process().tags(0).v_str(), "other-ns");
  for (const api::PostSpansRequest& request : requests) {
    for (const api::Span& span : request.batch().spans()) EXPECT_FALSE(span.has_process());
  }
}

TEST(JaegerEncoderTest, AReceivedSpanIsItsOwnProcessWithItsScopeAsTags) {
  meshtel::v1::Span sdk;
  sdk.set_trace_id(Unhex(kTrace));
  sdk.set_span_id(Unhex(kChild));
  sdk.set_parent_span_id(Unhex(kRoot));
  sdk.set_name("GET /cart");
  sdk.set_kind(meshtel::v1::SPAN_KIND_INTERNAL);
  sdk.set_service_name("cart");
  testing::AddString(*sdk.mutable_resource_attributes(), "service.name", "cart");
  testing::AddString(*sdk.mutable_resource_attributes(), "telemetry.sdk.language", "go");
  sdk.set_scope_name("otelhttp");
  sdk.set_scope_version("0.53.0");
  std::vector<collector::StoredRecord> records = {
      StoredSpan(SampleSpan(kTrace, kRoot, "", "cart"), 1), StoredSpan(sdk, 2)};
  JaegerEncoder encoder;
  absl::StatusOr<collector::Payload> payload = encoder.Encode(records);
  ASSERT_TRUE(payload.ok()) << payload.status();
  const std::vector<api::PostSpansRequest> requests = Decode(*payload);
  ASSERT_EQ(requests.size(), 2u);
  const api::Process& process = requests[1].batch().process();
  EXPECT_EQ(process.service_name(), "cart");
  ASSERT_EQ(process.tags_size(), 1);  // service.name is the service, not a tag
  EXPECT_EQ(process.tags(0).key(), "telemetry.sdk.language");
  std::map<std::string, std::string> tags;
  for (const api::KeyValue& tag : requests[1].batch().spans(0).tags())
    tags[tag.key()] = tag.v_str();
  EXPECT_EQ(tags["otel.scope.name"], "otelhttp");
  EXPECT_EQ(tags["otel.scope.version"], "0.53.0");
  EXPECT_FALSE(tags.contains("span.kind"));  // INTERNAL: no kind tag, as Jaeger shows it
  EXPECT_EQ(requests[1].batch().spans(0).references(0).span_id(), Unhex(kRoot));
}

TEST(JaegerEncoderTest, AServiceFromTheResourceOrUnknown) {
  meshtel::v1::Span named = SampleSpan(kTrace, kRoot, "", "");
  testing::AddString(*named.mutable_resource_attributes(), "service.name", "from-resource");
  meshtel::v1::Span unnamed = SampleSpan(kTrace, kChild, kRoot, "");
  std::vector<collector::StoredRecord> records = {StoredSpan(named, 1), StoredSpan(unnamed, 2)};
  JaegerEncoder encoder;
  absl::StatusOr<collector::Payload> payload = encoder.Encode(records);
  ASSERT_TRUE(payload.ok()) << payload.status();
  const std::vector<api::PostSpansRequest> requests = Decode(*payload);
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].batch().process().service_name(), "from-resource");
  for (const api::KeyValue& tag : requests[0].batch().process().tags()) {
    EXPECT_NE(tag.key(), "service.name");
  }
  EXPECT_EQ(requests[1].batch().process().service_name(), "unknown_service");
}

TEST(JaegerEncoderTest, MeasureRefusesWhatNoBackendTakes) {
  JaegerEncoder encoder;
  const collector::StoredRecord good = StoredSpan(SampleSpan(kTrace, kRoot, "", "frontend"));
  absl::StatusOr<size_t> size = encoder.Measure(good);
  ASSERT_TRUE(size.ok()) << size.status();
  EXPECT_GE(*size, good.span.ByteSizeLong());

  collector::StoredRecord short_trace = good;
  short_trace.span.set_trace_id(Unhex("a3ce929d0e0e4736"));
  EXPECT_EQ(encoder.Measure(short_trace).status().code(), absl::StatusCode::kInvalidArgument);
  collector::StoredRecord zero_span = good;
  zero_span.span.set_span_id(std::string(8, '\0'));
  EXPECT_EQ(encoder.Measure(zero_span).status().code(), absl::StatusCode::kInvalidArgument);
  collector::StoredRecord log = good;
  log.family = collector::RecordFamily::kLogs;
  EXPECT_EQ(encoder.Measure(log).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(JaegerEncoderTest, TheOfficialSchemaDecodesEveryRequestAlike) {
  meshtel::v1::Span error = SampleSpan(kTrace, kChild, kRoot, "cart");
  error.set_status_code(meshtel::v1::SPAN_STATUS_CODE_ERROR);
  error.set_status_message("boom");
  error.set_anomalies(1u << meshtel::v1::SPAN_ANOMALY_DUPLICATE_SPAN_ID);
  std::vector<collector::StoredRecord> records = {
      StoredSpan(SampleSpan(kTrace, kRoot, "", "frontend"), 1), StoredSpan(error, 2)};
  JaegerEncoder encoder;
  absl::StatusOr<collector::Payload> payload = encoder.Encode(records);
  ASSERT_TRUE(payload.ok()) << payload.status();
  absl::StatusOr<std::vector<std::string_view>> parts = SplitJaegerPayload(payload->body);
  ASSERT_TRUE(parts.ok());
  ASSERT_EQ(parts->size(), 2u);
  for (std::string_view part : *parts) {
    api::PostSpansRequest own;
    ASSERT_TRUE(own.ParseFromString(std::string(part)));
    std::string unavailable;
    const std::vector<std::string> mismatches = testing::CompareWithOfficial(
        own, std::string(part), "jaeger.api_v2.PostSpansRequest", &unavailable);
    if (!unavailable.empty()) GTEST_SKIP() << "official schema unavailable: " << unavailable;
    EXPECT_TRUE(mismatches.empty()) << ::testing::PrintToString(mismatches);
  }
}

TEST(SplitJaegerPayloadTest, RefusesATruncatedBody) {
  std::string body;
  body.push_back(10);
  body += "short";
  EXPECT_EQ(SplitJaegerPayload(body).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SplitJaegerPayload("\x80").status().code(), absl::StatusCode::kInvalidArgument);
  absl::StatusOr<std::vector<std::string_view>> empty = SplitJaegerPayload("");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

}  // namespace
}  // namespace meshtel::exporters
