#include "collector/traces/span_builder.h"

#include <map>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace meshtel::collector {
namespace {

using meshtel::v1::RequestRecord;
using meshtel::v1::Span;

RequestRecord Hop(meshtel::v1::Reporter reporter) {
  RequestRecord record;
  record.set_reporter(reporter);
  record.set_start_time_unix_nano(1'700'000'000'000'000'000ull);
  record.set_duration_ns(10'000'000);
  record.set_method("GET");
  record.set_scheme("http");
  record.set_authority("backend.demo:8080");
  record.set_path("/items?id=1");
  record.set_protocol("HTTP/1.1");
  record.set_user_agent("curl/8");
  record.set_request_id("4f6c0b3a-1b2c-4d5e-8f90-a1b2c3d4e5f6");
  record.set_response_code(200);
  record.set_request_bytes(120);
  record.set_response_bytes(340);
  record.set_upstream_host("10.0.0.7:8080");
  record.set_upstream_cluster("outbound|8080||backend.demo.svc.cluster.local");
  record.set_downstream_remote_address("10.0.0.5:43210");
  record.set_downstream_local_address("10.0.0.7:15006");
  record.set_trace_id(
      std::string("\x4b\xf9\x2f\x35\x77\xb3\x4d\xa6\xa3\xce\x92\x9d\x0e\x0e\x47\x36", 16));
  record.set_span_id(std::string("\x00\xf0\x67\xaa\x0b\xa9\x02\xb7", 8));
  record.set_parent_span_id(std::string("\x11\x22\x33\x44\x55\x66\x77\x88", 8));
  record.set_sampled(true);
  auto* source = record.mutable_source();
  source->set_workload("frontend-v1");
  source->set_namespace_("demo");
  source->set_app("frontend");
  source->set_version("v1");
  source->set_canonical_service("frontend");
  source->set_canonical_revision("v1");
  auto* destination = record.mutable_destination();
  destination->set_workload("backend-v2");
  destination->set_namespace_("demo");
  destination->set_app("backend");
  destination->set_version("v2");
  destination->set_canonical_service("backend");
  destination->set_canonical_revision("v2");
  record.mutable_destination_service()->set_host("backend.demo.svc.cluster.local");
  auto* phases = record.mutable_phases();
  phases->set_downstream_headers_done_ns(100'000);
  phases->set_route_chosen_ns(150'000);
  phases->set_upstream_connected_ns(400'000);
  phases->set_upstream_connection_reused(true);
  phases->set_upstream_headers_sent_ns(450'000);
  phases->set_upstream_request_done_ns(500'000);
  phases->set_upstream_first_byte_ns(9'000'000);
  phases->set_upstream_last_byte_ns(9'800'000);
  phases->set_downstream_last_byte_ns(9'900'000);
  return record;
}

std::map<std::string, std::string> StringTags(const Span& span) {
  std::map<std::string, std::string> tags;
  for (const auto& attribute : span.attributes()) {
    if (attribute.has_string_value()) tags[attribute.key()] = attribute.string_value();
  }
  return tags;
}

const meshtel::v1::SpanAttribute* Find(const Span& span, const std::string& key) {
  for (const auto& attribute : span.attributes()) {
    if (attribute.key() == key) return &attribute;
  }
  return nullptr;
}

TEST(SpanBuilderTest, ServerSpanOfAnInboundHopCarriesEnvoyAndIstioTags) {
  TracesConfig config;
  SpanBuilder builder(config);
  std::vector<Span> spans;
  ASSERT_EQ(builder.Build(Hop(meshtel::v1::REPORTER_DESTINATION), spans), 1u);
  const Span& span = spans[0];
  EXPECT_EQ(span.kind(), meshtel::v1::SPAN_KIND_SERVER);
  EXPECT_EQ(span.name(), "backend.demo.svc.cluster.local:8080/*");
  EXPECT_EQ(span.service_name(), "backend.demo");
  EXPECT_EQ(span.parent_span_id(), std::string("\x11\x22\x33\x44\x55\x66\x77\x88", 8));
  EXPECT_EQ(span.start_time_unix_nano(), 1'700'000'000'000'000'000ull);
  EXPECT_EQ(span.end_time_unix_nano(), 1'700'000'000'010'000'000ull);
  EXPECT_EQ(span.flags(), 1u);
  EXPECT_EQ(span.status_code(), meshtel::v1::SPAN_STATUS_CODE_UNSET);
  EXPECT_EQ(span.scope_name(), "meshtel-proxy");
  std::map<std::string, std::string> tags = StringTags(span);
  EXPECT_EQ(tags["component"], "proxy");
  EXPECT_EQ(tags["guid:x-request-id"], "4f6c0b3a-1b2c-4d5e-8f90-a1b2c3d4e5f6");
  EXPECT_EQ(tags["http.url"], "http://backend.demo:8080/items?id=1");
  EXPECT_EQ(tags["http.method"], "GET");
  EXPECT_EQ(tags["http.protocol"], "HTTP/1.1");
  EXPECT_EQ(tags["http.status_code"], "200");
  EXPECT_EQ(tags["user_agent"], "curl/8");
  EXPECT_EQ(tags["downstream_cluster"], "-");
  EXPECT_EQ(tags["peer.address"], "10.0.0.5:43210");
  EXPECT_EQ(tags["request_size"], "120");
  EXPECT_EQ(tags["response_size"], "340");
  EXPECT_EQ(tags["response_flags"], "-");
  EXPECT_EQ(tags["upstream_cluster"], "outbound|8080||backend.demo.svc.cluster.local");
  EXPECT_EQ(tags["node_id"], "sidecar~10.0.0.7~backend-v2.demo~demo.svc.cluster.local");
  EXPECT_EQ(tags["istio.canonical_service"], "backend");
  EXPECT_EQ(tags["istio.canonical_revision"], "v2");
  EXPECT_EQ(tags["istio.namespace"], "demo");
  EXPECT_EQ(tags["istio.mesh_id"], "cluster.local");
  EXPECT_EQ(tags["url.path"], "/items?id=1");
  EXPECT_EQ(Find(span, "error"), nullptr);
  ASSERT_NE(Find(span, "http.response.status_code"), nullptr);
  EXPECT_EQ(Find(span, "http.response.status_code")->int_value(), 200);
  ASSERT_NE(Find(span, "server.port"), nullptr);
  EXPECT_EQ(Find(span, "server.port")->int_value(), 8080);
}

TEST(SpanBuilderTest, ClientSpanBelongsToTheCallingWorkload) {
  TracesConfig config;
  config.service_name = TraceServiceName::kCanonicalNameOnly;
  SpanBuilder builder(config);
  std::vector<Span> spans;
  ASSERT_EQ(builder.Build(Hop(meshtel::v1::REPORTER_SOURCE), spans), 1u);
  EXPECT_EQ(spans[0].kind(), meshtel::v1::SPAN_KIND_CLIENT);
  EXPECT_EQ(spans[0].service_name(), "frontend");
  EXPECT_EQ(StringTags(spans[0])["istio.canonical_service"], "frontend");

  // Without a port in the authority, the name takes the cluster's service port.
  RequestRecord record = Hop(meshtel::v1::REPORTER_SOURCE);
  record.set_authority("backend.demo");
  record.set_upstream_cluster("outbound|9080||backend.demo.svc.cluster.local");
  spans.clear();
  builder.Build(record, spans);
  EXPECT_EQ(spans[0].name(), "backend.demo.svc.cluster.local:9080/*");
}

TEST(SpanBuilderTest, ServerErrorsAndMissingResponsesAreErrors) {
  SpanBuilder builder(TracesConfig{});
  RequestRecord record = Hop(meshtel::v1::REPORTER_SOURCE);
  record.set_response_code(503);
  record.set_response_flags(1u << meshtel::v1::RESPONSE_FLAG_UPSTREAM_CONNECTION_FAILURE);
  std::vector<Span> spans;
  builder.Build(record, spans);
  EXPECT_EQ(spans[0].status_code(), meshtel::v1::SPAN_STATUS_CODE_ERROR);
  ASSERT_NE(Find(spans[0], "error"), nullptr);
  EXPECT_TRUE(Find(spans[0], "error")->bool_value());
  EXPECT_EQ(StringTags(spans[0])["response_flags"], "UF");

  record.set_response_code(404);
  spans.clear();
  builder.Build(record, spans);
  EXPECT_EQ(spans[0].status_code(), meshtel::v1::SPAN_STATUS_CODE_UNSET);

  record.set_response_code(0);
  spans.clear();
  builder.Build(record, spans);
  EXPECT_EQ(spans[0].status_code(), meshtel::v1::SPAN_STATUS_CODE_ERROR);
}

TEST(SpanBuilderTest, PhaseSpansNestInsideTheirHop) {
  TracesConfig config;
  config.phase_spans = true;
  SpanBuilder builder(config);
  std::vector<Span> spans;
  ASSERT_EQ(builder.Build(Hop(meshtel::v1::REPORTER_DESTINATION), spans), 7u);
  const Span& hop = spans[0];
  std::vector<std::string> names;
  for (size_t i = 1; i < spans.size(); ++i) {
    const Span& phase = spans[i];
    names.push_back(phase.name());
    EXPECT_EQ(phase.kind(), meshtel::v1::SPAN_KIND_INTERNAL);
    EXPECT_EQ(phase.parent_span_id(), hop.span_id());
    EXPECT_EQ(phase.trace_id(), hop.trace_id());
    EXPECT_NE(phase.span_id(), hop.span_id());
    EXPECT_GE(phase.start_time_unix_nano(), hop.start_time_unix_nano());
    EXPECT_LE(phase.end_time_unix_nano(), hop.end_time_unix_nano());
    EXPECT_LE(phase.start_time_unix_nano(), phase.end_time_unix_nano());
    EXPECT_EQ(phase.service_name(), hop.service_name());
  }
  EXPECT_EQ(names, (std::vector<std::string>{"proxy.read_request", "proxy.route",
                                             "proxy.upstream_connect", "proxy.upstream_send",
                                             "proxy.upstream_wait", "proxy.response"}));
  // The wait on the upstream: request sent (0.5 ms) to first response byte (9 ms).
  EXPECT_EQ(spans[5].start_time_unix_nano() - hop.start_time_unix_nano(), 500'000u);
  EXPECT_EQ(spans[5].end_time_unix_nano() - hop.start_time_unix_nano(), 9'000'000u);
  // Building again gives the same ids.
  std::vector<Span> again;
  builder.Build(Hop(meshtel::v1::REPORTER_DESTINATION), again);
  for (size_t i = 0; i < spans.size(); ++i) EXPECT_EQ(again[i].span_id(), spans[i].span_id());
}

TEST(SpanBuilderTest, APolicyChoosesPhasesTagsAndExporters) {
  SpanBuilder builder(TracesConfig{});  // phase_spans off in the config
  meshtel::v1::RequestRecord record = Hop(meshtel::v1::REPORTER_DESTINATION);
  record.set_route_name("reviews-route");
  meshtel::v1::SpanTag* tag = record.add_custom_tags();
  tag->set_name("tier");
  tag->set_value("gold");
  absl::StatusOr<AccessLogFormat> route =
      AccessLogFormat::Compile("%ROUTE_NAME% %RESPONSE_CODE%\n", AccessLogEncoding::kText);
  ASSERT_TRUE(route.ok());
  const std::vector<std::pair<std::string, const AccessLogFormat*>> tags = {{"route", &*route}};
  const std::vector<std::string> exporters = {"tempo"};
  std::vector<Span> spans;
  ASSERT_EQ(builder.Build(
                record, spans,
                SpanOptions{.phase_spans = true, .formatter_tags = tags, .exporters = exporters}),
            7u);
  const auto tag_of = [](const Span& span, const std::string& key) {
    for (const auto& attribute : span.attributes()) {
      if (attribute.key() == key) return attribute.string_value();
    }
    return std::string("<absent>");
  };
  EXPECT_EQ(tag_of(spans[0], "tier"), "gold");
  EXPECT_EQ(tag_of(spans[0], "route"), "reviews-route " + std::to_string(record.response_code()));
  for (const Span& span : spans) {
    ASSERT_EQ(span.exporters_size(), 1);
    EXPECT_EQ(span.exporters(0), "tempo");
  }
  // Without the policy's phase spans: the hop alone, and custom_tags still there.
  spans.clear();
  ASSERT_EQ(builder.Build(record, spans), 1u);
  EXPECT_EQ(tag_of(spans[0], "tier"), "gold");
  EXPECT_EQ(tag_of(spans[0], "route"), "<absent>");
  EXPECT_EQ(spans[0].exporters_size(), 0);
}

TEST(SpanBuilderTest, PhasesNotReachedGiveNoSpan) {
  TracesConfig config;
  config.phase_spans = true;
  SpanBuilder builder(config);
  RequestRecord record = Hop(meshtel::v1::REPORTER_SOURCE);
  // No route: only the request was read.
  auto* phases = record.mutable_phases();
  const uint64_t headers_done = phases->downstream_headers_done_ns();
  phases->Clear();
  phases->set_downstream_headers_done_ns(headers_done);
  record.set_response_code(404);
  std::vector<Span> spans;
  ASSERT_EQ(builder.Build(record, spans), 2u);
  EXPECT_EQ(spans[1].name(), "proxy.read_request");
}

TEST(SpanBuilderTest, RecordsWithoutAValidTraceContextGiveNoSpan) {
  SpanBuilder builder(TracesConfig{});
  RequestRecord record = Hop(meshtel::v1::REPORTER_SOURCE);
  record.set_trace_id(std::string(16, '\0'));
  std::vector<Span> spans;
  EXPECT_EQ(builder.Build(record, spans), 0u);
  record = Hop(meshtel::v1::REPORTER_SOURCE);
  record.set_span_id("short");
  EXPECT_EQ(builder.Build(record, spans), 0u);
  EXPECT_TRUE(spans.empty());
  // A root hop has no parent.
  record = Hop(meshtel::v1::REPORTER_DESTINATION);
  record.clear_parent_span_id();
  ASSERT_EQ(builder.Build(record, spans), 1u);
  EXPECT_TRUE(spans[0].parent_span_id().empty());
}

// Summarize() must give, for every record and options, what the assembler and the sampler would
// read of the spans Build() gives: the pipeline builds spans only for kept traces from it.
TEST(SpanBuilderTest, SummariesAreThoseOfTheBuiltSpans) {
  SpanBuilder builder(TracesConfig{});
  absl::StatusOr<AccessLogFormat> code_format =
      AccessLogFormat::Compile("%RESPONSE_CODE%\n", AccessLogEncoding::kText);
  absl::StatusOr<AccessLogFormat> fixed_format =
      AccessLogFormat::Compile("503", AccessLogEncoding::kText);
  ASSERT_TRUE(code_format.ok());
  ASSERT_TRUE(fixed_format.ok());
  const std::vector<std::pair<std::string, const AccessLogFormat*>> status_tag = {
      {"http.status_code", &*fixed_format}};
  const std::vector<std::pair<std::string, const AccessLogFormat*>> other_tag = {
      {"route", &*fixed_format}, {"http.response.status_code", &*code_format}};
  std::vector<std::pair<std::string, RequestRecord>> cases;
  cases.emplace_back("server", Hop(meshtel::v1::REPORTER_DESTINATION));
  cases.emplace_back("client", Hop(meshtel::v1::REPORTER_SOURCE));
  cases.emplace_back("503", Hop(meshtel::v1::REPORTER_DESTINATION));
  cases.back().second.set_response_code(503);
  cases.emplace_back("no response", Hop(meshtel::v1::REPORTER_SOURCE));
  cases.back().second.set_response_code(0);
  cases.emplace_back("grpc error", Hop(meshtel::v1::REPORTER_SOURCE));
  cases.back().second.set_grpc_status(14);
  cases.emplace_back("grpc ok", Hop(meshtel::v1::REPORTER_SOURCE));
  cases.back().second.set_grpc_status(0);
  cases.emplace_back("custom status tag", Hop(meshtel::v1::REPORTER_DESTINATION));
  meshtel::v1::SpanTag* tag = cases.back().second.add_custom_tags();
  tag->set_name("http.status_code");
  tag->set_value("502");
  cases.emplace_back("custom tag", Hop(meshtel::v1::REPORTER_DESTINATION));
  tag = cases.back().second.add_custom_tags();
  tag->set_name("http.status_code2");
  tag->set_value("502");
  cases.emplace_back("zero parent", Hop(meshtel::v1::REPORTER_DESTINATION));
  cases.back().second.set_parent_span_id(std::string(8, '\0'));
  cases.emplace_back("no parent", Hop(meshtel::v1::REPORTER_DESTINATION));
  cases.back().second.clear_parent_span_id();
  cases.emplace_back("phases not reached", Hop(meshtel::v1::REPORTER_SOURCE));
  cases.back().second.mutable_phases()->clear_upstream_connected_ns();
  cases.back().second.mutable_phases()->clear_upstream_first_byte_ns();
  cases.emplace_back("long phases", Hop(meshtel::v1::REPORTER_SOURCE));
  cases.back().second.set_duration_ns(200'000);  // phases end after the hop: clamped, or none
  cases.emplace_back("no trace id", Hop(meshtel::v1::REPORTER_SOURCE));
  cases.back().second.clear_trace_id();
  int errors = 0;
  for (const auto& [name, record] : cases) {
    for (const bool phases : {false, true}) {
      for (const auto* formatter : {&status_tag, &other_tag}) {
        const SpanOptions options{.phase_spans = phases, .formatter_tags = *formatter};
        std::vector<Span> spans;
        std::vector<SpanSummary> summaries;
        const size_t built = builder.Build(record, spans, options);
        ASSERT_EQ(builder.Summarize(record, summaries, options), built) << name;
        ASSERT_EQ(summaries.size(), spans.size()) << name;
        for (size_t i = 0; i < spans.size(); ++i) {
          const SpanSummary expected = SummarizeSpan(spans[i]);
          EXPECT_EQ(summaries[i].span_id, expected.span_id) << name << " " << i;
          EXPECT_EQ(SpanIdBytes(summaries[i].span_id), spans[i].span_id()) << name << " " << i;
          EXPECT_EQ(summaries[i].parent_span_id, expected.parent_span_id) << name << " " << i;
          EXPECT_EQ(summaries[i].parent_span_id == 0, spans[i].parent_span_id().empty()) << name;
          EXPECT_EQ(summaries[i].start_time_unix_nano, expected.start_time_unix_nano) << name;
          EXPECT_EQ(summaries[i].end_time_unix_nano, expected.end_time_unix_nano) << name;
          EXPECT_EQ(summaries[i].error, expected.error) << name << " " << i;
          errors += expected.error ? 1 : 0;
        }
      }
    }
    EXPECT_EQ(builder.ServiceName(record), [&] {
      std::vector<Span> spans;
      return builder.Build(record, spans) > 0 ? spans[0].service_name()
                                              : builder.ServiceName(record);
    }()) << name;
  }
  // Errors came from the record, custom tags and formatter tags; not every span is one.
  EXPECT_GT(errors, 0);
}

// Encode() writes the bytes protobuf's serializer writes for the spans (fields in number order,
// proto3 defaults left out), with the ids SerializedSpans keys them by.
TEST(SpanBuilderTest, EncodedSpansAreWhatProtobufWrites) {
  SpanBuilder builder(TracesConfig{});
  absl::StatusOr<AccessLogFormat> route =
      AccessLogFormat::Compile("%ROUTE_NAME%", AccessLogEncoding::kText);
  ASSERT_TRUE(route.ok());
  const std::vector<std::pair<std::string, const AccessLogFormat*>> formatter = {{"route", &*route},
                                                                                 {"", &*route}};
  const std::vector<std::string> exporters = {"tempo", "jaeger"};
  std::vector<std::pair<std::string, RequestRecord>> cases;
  cases.emplace_back("server", Hop(meshtel::v1::REPORTER_DESTINATION));
  cases.emplace_back("client", Hop(meshtel::v1::REPORTER_SOURCE));
  cases.emplace_back("503, no parent", Hop(meshtel::v1::REPORTER_DESTINATION));
  cases.back().second.set_response_code(503);
  cases.back().second.clear_parent_span_id();
  cases.emplace_back("no response, flags", Hop(meshtel::v1::REPORTER_SOURCE));
  cases.back().second.set_response_code(0);
  cases.back().second.set_response_flags(0b1011);
  cases.emplace_back("grpc error, unsampled", Hop(meshtel::v1::REPORTER_SOURCE));
  cases.back().second.set_grpc_status(14);
  cases.back().second.set_sampled(false);
  cases.emplace_back("empty fields", Hop(meshtel::v1::REPORTER_DESTINATION));
  RequestRecord& empty = cases.back().second;
  empty.clear_method();
  empty.clear_scheme();
  empty.clear_authority();
  empty.clear_path();
  empty.clear_protocol();
  empty.clear_user_agent();
  empty.clear_request_id();
  empty.clear_upstream_host();
  empty.clear_upstream_cluster();
  empty.clear_downstream_remote_address();
  empty.clear_destination();
  empty.clear_destination_service();
  empty.set_start_time_unix_nano(0);
  empty.set_duration_ns(0);
  cases.emplace_back("long and odd values", Hop(meshtel::v1::REPORTER_DESTINATION));
  RequestRecord& odd = cases.back().second;
  odd.set_path("/" + std::string(400, 'p'));
  odd.set_user_agent(std::string(200, 'u'));
  odd.set_authority("[::1]:9090");
  odd.set_request_bytes(~uint64_t{0});
  meshtel::v1::SpanTag* tag = odd.add_custom_tags();
  tag->set_name("");
  tag->set_value("");
  tag = odd.add_custom_tags();
  tag->set_name("tier");
  tag->set_value(std::string(300, 't'));
  cases.emplace_back("no trace id", Hop(meshtel::v1::REPORTER_SOURCE));
  cases.back().second.clear_trace_id();
  size_t spans_checked = 0;
  for (const auto& [name, record] : cases) {
    for (const bool phases : {false, true}) {
      for (const bool policy : {false, true}) {
        SpanOptions options{.phase_spans = phases};
        if (policy) {
          options.formatter_tags = formatter;
          options.exporters = exporters;
        }
        SerializedSpans encoded;
        encoded.Begin("x", "y").append("a span before");  // Encode appends after what is there
        const size_t count = builder.Encode(record, options, SpanMarks{}, encoded);
        ASSERT_EQ(encoded.size(), count + 1) << name;
        std::vector<SpanSummary> summaries;
        ASSERT_EQ(builder.Summarize(record, summaries, options), count) << name;
        for (size_t i = 0; i < count; ++i) {
          const std::string_view bytes = encoded.bytes(i + 1);
          Span span;
          ASSERT_TRUE(span.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) << name;
          EXPECT_EQ(span.SerializeAsString(), bytes) << name << " span " << i;
          EXPECT_EQ(encoded.trace_id(i + 1), span.trace_id()) << name;
          EXPECT_EQ(encoded.span_id(i + 1), span.span_id()) << name;
          EXPECT_EQ(SpanIdValue(span.span_id()), summaries[i].span_id) << name;
          ++spans_checked;
        }
      }
    }
  }
  // Six records with every phase, one (no times) with the first phase only, one without spans.
  EXPECT_EQ(spans_checked, 6u * (1 + 1 + 7 + 7) + (1 + 1 + 2 + 2));
}

// The assembler's marks (times, anomalies, fits) are written into the spans as the pipeline
// stores them.
TEST(SpanBuilderTest, EncodeAppliesTheAssemblersMarks) {
  TracesConfig config;
  config.phase_spans = true;
  SpanBuilder builder(config);
  const RequestRecord record = Hop(meshtel::v1::REPORTER_SOURCE);
  std::vector<SpanSummary> summaries;
  ASSERT_EQ(builder.Summarize(record, summaries), 7u);
  summaries[0].anomalies = 1u << meshtel::v1::SPAN_ANOMALY_ORPHAN;
  summaries[3].start_time_unix_nano += 5;
  summaries[3].end_time_unix_nano -= 7;
  summaries[3].anomalies = 1u << meshtel::v1::SPAN_ANOMALY_DUPLICATE_SPAN_ID;
  // The record's spans are summaries 10..16 of their trace; fits of other spans do not apply.
  const std::vector<SpanFit> fits = {{.span = 13, .trimmed_ns = 12},
                                     {.span = 2, .trimmed_ns = 99},
                                     {.span = 10, .trimmed_ns = 34},
                                     {.span = 17, .trimmed_ns = 56}};
  SerializedSpans encoded;
  ASSERT_EQ(
      builder.Encode(record, SpanOptions{.phase_spans = true},
                     SpanMarks{.summaries = summaries, .fits = fits, .first_summary = 10}, encoded),
      7u);
  std::vector<Span> built;
  ASSERT_EQ(builder.Build(record, built), 7u);
  for (size_t i = 0; i < 7; ++i) {
    Span span;
    const std::string_view bytes = encoded.bytes(i);
    ASSERT_TRUE(span.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())));
    EXPECT_EQ(span.SerializeAsString(), bytes) << i;
    EXPECT_EQ(span.start_time_unix_nano(), summaries[i].start_time_unix_nano) << i;
    EXPECT_EQ(span.end_time_unix_nano(), summaries[i].end_time_unix_nano) << i;
    EXPECT_EQ(span.anomalies(), summaries[i].anomalies) << i;
    // Otherwise the span Build() gives, with the fit's attribute last.
    Span expected = built[i];
    expected.set_start_time_unix_nano(summaries[i].start_time_unix_nano);
    expected.set_end_time_unix_nano(summaries[i].end_time_unix_nano);
    expected.set_anomalies(summaries[i].anomalies);
    if (i == 0 || i == 3) {
      meshtel::v1::SpanAttribute* fitted = expected.add_attributes();
      fitted->set_key(std::string(kFittedToParentAttribute));
      fitted->set_int_value(i == 0 ? 34 : 12);
    }
    EXPECT_EQ(span.SerializeAsString(), expected.SerializeAsString()) << i;
  }
}

// Encoding a view of the record's stored bytes (record_view.h) gives the spans encoding the parsed
// record gives, byte for byte, with and without phase spans, exporters and the assembler's marks.
TEST(SpanBuilderTest, AViewOfTheStoredBytesEncodesTheSameSpans) {
  TracesConfig config;
  config.service_name = TraceServiceName::kCanonicalNameAndNamespace;
  config.mesh_id = "mesh-a";
  SpanBuilder builder(config);
  std::vector<RequestRecord> records = {Hop(meshtel::v1::REPORTER_DESTINATION),
                                        Hop(meshtel::v1::REPORTER_SOURCE)};
  records.push_back(Hop(meshtel::v1::REPORTER_SOURCE));
  records.back().set_grpc_status(14);
  records.back().set_response_flags(0b1011);
  records.back().set_authority("[::1]");
  records.back().set_upstream_local_address("10.0.0.5:51000");
  for (const char* name : {"tier", "", "http.status_code"}) {
    meshtel::v1::SpanTag* tag = records.back().add_custom_tags();
    tag->set_name(name);
    tag->set_value("503");
  }
  records.push_back(Hop(meshtel::v1::REPORTER_DESTINATION));
  records.back().set_response_code(0);
  records.back().clear_parent_span_id();
  records.back().clear_source();
  records.back().clear_destination();
  records.back().clear_destination_service();
  records.back().clear_scheme();
  records.back().set_path(std::string(300, 'p'));
  records.back().mutable_phases()->clear_route_chosen_ns();
  records.push_back(Hop(meshtel::v1::REPORTER_DESTINATION));
  records.back().clear_span_id();  // no spans either way
  const std::vector<std::string> exporters = {"tempo"};
  const std::vector<SpanFit> fits = {{.span = 1, .trimmed_ns = 5}, {.span = 3, .trimmed_ns = 8}};
  size_t spans_compared = 0;
  for (const RequestRecord& record : records) {
    const std::string bytes = record.SerializeAsString();
    RecordView view;
    ASSERT_TRUE(view.Read(bytes));
    EXPECT_EQ(builder.ServiceName(view), builder.ServiceName(record));
    for (const bool phases : {false, true}) {
      SpanOptions options{.phase_spans = phases};
      std::vector<SpanSummary> summaries;
      const size_t count = builder.Summarize(record, summaries, options);
      for (SpanSummary& summary : summaries) {
        summary.start_time_unix_nano += 3;
        summary.anomalies = 1u << meshtel::v1::SPAN_ANOMALY_ORPHAN;
      }
      for (const bool marked : {false, true}) {
        for (const bool with_exporters : {false, true}) {
          options.exporters = with_exporters ? std::span<const std::string>(exporters)
                                             : std::span<const std::string>();
          const SpanMarks marks =
              marked ? SpanMarks{.summaries = summaries, .fits = fits} : SpanMarks{};
          SerializedSpans from_record;
          SerializedSpans from_view;
          ASSERT_EQ(builder.Encode(record, options, marks, from_record), count);
          ASSERT_EQ(builder.Encode(view, options, marks, from_view), count);
          for (size_t i = 0; i < count; ++i) {
            EXPECT_EQ(from_view.bytes(i), from_record.bytes(i)) << i;
            EXPECT_EQ(from_view.trace_id(i), from_record.trace_id(i));
            EXPECT_EQ(from_view.span_id(i), from_record.span_id(i));
            ++spans_compared;
          }
        }
      }
    }
  }
  // Four records with spans, each encoded 4 ways: three with every phase (a hop and 6 phase
  // spans), one without the route's time (no route, no upstream_connect: a hop and 4).
  EXPECT_EQ(spans_compared, 3u * 4 * (1 + 7) + 4u * (1 + 5));

  // Formatter tags are rendered from a RequestRecord: a view builds nothing with them.
  absl::StatusOr<AccessLogFormat> route =
      AccessLogFormat::Compile("%ROUTE_NAME%", AccessLogEncoding::kText);
  ASSERT_TRUE(route.ok());
  const std::vector<std::pair<std::string, const AccessLogFormat*>> formatter = {
      {"route", &*route}};
  RecordView view;
  ASSERT_TRUE(view.Read(records[0].SerializeAsString()));
  SerializedSpans none;
  EXPECT_EQ(builder.Encode(view, SpanOptions{.formatter_tags = formatter}, SpanMarks{}, none), 0u);
  EXPECT_EQ(none.size(), 0u);
}

TEST(SpanSummaryTest, ErrorsAreStatusErrorOrAnHttpStatusOf500OrMore) {
  Span span;
  span.set_span_id(std::string("\x01\x02\x03\x04\x05\x06\x07\x08", 8));
  EXPECT_EQ(SummarizeSpan(span).span_id, 0x0102030405060708u);
  EXPECT_EQ(SpanIdBytes(0x0102030405060708u), span.span_id());
  EXPECT_FALSE(IsErrorSpan(span));
  meshtel::v1::SpanAttribute* status = span.add_attributes();
  status->set_key("http.status_code");
  status->set_string_value("499");
  EXPECT_FALSE(IsErrorSpan(span));
  status->set_string_value("500");
  EXPECT_TRUE(IsErrorSpan(span));
  status->set_key("http.response.status_code");
  status->set_int_value(502);
  EXPECT_TRUE(SummarizeSpan(span).error);
  status->set_key("status");
  EXPECT_FALSE(IsErrorSpan(span));
  span.set_status_code(meshtel::v1::SPAN_STATUS_CODE_ERROR);
  EXPECT_TRUE(IsErrorSpan(span));
  // A parent id that is no span id reads as none.
  span.set_parent_span_id(std::string(8, '\0'));
  EXPECT_EQ(SummarizeSpan(span).parent_span_id, 0u);
  span.set_parent_span_id("short");
  EXPECT_EQ(SummarizeSpan(span).parent_span_id, 0u);
}

}  // namespace
}  // namespace meshtel::collector
