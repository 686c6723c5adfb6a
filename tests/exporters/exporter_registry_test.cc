#include "exporters/exporter_registry.h"

#include <string>

#include "collector/policy/span_routing.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"

namespace meshtel::exporters {
namespace {

absl::StatusOr<collector::CollectorConfig> Parse(const std::string& yaml) {
  return collector::ParseCollectorConfig(YAML::Load(yaml));
}

TEST(ExporterRegistryTest, BuildsEachConfiguredExporterByItsType) {
  auto config = Parse(
      "exporters:\n"
      "  - {name: loki-main, type: loki, loki: {url: \"http://127.0.0.1:3100/loki/api/v1/push\"}}\n"
      "  - {name: loki-spans, type: loki, family: spans,\n"
      "     loki: {url: \"http://127.0.0.1:3100/loki/api/v1/push\"}}\n"
      "  - {name: fluentd-main, type: fluentd, fluentd: {address: \"127.0.0.1:24224\"}}\n"
      "  - {name: jaeger, type: jaeger, jaeger: {endpoint: \"127.0.0.1:14250\"}}\n"
      "  - {name: tempo, type: otlp, otlp: {protocol: grpc, endpoint: \"127.0.0.1:4317\"}}\n");
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_TRUE(ValidateExporters(*config).ok());
  auto format = config->access_log.Compile();
  ASSERT_TRUE(format.ok());
  prometheus::Registry registry;
  auto logs = BuildExporter(config->exporters[0], *format, registry);
  ASSERT_TRUE(logs.ok()) << logs.status();
  EXPECT_EQ(logs->name, "loki-main");
  EXPECT_EQ(logs->type, "loki");
  EXPECT_EQ(logs->family, collector::RecordFamily::kLogs);
  EXPECT_NE(logs->encoder, nullptr);
  EXPECT_NE(logs->sender, nullptr);
  auto spans = BuildExporter(config->exporters[1], *format, registry);
  ASSERT_TRUE(spans.ok()) << spans.status();
  EXPECT_EQ(spans->family, collector::RecordFamily::kSpans);
  auto fluentd = BuildExporter(config->exporters[2], *format, registry);
  ASSERT_TRUE(fluentd.ok()) << fluentd.status();
  EXPECT_EQ(fluentd->type, "fluentd");
  auto jaeger = BuildExporter(config->exporters[3], *format, registry);
  ASSERT_TRUE(jaeger.ok()) << jaeger.status();
  EXPECT_EQ(jaeger->type, "jaeger");
  EXPECT_EQ(jaeger->family, collector::RecordFamily::kSpans);
  auto otlp = BuildExporter(config->exporters[4], *format, registry);
  ASSERT_TRUE(otlp.ok()) << otlp.status();
  EXPECT_EQ(otlp->type, "otlp");
  EXPECT_EQ(otlp->family, collector::RecordFamily::kSpans);
}

// Span exporters deliver only the spans the telemetry policy routed to them (Span.exporters);
// spans without routes go to every one; log exporters are left as they are.
TEST(ExporterRegistryTest, RoutedSpanExportersDeliverOnlyTheirSpans) {
  auto config = Parse(
      "exporters:\n"
      "  - {name: jaeger, type: jaeger, jaeger: {endpoint: \"127.0.0.1:14250\"}}\n"
      "  - {name: tempo, type: otlp, otlp: {protocol: grpc, endpoint: \"127.0.0.1:4317\"}}\n"
      "  - {name: loki-main, type: loki, loki: {url: "
      "\"http://127.0.0.1:3100/loki/api/v1/push\"}}\n");
  ASSERT_TRUE(config.ok()) << config.status();
  auto format = config->access_log.Compile();
  ASSERT_TRUE(format.ok());
  prometheus::Registry registry;
  auto jaeger = BuildExporter(config->exporters[0], *format, registry);
  auto tempo = BuildExporter(config->exporters[1], *format, registry);
  auto loki = BuildExporter(config->exporters[2], *format, registry);
  ASSERT_TRUE(jaeger.ok() && tempo.ok() && loki.ok());
  collector::Encoder* const loki_encoder = loki->encoder.get();
  const collector::Exporter routed_jaeger = collector::RouteSpans(*std::move(jaeger));
  const collector::Exporter routed_tempo = collector::RouteSpans(*std::move(tempo));
  const collector::Exporter routed_loki = collector::RouteSpans(*std::move(loki));
  EXPECT_EQ(routed_loki.encoder.get(), loki_encoder);  // not a span exporter: unchanged

  collector::StoredRecord to_tempo;
  to_tempo.family = collector::RecordFamily::kSpans;
  to_tempo.span.set_trace_id(std::string(16, 'a'));
  to_tempo.span.set_span_id(std::string(8, 'b'));
  to_tempo.span.set_name("x");
  to_tempo.span.add_exporters("tempo");
  collector::StoredRecord everywhere = to_tempo;
  everywhere.span.clear_exporters();
  EXPECT_FALSE(routed_jaeger.encoder->Delivers(to_tempo));
  EXPECT_TRUE(routed_tempo.encoder->Delivers(to_tempo));
  EXPECT_TRUE(routed_jaeger.encoder->Delivers(everywhere));
  EXPECT_TRUE(routed_tempo.encoder->Delivers(everywhere));
  const std::vector<collector::StoredRecord> batch = {to_tempo};
  EXPECT_TRUE(routed_tempo.encoder->Measure(to_tempo).ok());
  EXPECT_TRUE(routed_tempo.encoder->Encode(batch).ok());
}

TEST(ExporterRegistryTest, ABadSettingIsNamedByItsPath) {
  auto config = Parse(
      "exporters:\n"
      "  - {name: ok, type: loki, loki: {url: \"http://127.0.0.1:3100/loki/api/v1/push\"}}\n"
      "  - {name: broken, type: loki, loki: {tenant_id: shop}}\n");
  ASSERT_TRUE(config.ok()) << config.status();
  const absl::Status status = ValidateExporters(*config);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(status.message()).find("exporters[1].loki.url"), std::string::npos)
      << status;
}

TEST(ExporterRegistryTest, ATraceExporterSettingIsNamedByItsPath) {
  auto config = Parse(
      "exporters:\n"
      "  - {name: tempo, type: otlp, otlp: {protocol: xyz, endpoint: \"127.0.0.1:4317\"}}\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(ValidateExporters(*config).message(),
            "exporters[0].otlp.protocol: 'xyz' is not grpc or http/protobuf");
}

TEST(ExporterRegistryTest, AnUnknownTypeIsRefusedWhenTheConfigLoads) {
  auto config = Parse("exporters:\n  - {name: x, type: kafka}\n");
  ASSERT_FALSE(config.ok());
  EXPECT_NE(std::string(config.status().message()).find("exporters[0].type: 'kafka'"),
            std::string::npos)
      << config.status();
}

}  // namespace
}  // namespace meshtel::exporters
