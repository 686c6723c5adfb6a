#include "exporters/exporter_registry.h"

#include <string>

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
