#include "exporters/exporter_registry.h"

#include <string>

#include "gtest/gtest.h"

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
      "  - {name: fluentd-main, type: fluentd, fluentd: {address: \"127.0.0.1:24224\"}}\n");
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_TRUE(ValidateExporters(*config).ok());
  auto format = config->access_log.Compile();
  ASSERT_TRUE(format.ok());
  auto logs = BuildExporter(config->exporters[0], *format);
  ASSERT_TRUE(logs.ok()) << logs.status();
  EXPECT_EQ(logs->name, "loki-main");
  EXPECT_EQ(logs->type, "loki");
  EXPECT_EQ(logs->family, collector::RecordFamily::kLogs);
  EXPECT_NE(logs->encoder, nullptr);
  EXPECT_NE(logs->sender, nullptr);
  auto spans = BuildExporter(config->exporters[1], *format);
  ASSERT_TRUE(spans.ok()) << spans.status();
  EXPECT_EQ(spans->family, collector::RecordFamily::kSpans);
  auto fluentd = BuildExporter(config->exporters[2], *format);
  ASSERT_TRUE(fluentd.ok()) << fluentd.status();
  EXPECT_EQ(fluentd->type, "fluentd");
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

TEST(ExporterRegistryTest, AnUnknownTypeIsRefusedWhenTheConfigLoads) {
  auto config = Parse("exporters:\n  - {name: x, type: kafka}\n");
  ASSERT_FALSE(config.ok());
  EXPECT_NE(std::string(config.status().message()).find("exporters[0].type: 'kafka'"),
            std::string::npos)
      << config.status();
}

}  // namespace
}  // namespace meshtel::exporters
