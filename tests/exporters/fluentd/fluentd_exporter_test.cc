#include "exporters/fluentd/fluentd_exporter.h"

#include <string>

#include "collector/config/collector_config.h"
#include "gtest/gtest.h"
#include "tests/support/fluentd_receiver.h"
#include "yaml-cpp/yaml.h"

namespace meshtel::exporters::fluentd {
namespace {

constexpr char kPath[] = "exporters[0].fluentd";

absl::StatusOr<FluentdConfig> Parse(const std::string& yaml) {
  return ParseFluentdConfig(YAML::Load(yaml), kPath);
}

std::string ErrorOf(const std::string& yaml) {
  absl::StatusOr<FluentdConfig> config = Parse(yaml);
  EXPECT_FALSE(config.ok()) << yaml;
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(config.status().message());
}

collector::AccessLogFormat DefaultFormat() {
  return *collector::AccessLogFormat::Compile("", collector::AccessLogEncoding::kText);
}

TEST(FluentdConfigTest, Defaults) {
  absl::StatusOr<FluentdConfig> config = Parse("address: fluentd.logging");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->address, (common::HostPort{"fluentd.logging", 24224}));
  EXPECT_EQ(config->tag, "meshtel.access");
  EXPECT_EQ(config->received_log_tag, "meshtel.log");
  EXPECT_EQ(config->compression, FluentdCompression::kNone);
  EXPECT_TRUE(config->require_ack);
  EXPECT_EQ(config->timeout, absl::Seconds(10));
  EXPECT_EQ(config->shared_key, "");
  EXPECT_EQ(config->self_hostname, "");
  EXPECT_EQ(config->record_format, FluentdRecordFormat::kFields);
  EXPECT_EQ(config->line_key, "message");
}

TEST(FluentdConfigTest, AddressForms) {
  EXPECT_EQ(Parse("address: 10.0.0.1:24225")->address, (common::HostPort{"10.0.0.1", 24225}));
  EXPECT_EQ(Parse("address: '[::1]'")->address, (common::HostPort{"::1", 24224}));
  EXPECT_EQ(Parse("address: '[::1]:7000'")->address, (common::HostPort{"::1", 7000}));
}

TEST(FluentdConfigTest, EveryKeyDecodes) {
  absl::StatusOr<FluentdConfig> config = Parse(R"(
address: 127.0.0.1:24230
tag: mesh.logs
received_log_tag: app.logs
compression: gzip
require_ack: false
timeout: 2500ms
shared_key: k
self_hostname: collector-1
username: u
password: p
record_format: line
line_key: log
)");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->received_log_tag, "app.logs");
  EXPECT_EQ(config->address, (common::HostPort{"127.0.0.1", 24230}));
  EXPECT_EQ(config->tag, "mesh.logs");
  EXPECT_EQ(config->compression, FluentdCompression::kGzip);
  EXPECT_FALSE(config->require_ack);
  EXPECT_EQ(config->timeout, absl::Milliseconds(2500));
  EXPECT_EQ(config->shared_key, "k");
  EXPECT_EQ(config->self_hostname, "collector-1");
  EXPECT_EQ(config->username, "u");
  EXPECT_EQ(config->password, "p");
  EXPECT_EQ(config->record_format, FluentdRecordFormat::kLine);
  EXPECT_EQ(config->line_key, "log");
}

TEST(FluentdConfigTest, SharedKeyWithoutHostnameTakesTheMachineName) {
  absl::StatusOr<FluentdConfig> config = Parse("{address: 127.0.0.1, shared_key: k}");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_FALSE(config->self_hostname.empty());
}

TEST(FluentdConfigTest, ErrorsNameThePath) {
  EXPECT_EQ(ErrorOf(""), "exporters[0].fluentd.address: required (host:port of the forward input)");
  EXPECT_EQ(ErrorOf("{address: 127.0.0.1, compresion: gzip}"),
            "exporters[0].fluentd.compresion: unknown key");
  EXPECT_EQ(ErrorOf("address: 'a:b:c'").rfind("exporters[0].fluentd.address: 'a:b:c'", 0), 0u);
  EXPECT_EQ(ErrorOf("address: 127.0.0.1:0"),
            "exporters[0].fluentd.address: '127.0.0.1:0': port 0 is not a destination port");
  EXPECT_EQ(ErrorOf("{address: h, compression: zstd}"),
            "exporters[0].fluentd.compression: 'zstd' is not none or gzip");
  EXPECT_EQ(ErrorOf("{address: h, record_format: json}"),
            "exporters[0].fluentd.record_format: 'json' is not fields or line");
  EXPECT_EQ(ErrorOf("{address: h, timeout: soon}"),
            "exporters[0].fluentd.timeout: 'soon' is not a duration such as 200ms, 15s or 1m");
  EXPECT_EQ(ErrorOf("{address: h, timeout: 0s}"),
            "exporters[0].fluentd.timeout: '0' must be more than 0");
  EXPECT_EQ(ErrorOf("{address: h, require_ack: yes}").rfind("exporters[0].fluentd.require_ack:", 0),
            0u);
  EXPECT_EQ(ErrorOf("{address: h, tag: ''}"), "exporters[0].fluentd.tag: must not be empty");
  EXPECT_EQ(ErrorOf("{address: h, received_log_tag: ''}"),
            "exporters[0].fluentd.received_log_tag: must not be empty");
  EXPECT_EQ(ErrorOf("{address: h, username: u, password: p}"),
            "exporters[0].fluentd.username: only used with shared_key (the handshake)");
  EXPECT_EQ(ErrorOf("{address: h, shared_key: k, username: u}"),
            "exporters[0].fluentd.password: username and password go together");
  EXPECT_EQ(ErrorOf("[1, 2]"), "exporters[0].fluentd: must be a mapping of keys to values");
}

TEST(FluentdExporterTest, BuildsFromTheCollectorConfig) {
  absl::StatusOr<collector::CollectorConfig> config = collector::ParseCollectorConfig(YAML::Load(R"(
exporters:
  - name: fluent
    type: fluentd
    fluentd:
      address: 127.0.0.1:1
      compression: gzip
)"));
  ASSERT_TRUE(config.ok()) << config.status();
  // No network at build time: nothing listens on port 1.
  absl::StatusOr<collector::Exporter> exporter =
      BuildFluentdExporter(config->exporters.at(0), DefaultFormat());
  ASSERT_TRUE(exporter.ok()) << exporter.status();
  EXPECT_EQ(exporter->name, "fluent");
  EXPECT_EQ(exporter->type, "fluentd");
  EXPECT_EQ(exporter->family, collector::RecordFamily::kLogs);
  ASSERT_NE(exporter->encoder, nullptr);
  ASSERT_NE(exporter->sender, nullptr);
}

TEST(FluentdExporterTest, ConfigErrorsCarryTheCollectorPath) {
  absl::StatusOr<collector::CollectorConfig> config = collector::ParseCollectorConfig(YAML::Load(R"(
exporters:
  - name: other
    type: loki
    loki: {}
  - name: fluent
    type: fluentd
    family: spans
    fluentd:
      adress: 127.0.0.1
)"));
  ASSERT_TRUE(config.ok()) << config.status();
  absl::StatusOr<collector::Exporter> exporter =
      BuildFluentdExporter(config->exporters.at(1), DefaultFormat());
  EXPECT_EQ(exporter.status().message(), "exporters[1].fluentd.adress: unknown key");
  EXPECT_FALSE(BuildFluentdExporter(config->exporters.at(0), DefaultFormat()).ok());
}

TEST(FluentdExporterTest, BuiltExporterDeliversToAReceiver) {
  testing::FluentdReceiver receiver;
  collector::ExporterConfig config;
  config.name = "fluent";
  config.type = "fluentd";
  config.family = "spans";
  config.settings = YAML::Load("{address: 127.0.0.1:" + std::to_string(receiver.port()) +
                               ", record_format: line, tag: t.x}");
  config.settings_path = kPath;
  absl::StatusOr<collector::AccessLogFormat> format =
      collector::AccessLogFormat::Compile("%REQ(:PATH)%\n", collector::AccessLogEncoding::kText);
  ASSERT_TRUE(format.ok());
  absl::StatusOr<collector::Exporter> exporter = BuildFluentdExporter(config, *format);
  ASSERT_TRUE(exporter.ok()) << exporter.status();
  EXPECT_EQ(exporter->family, collector::RecordFamily::kSpans);

  collector::StoredRecord stored;
  stored.key = {1733065200'000000000, 1};
  stored.record.set_path("/via-factory");
  ASSERT_TRUE(exporter->encoder->Measure(stored).ok());
  absl::StatusOr<collector::Payload> payload =
      exporter->encoder->Encode(std::span<const collector::StoredRecord>(&stored, 1));
  ASSERT_TRUE(payload.ok()) << payload.status();
  const collector::SendResult result = exporter->sender->Send(*payload);
  EXPECT_EQ(result.verdict, collector::SendVerdict::kOk) << result.detail;
  ASSERT_EQ(receiver.events().size(), 1u);
  EXPECT_EQ(receiver.events()[0].tag, "t.x");
  EXPECT_EQ(receiver.events()[0].record.Find("message")->bytes, "/via-factory");
}

}  // namespace
}  // namespace meshtel::exporters::fluentd
