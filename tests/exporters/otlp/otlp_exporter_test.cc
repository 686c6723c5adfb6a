#include "exporters/otlp/otlp_exporter.h"

#include <string>
#include <vector>

#include "collector/config/collector_config.h"
#include "collector/delivery/delivery_engine.h"
#include "collector/store/record_store.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"
#include "tests/support/otlp_receiver.h"
#include "tests/support/process.h"
#include "tests/support/span_samples.h"
#include "tests/support/test_certificates.h"
#include "yaml-cpp/yaml.h"

namespace meshtel::exporters {
namespace {

constexpr char kPath[] = "exporters[0].otlp";

absl::StatusOr<OtlpConfig> Parse(const std::string& yaml) {
  return ParseOtlpConfig(YAML::Load(yaml), kPath);
}

std::string ErrorOf(const std::string& yaml) {
  absl::StatusOr<OtlpConfig> config = Parse(yaml);
  EXPECT_FALSE(config.ok()) << yaml;
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(config.status().message());
}

TEST(OtlpConfigTest, Defaults) {
  absl::StatusOr<OtlpConfig> config = Parse("endpoint: http://tempo:4318");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->protocol, OtlpProtocol::kHttpProtobuf);
  EXPECT_EQ(config->http_url.host, "tempo");
  EXPECT_EQ(config->http_url.port, 4318);
  EXPECT_EQ(config->http_url.target, "/v1/traces");
  EXPECT_EQ(config->compression, OtlpCompression::kNone);
  EXPECT_TRUE(config->headers.empty());
  EXPECT_EQ(config->timeout, absl::Seconds(10));
}

TEST(OtlpConfigTest, EveryKeyDecodes) {
  absl::StatusOr<OtlpConfig> config = Parse(R"(
protocol: grpc
endpoint: tempo.tracing
compression: gzip
headers: {X-Scope-OrgID: team-a}
timeout: 3s
)");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->protocol, OtlpProtocol::kGrpc);
  EXPECT_EQ(config->grpc_target, "tempo.tracing:4317");
  EXPECT_EQ(config->compression, OtlpCompression::kGzip);
  const std::vector<std::pair<std::string, std::string>> headers = {{"x-scope-orgid", "team-a"}};
  EXPECT_EQ(config->headers, headers);  // gRPC metadata keys are lower case
  EXPECT_EQ(config->timeout, absl::Seconds(3));

  config = Parse("{endpoint: 'http://otel:4318/custom/traces', headers: {X-Scope-OrgID: a}}");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->http_url.target, "/custom/traces");  // a path is used as it is
  EXPECT_EQ(config->headers[0].first, "X-Scope-OrgID");
  EXPECT_EQ(Parse("{protocol: grpc, endpoint: 'otel:14317'}")->grpc_target, "otel:14317");
  EXPECT_FALSE(config->tls.enabled);

  config = Parse(
      "{protocol: grpc, endpoint: 'tempo.example:443', tls: {enabled: true, server_name: t}}");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(config->tls.enabled);
  EXPECT_EQ(config->tls.server_name, "t");
}

TEST(OtlpConfigTest, HttpsEndpointsAreTls) {
  absl::StatusOr<OtlpConfig> config = Parse("endpoint: https://tempo.example");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(config->http_url.https);
  EXPECT_EQ(config->http_url.port, 443);
  EXPECT_EQ(config->http_url.target, "/v1/traces");
  EXPECT_TRUE(config->tls.enabled);
  config = Parse("{endpoint: 'https://10.1.2.3:4318', tls: {server_name: tempo.internal}}");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(config->tls.enabled);
  EXPECT_EQ(config->tls.server_name, "tempo.internal");
  config = Parse("{endpoint: 'https://tempo:4318', tls: {enabled: true}}");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(config->tls.enabled);
}

TEST(OtlpConfigTest, ErrorsNameTheKey) {
  EXPECT_EQ(ErrorOf("{protocol: xyz, endpoint: a}"),
            "exporters[0].otlp.protocol: 'xyz' is not grpc or http/protobuf");
  EXPECT_EQ(ErrorOf("{endpoint: 'http://a:4318', compression: zstd}"),
            "exporters[0].otlp.compression: 'zstd' is not none or gzip");
  EXPECT_EQ(ErrorOf("protocol: grpc"),
            "exporters[0].otlp.endpoint: is required (host:port of the OTLP gRPC receiver)");
  EXPECT_EQ(ErrorOf("timeout: 1s"),
            "exporters[0].otlp.endpoint: is required (http:// or https:// URL of the OTLP HTTP "
            "receiver)");
  EXPECT_EQ(ErrorOf("{protocol: grpc, endpoint: 'http://tempo:4317'}"),
            "exporters[0].otlp.endpoint: 'http://tempo:4317' must be host:port for protocol "
            "grpc, without a scheme");
  EXPECT_NE(ErrorOf("endpoint: 'ftp://tempo:4318'").find("exporters[0].otlp.endpoint"),
            std::string::npos);
  EXPECT_NE(ErrorOf("endpoint: 'tempo:4318'").find("exporters[0].otlp.endpoint"),
            std::string::npos);
  EXPECT_EQ(ErrorOf("{endpoint: 'http://a:4318', timeout: 0s}"),
            "exporters[0].otlp.timeout: '0' must be more than 0");
  EXPECT_NE(ErrorOf("{endpoint: 'http://a:4318', headers: {'bad name': x}}")
                .find("exporters[0].otlp.headers.bad name"),
            std::string::npos);
  EXPECT_NE(ErrorOf("{endpoint: 'http://a:4318', insecure: true}").find("exporters[0].otlp."),
            std::string::npos);
  EXPECT_EQ(ErrorOf("{endpoint: 'http://a:4318', tls: {enabled: true}}"),
            "exporters[0].otlp.tls.enabled: is true, but exporters[0].otlp.endpoint is an "
            "http:// URL: use https:// for TLS");
  EXPECT_EQ(ErrorOf("{endpoint: 'https://a:4318', tls: {enabled: false}}"),
            "exporters[0].otlp.tls.enabled: is false, but exporters[0].otlp.endpoint is an "
            "https:// URL (always TLS): use http:// for plaintext");
  EXPECT_EQ(ErrorOf("{endpoint: 'http://a:4318', tls: {ca_file: /no/ca}}"),
            "exporters[0].otlp.tls: sets files or a server name, but exporters[0].otlp.endpoint "
            "is an http:// URL: use https:// for TLS");
  EXPECT_EQ(ErrorOf("{endpoint: 'https://a:4318', tls: {ca_file: /no/ca}}"),
            "exporters[0].otlp.tls.ca_file: cannot read '/no/ca': No such file or directory");
  EXPECT_EQ(ErrorOf("{endpoint: 'https://a:4318', tls: {key_file: /no/key}}"),
            "exporters[0].otlp.tls.cert_file: is required with key_file (mutual TLS needs both)");
  EXPECT_EQ(ErrorOf("{protocol: grpc, endpoint: 'a:1', tls: {enabled: true, ca_file: /no/ca}}"),
            "exporters[0].otlp.tls.ca_file: cannot read '/no/ca': No such file or directory");
}

absl::StatusOr<collector::CollectorConfig> Collector(const std::string& yaml) {
  return collector::ParseCollectorConfig(YAML::Load(yaml));
}

TEST(BuildOtlpExporterTest, SpansByDefaultAndLogsRefused) {
  auto config = Collector(
      "exporters:\n  - {name: tempo, type: otlp, otlp: {endpoint: 'http://tempo:4318'}}\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->exporters[0].family, "spans");
  prometheus::Registry registry;
  absl::StatusOr<collector::Exporter> exporter = BuildOtlpExporter(config->exporters[0], registry);
  ASSERT_TRUE(exporter.ok()) << exporter.status();
  EXPECT_EQ(exporter->type, "otlp");
  EXPECT_EQ(exporter->family, collector::RecordFamily::kSpans);

  auto logs = Collector(
      "exporters:\n  - {name: tempo, type: otlp, family: logs,"
      " otlp: {endpoint: 'http://tempo:4318'}}\n");
  ASSERT_FALSE(logs.ok());
  EXPECT_EQ(logs.status().message(),
            "exporters[0].family: 'logs': an otlp exporter delivers spans only");
  collector::ExporterConfig direct = config->exporters[0];
  direct.family = "logs";
  EXPECT_EQ(BuildOtlpExporter(direct, registry).status().message(),
            "exporters[0].family: 'logs': an otlp exporter delivers spans only");
}

TEST(BuildOtlpExporterTest, TheBuiltExporterCountsPartialSuccessInTheRegistry) {
  testing::OtlpReceiver receiver;
  receiver.AnswerPartialSuccess(1, "too old");
  auto config = Collector(
      "exporters:\n  - {name: tempo, type: otlp, otlp: {protocol: grpc, "
      "endpoint: '" +
      receiver.grpc_endpoint() + "'}}\n");
  ASSERT_TRUE(config.ok()) << config.status();
  prometheus::Registry registry;
  absl::StatusOr<collector::Exporter> exporter = BuildOtlpExporter(config->exporters[0], registry);
  ASSERT_TRUE(exporter.ok()) << exporter.status();
  const std::vector<collector::StoredRecord> records = {testing::StoredSpan(
      testing::SampleSpan("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", "", "web"))};
  absl::StatusOr<collector::Payload> payload = exporter->encoder->Encode(records);
  ASSERT_TRUE(payload.ok()) << payload.status();
  EXPECT_EQ(exporter->sender->Send(*payload).verdict, collector::SendVerdict::kOk);
  EXPECT_EQ(OtlpRejectedSpansCounter(registry, "tempo").Value(), 1);
  bool found = false;
  for (const prometheus::MetricFamily& family : registry.Collect()) {
    if (family.name == "meshtel_exporter_otlp_partial_success_rejected_spans_total") {
      found = true;
      ASSERT_EQ(family.metric.size(), 1u);
      EXPECT_EQ(family.metric[0].label[0].name, "exporter");
      EXPECT_EQ(family.metric[0].label[0].value, "tempo");
    }
  }
  EXPECT_TRUE(found);
}

// The stored spans of the test, delivered by the delivery engine through an exporter built from
// `exporter_yaml`; checks they arrived at `receiver`.
void ExpectTheEngineDelivers(testing::OtlpReceiver& receiver, const std::string& exporter_yaml) {
  prometheus::Registry registry;
  collector::StoreConfig store_config;
  store_config.data_dir = testing::MakeTempDir("otlp-delivery");
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

  auto config = Collector(exporter_yaml);
  ASSERT_TRUE(config.ok()) << config.status();
  absl::StatusOr<collector::Exporter> exporter = BuildOtlpExporter(config->exporters[0], registry);
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
  EXPECT_EQ(received[1].service, "cart");
  EXPECT_EQ(received[1].parent_span_id, "00f067aa0ba902b7");
  const std::vector<testing::OtlpCall> calls = receiver.Calls();
  ASSERT_FALSE(calls.empty());
  EXPECT_EQ(calls[0].content_encoding, "gzip");
  EXPECT_TRUE((*store)->Close().ok());
}

TEST(BuildOtlpExporterTest, TheDeliveryEngineDeliversStoredSpansOverHttpWithGzip) {
  testing::OtlpReceiver receiver;
  ExpectTheEngineDelivers(receiver, "exporters:\n  - {name: tempo, type: otlp, otlp: {endpoint: '" +
                                        receiver.http_url() + "', compression: gzip}}\n");
}

// The same over https, with mutual TLS: the receiver's HTTP server speaks TLS only.
TEST(BuildOtlpExporterTest, TheDeliveryEngineDeliversStoredSpansOverHttps) {
  const testing::TestCertificates certificates =
      testing::MakeTestCertificates(testing::MakeTempDir("meshtel-otlp-tls"));
  if (!certificates.unavailable.empty()) GTEST_SKIP() << certificates.unavailable;
  testing::OtlpReceiver receiver(
      /*grpc_gzip=*/true, testing::TestTlsOptions{.cert_pem = certificates.server_cert_pem,
                                                  .key_pem = certificates.server_key_pem,
                                                  .client_ca_pem = certificates.ca_pem});
  ASSERT_TRUE(receiver.http_url().starts_with("https://")) << receiver.http_url();
  ExpectTheEngineDelivers(
      receiver, "exporters:\n  - {name: tempo, type: otlp, otlp: {endpoint: '" +
                    receiver.http_url() + "', compression: gzip, tls: {ca_file: '" +
                    certificates.ca_file + "', cert_file: '" + certificates.client_cert_file +
                    "', key_file: '" + certificates.client_key_file +
                    "', server_name: " + testing::kTestServerName + "}}}\n");
}

}  // namespace
}  // namespace meshtel::exporters
