#include "exporters/jaeger/jaeger_exporter.h"

#include <string>
#include <vector>

#include "collector/config/collector_config.h"
#include "collector/delivery/delivery_engine.h"
#include "collector/store/record_store.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"
#include "tests/support/jaeger_receiver.h"
#include "tests/support/process.h"
#include "tests/support/span_samples.h"
#include "yaml-cpp/yaml.h"

namespace meshtel::exporters {
namespace {

constexpr char kPath[] = "exporters[0].jaeger";

absl::StatusOr<JaegerConfig> Parse(const std::string& yaml) {
  return ParseJaegerConfig(YAML::Load(yaml), kPath);
}

std::string ErrorOf(const std::string& yaml) {
  absl::StatusOr<JaegerConfig> config = Parse(yaml);
  EXPECT_FALSE(config.ok()) << yaml;
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(config.status().message());
}

TEST(JaegerConfigTest, Defaults) {
  absl::StatusOr<JaegerConfig> config = Parse("endpoint: jaeger.tracing");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->endpoint, "jaeger.tracing:14250");
  EXPECT_EQ(config->timeout, absl::Seconds(10));
  EXPECT_TRUE(config->headers.empty());
}

TEST(JaegerConfigTest, EveryKeyDecodes) {
  absl::StatusOr<JaegerConfig> config = Parse(R"(
endpoint: "[::1]:4250"
timeout: 2500ms
headers: {X-Tenant: mesh, authorization: Bearer t}
)");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->endpoint, "[::1]:4250");
  EXPECT_EQ(config->timeout, absl::Milliseconds(2500));
  const std::vector<std::pair<std::string, std::string>> headers = {{"x-tenant", "mesh"},
                                                                    {"authorization", "Bearer t"}};
  EXPECT_EQ(config->headers, headers);
}

TEST(JaegerConfigTest, ErrorsNameTheKey) {
  EXPECT_EQ(ErrorOf("timeout: 1s"),
            "exporters[0].jaeger.endpoint: is required (host:port of Jaeger's gRPC collector)");
  EXPECT_EQ(ErrorOf("endpoint: http://jaeger:14250"),
            "exporters[0].jaeger.endpoint: 'http://jaeger:14250' must be host:port, without a "
            "scheme");
  EXPECT_NE(ErrorOf("endpoint: 'jaeger:0'").find("exporters[0].jaeger.endpoint: 'jaeger:0'"),
            std::string::npos);
  EXPECT_EQ(ErrorOf("{endpoint: jaeger, timeout: 0s}"),
            "exporters[0].jaeger.timeout: '0' must be more than 0");
  EXPECT_NE(ErrorOf("{endpoint: jaeger, headers: {grpc-timeout: 1S}}")
                .find("exporters[0].jaeger.headers.grpc-timeout"),
            std::string::npos);
  EXPECT_NE(ErrorOf("{endpoint: jaeger, tls: true}").find("exporters[0].jaeger.tls"),
            std::string::npos);
}

absl::StatusOr<collector::CollectorConfig> Collector(const std::string& yaml) {
  return collector::ParseCollectorConfig(YAML::Load(yaml));
}

TEST(BuildJaegerExporterTest, SpansByDefaultAndLogsRefused) {
  auto config = Collector("exporters:\n  - {name: jaeger, type: jaeger, jaeger: {endpoint: j}}\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->exporters[0].family, "spans");
  absl::StatusOr<collector::Exporter> exporter = BuildJaegerExporter(config->exporters[0]);
  ASSERT_TRUE(exporter.ok()) << exporter.status();
  EXPECT_EQ(exporter->name, "jaeger");
  EXPECT_EQ(exporter->type, "jaeger");
  EXPECT_EQ(exporter->family, collector::RecordFamily::kSpans);

  auto logs = Collector(
      "exporters:\n  - {name: jaeger, type: jaeger, family: logs, jaeger: {endpoint: j}}\n");
  ASSERT_FALSE(logs.ok());
  EXPECT_EQ(logs.status().message(),
            "exporters[0].family: 'logs': a jaeger exporter delivers spans only");

  collector::ExporterConfig direct = config->exporters[0];
  direct.family = "logs";
  EXPECT_EQ(BuildJaegerExporter(direct).status().message(),
            "exporters[0].family: 'logs': a jaeger exporter delivers spans only");
}

TEST(BuildJaegerExporterTest, TheBuiltExporterDeliversToJaeger) {
  testing::JaegerReceiver receiver;
  auto config = Collector("exporters:\n  - {name: jaeger, type: jaeger, jaeger: {endpoint: '" +
                          receiver.endpoint() + "'}}\n");
  ASSERT_TRUE(config.ok()) << config.status();
  absl::StatusOr<collector::Exporter> exporter = BuildJaegerExporter(config->exporters[0]);
  ASSERT_TRUE(exporter.ok()) << exporter.status();
  const std::vector<collector::StoredRecord> records = {testing::StoredSpan(
      testing::SampleSpan("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", "", "web"))};
  ASSERT_TRUE(exporter->encoder->Measure(records[0]).ok());
  absl::StatusOr<collector::Payload> payload = exporter->encoder->Encode(records);
  ASSERT_TRUE(payload.ok()) << payload.status();
  const collector::SendResult result = exporter->sender->Send(*payload);
  EXPECT_EQ(result.verdict, collector::SendVerdict::kOk) << result.detail;
  ASSERT_EQ(receiver.Spans().size(), 1u);
  EXPECT_EQ(receiver.Spans()[0].service, "web");
}

TEST(BuildJaegerExporterTest, TheDeliveryEngineDeliversStoredSpansToJaeger) {
  testing::JaegerReceiver receiver;
  prometheus::Registry registry;
  collector::StoreConfig store_config;
  store_config.data_dir = testing::MakeTempDir("jaeger-delivery");
  store_config.durability = "process";
  absl::StatusOr<std::unique_ptr<collector::RecordStore>> store =
      collector::RecordStore::Open(store_config, registry);
  ASSERT_TRUE(store.ok()) << store.status();
  const std::vector<meshtel::v1::Span> spans = {
      testing::SampleSpan("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", "", "web"),
      testing::SampleSpan("4bf92f3577b34da6a3ce929d0e0e4736", "b7ad6b7169203331",
                          "00f067aa0ba902b7", "cart")};
  ASSERT_TRUE(
      (*store)->AppendSpans(spans, "@test", collector::StoreKey{}, collector::StoreKey{}).ok());

  auto config = Collector("exporters:\n  - {name: jaeger, type: jaeger, jaeger: {endpoint: '" +
                          receiver.endpoint() + "'}}\n");
  ASSERT_TRUE(config.ok()) << config.status();
  absl::StatusOr<collector::Exporter> exporter = BuildJaegerExporter(config->exporters[0]);
  ASSERT_TRUE(exporter.ok()) << exporter.status();
  collector::DeliveryEngine engine(**store, registry);
  std::vector<collector::DeliveryTarget> targets;
  targets.push_back({*std::move(exporter), config->exporters[0].batch, config->exporters[0].retry});
  ASSERT_TRUE(engine.Start(std::move(targets)).ok());
  ASSERT_TRUE(receiver.WaitForSpans(2, absl::Seconds(60)));
  engine.Stop();
  const std::vector<testing::ReceivedSpan> received = receiver.Spans();
  ASSERT_EQ(received.size(), 2u);
  EXPECT_EQ(received[0].service, "web");
  EXPECT_EQ(received[0].parent_span_id, "");
  EXPECT_EQ(received[1].service, "cart");
  EXPECT_EQ(received[1].parent_span_id, "00f067aa0ba902b7");
  EXPECT_EQ(received[1].trace_id, received[0].trace_id);
  EXPECT_TRUE((*store)->Close().ok());
}

}  // namespace
}  // namespace meshtel::exporters
