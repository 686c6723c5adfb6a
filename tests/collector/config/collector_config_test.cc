#include "collector/config/collector_config.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "yaml-cpp/yaml.h"

namespace meshtel::collector {
namespace {

const std::string kTestdata = std::string(MESHTEL_SOURCE_DIR) + "/tests/collector/config/testdata/";

TEST(CollectorConfigTest, EmptyFileMeansDefaults) {
  absl::StatusOr<CollectorConfig> config = ParseCollectorConfig(YAML::Load(""));
  ASSERT_TRUE(config.ok()) << config.status();
  const CollectorConfig defaults;
  EXPECT_EQ(config->log_level, "info");
  EXPECT_EQ(config->shutdown_grace, absl::Seconds(5));
  EXPECT_EQ(config->ingest.listen, (common::HostPort{"0.0.0.0", 15140}));
  EXPECT_EQ(config->ingest.max_batch_bytes, 4u << 20);
  EXPECT_FALSE(config->ingest.als.enabled);
  EXPECT_EQ(config->ingest.als.listen, (common::HostPort{"0.0.0.0", 15142}));
  EXPECT_EQ(config->ingest.als.max_message_bytes, 4u << 20);
  EXPECT_EQ(config->admin.listen, (common::HostPort{"0.0.0.0", 15141}));
  EXPECT_EQ(config->store.data_dir, "./meshtel-data");
  EXPECT_EQ(config->store.data_dir, defaults.store.data_dir);
  EXPECT_EQ(config->metrics.max_series_per_metric, 10000u);
  EXPECT_EQ(config->metrics.series_idle_timeout, absl::Minutes(10));
  EXPECT_EQ(config->metrics.max_series_per_metric, defaults.metrics.max_series_per_metric);
}

TEST(CollectorConfigTest, NoPathMeansDefaults) {
  absl::StatusOr<CollectorConfig> config = LoadCollectorConfig("");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->ingest.listen.port, 15140);
}

TEST(CollectorConfigTest, EveryKeyDecodes) {
  absl::StatusOr<CollectorConfig> config = LoadCollectorConfig(kTestdata + "valid.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->log_level, "debug");
  EXPECT_EQ(config->shutdown_grace, absl::Seconds(2));
  EXPECT_EQ(config->ingest.listen, (common::HostPort{"127.0.0.1", 7000}));
  EXPECT_EQ(config->ingest.max_batch_bytes, 1048576u);
  EXPECT_TRUE(config->ingest.als.enabled);
  EXPECT_EQ(config->ingest.als.listen, (common::HostPort{"127.0.0.1", 7002}));
  EXPECT_EQ(config->ingest.als.max_message_bytes, 65536u);
  EXPECT_EQ(config->admin.listen, (common::HostPort{"::1", 7001}));
  EXPECT_EQ(config->store.data_dir, "/var/lib/meshtel");
  EXPECT_EQ(config->metrics.max_series_per_metric, 500u);
  EXPECT_EQ(config->metrics.series_idle_timeout, absl::Seconds(90));
}

TEST(CollectorConfigTest, ZeroIdleTimeoutKeepsSeries) {
  absl::StatusOr<CollectorConfig> config =
      ParseCollectorConfig(YAML::Load("metrics: {series_idle_timeout: 0}"));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->metrics.series_idle_timeout, absl::ZeroDuration());
}

TEST(CollectorConfigTest, AccessLogDefaultsToIstioText) {
  absl::StatusOr<CollectorConfig> config = ParseCollectorConfig(YAML::Load("access_log:"));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->access_log.encoding, AccessLogEncoding::kText);
  EXPECT_EQ(config->access_log.format, "");
  EXPECT_TRUE(config->access_log.json_format.empty());
  absl::StatusOr<AccessLogFormat> format = config->access_log.Compile();
  ASSERT_TRUE(format.ok()) << format.status();
  meshtel::v1::RequestRecord record;
  record.set_method("GET");
  std::string line;
  format->Render(record, line);
  EXPECT_EQ(line,
            "[-] \"GET - -\" 0 - - - \"-\" 0 0 0 - \"-\" \"-\" \"-\" \"-\" \"-\" - - - - - -\n");
}

TEST(CollectorConfigTest, AccessLogKeysDecode) {
  absl::StatusOr<CollectorConfig> text = ParseCollectorConfig(
      YAML::Load("access_log: {encoding: TEXT, format: \"%REQ(:METHOD)% %RESPONSE_CODE%\\n\"}"));
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(text->access_log.format, "%REQ(:METHOD)% %RESPONSE_CODE%\n");

  absl::StatusOr<CollectorConfig> json = ParseCollectorConfig(
      YAML::Load("access_log:\n  encoding: JSON\n  json_format:\n    method: \"%REQ(:METHOD)%\"\n"
                 "    code: \"%RESPONSE_CODE%\"\n"));
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_EQ(json->access_log.encoding, AccessLogEncoding::kJson);
  const std::vector<AccessLogJsonField> expected = {{"method", "%REQ(:METHOD)%"},
                                                    {"code", "%RESPONSE_CODE%"}};
  EXPECT_EQ(json->access_log.json_format, expected);
  absl::StatusOr<AccessLogFormat> format = json->access_log.Compile();
  ASSERT_TRUE(format.ok()) << format.status();
  meshtel::v1::RequestRecord record;
  record.set_method("PUT");
  record.set_response_code(201);
  std::string line;
  format->Render(record, line);
  EXPECT_EQ(line, "{\"code\":201,\"method\":\"PUT\"}\n");

  absl::StatusOr<CollectorConfig> json_default =
      ParseCollectorConfig(YAML::Load("access_log: {encoding: JSON}"));
  ASSERT_TRUE(json_default.ok()) << json_default.status();
  EXPECT_TRUE(json_default->access_log.Compile().ok());
}

TEST(CollectorConfigTest, MissingFileIsAnError) {
  absl::StatusOr<CollectorConfig> config = LoadCollectorConfig(kTestdata + "no-such-file.yaml");
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("no-such-file.yaml"), absl::string_view::npos);
}

TEST(CollectorConfigTest, BrokenYamlNamesTheFile) {
  const std::string path = ::testing::TempDir() + "/broken.yaml";
  FILE* file = fopen(path.c_str(), "w");
  fputs("ingest: {listen: [\n", file);
  fclose(file);
  absl::StatusOr<CollectorConfig> config = LoadCollectorConfig(path);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(config.status().message().find("broken.yaml"), absl::string_view::npos);
}

TEST(CollectorConfigTest, ReadsTheOtlpReceiver) {
  const CollectorConfig defaults;
  EXPECT_FALSE(defaults.ingest.otlp.enabled);
  EXPECT_EQ(defaults.ingest.otlp.grpc_listen, (common::HostPort{"0.0.0.0", 4317}));
  EXPECT_EQ(defaults.ingest.otlp.http_listen, (common::HostPort{"0.0.0.0", 4318}));
  EXPECT_EQ(defaults.ingest.otlp.max_request_bytes, 64u << 20);
  absl::StatusOr<CollectorConfig> config = ParseCollectorConfig(
      YAML::Load("ingest: {otlp: {enabled: true, grpc_listen: '127.0.0.1:14317', "
                 "http_listen: '[::1]:14318', max_request_bytes: 1048576}}"));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(config->ingest.otlp.enabled);
  EXPECT_EQ(config->ingest.otlp.grpc_listen, (common::HostPort{"127.0.0.1", 14317}));
  EXPECT_EQ(config->ingest.otlp.http_listen, (common::HostPort{"::1", 14318}));
  EXPECT_EQ(config->ingest.otlp.max_request_bytes, 1048576u);
}

TEST(CollectorConfigTest, ReadsThePolicyBlock) {
  const CollectorConfig defaults;
  EXPECT_EQ(defaults.policy.file, "");
  EXPECT_EQ(defaults.policy.watch_interval, absl::Seconds(1));
  absl::StatusOr<CollectorConfig> config = ParseCollectorConfig(
      YAML::Load("policy: {file: /etc/meshtel/policy.yaml, watch_interval: 0s}"));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->policy.file, "/etc/meshtel/policy.yaml");
  EXPECT_EQ(config->policy.watch_interval, absl::ZeroDuration());
}

TEST(CollectorConfigTest, EachInvalidCaseNamesItsField) {
  const YAML::Node cases = YAML::LoadFile(kTestdata + "invalid_configs.yaml");
  ASSERT_GT(cases.size(), 10u);
  for (const YAML::Node& test_case : cases) {
    const std::string name = test_case["name"].as<std::string>();
    const std::string expected = test_case["error"].as<std::string>();
    absl::StatusOr<CollectorConfig> config = ParseCollectorConfig(test_case["config"]);
    ASSERT_FALSE(config.ok()) << name << " was accepted";
    EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument) << name;
    EXPECT_NE(std::string(config.status().message()).find(expected), std::string::npos)
        << name << ": got '" << config.status().message() << "', want '" << expected << "'";
  }
}

}  // namespace
}  // namespace meshtel::collector
