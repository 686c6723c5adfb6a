#include "collector/logs/access_log_config.h"

#include <string>

#include "gtest/gtest.h"
#include "yaml-cpp/yaml.h"

namespace meshtel::collector {
namespace {

absl::Status Read(const std::string& yaml, AccessLogConfig& config) {
  common::YamlMap map(YAML::Load(yaml), "proxy_log");
  ReadAccessLogFormat(map, config);
  absl::Status status = map.Finish();
  if (!status.ok()) return status;
  return config.Validate("proxy_log");
}

TEST(AccessLogConfigTest, ReadsTheThreeKeys) {
  AccessLogConfig config;
  ASSERT_TRUE(Read("{encoding: TEXT, format: \"%REQ(:METHOD)%\\n\"}", config).ok());
  EXPECT_EQ(config.encoding, AccessLogEncoding::kText);
  EXPECT_EQ(config.format, "%REQ(:METHOD)%\n");

  AccessLogConfig json;
  ASSERT_TRUE(Read("{encoding: JSON, json_format: {m: \"%REQ(:METHOD)%\"}}", json).ok());
  EXPECT_EQ(json.encoding, AccessLogEncoding::kJson);
  ASSERT_EQ(json.json_format.size(), 1u);
  EXPECT_EQ(json.json_format[0].first, "m");
}

TEST(AccessLogConfigTest, ErrorsNameTheFieldUnderTheGivenPath) {
  AccessLogConfig unknown;
  absl::Status status = Read("{format: \"%FOO%\"}", unknown);
  EXPECT_EQ(status.message(), "proxy_log.format: unknown operator %FOO% at offset 0");

  AccessLogConfig bad_encoding;
  status = Read("{encoding: XML}", bad_encoding);
  EXPECT_EQ(status.message(), "proxy_log.encoding: 'XML' is not TEXT or JSON");

  AccessLogConfig json_key;
  status = Read("{encoding: JSON, json_format: {s: \"%BAR%\"}}", json_key);
  EXPECT_EQ(status.message(), "proxy_log.json_format.s: unknown operator %BAR% at offset 0");

  AccessLogConfig mixed;
  status = Read("{encoding: JSON, format: \"%DURATION%\"}", mixed);
  EXPECT_EQ(status.message(),
            "proxy_log.format: only with encoding TEXT (JSON takes proxy_log.json_format)");

  AccessLogConfig json_in_text;
  status = Read("{json_format: {d: \"%DURATION%\"}}", json_in_text);
  EXPECT_EQ(status.message(), "proxy_log.json_format: only with encoding JSON");
}

}  // namespace
}  // namespace meshtel::collector
