#include "exporters/loki/loki_exporter.h"

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/support/loki_receiver.h"
#include "tests/support/process.h"
#include "tests/support/test_certificates.h"
#include "yaml-cpp/yaml.h"

namespace meshtel::exporters {
namespace {

using collector::AccessLogEncoding;
using collector::AccessLogFormat;
using collector::CollectorConfig;
using collector::StoredRecord;
using meshtel::testing::LokiPush;
using meshtel::testing::LokiReceiver;

// Parses a whole collector config with one exporter whose `loki:` block is `loki_block`.
absl::StatusOr<LokiConfig> ParseBlock(const std::string& loki_block) {
  const std::string document =
      absl::StrCat("exporters:\n  - name: main\n    type: loki\n    loki:\n", loki_block);
  absl::StatusOr<CollectorConfig> config = collector::ParseCollectorConfig(YAML::Load(document));
  if (!config.ok()) return config.status();
  return ParseLokiConfig(config->exporters[0].settings, config->exporters[0].settings_path);
}

std::string ErrorOf(const std::string& loki_block) {
  absl::StatusOr<LokiConfig> config = ParseBlock(loki_block);
  return config.ok() ? "no error" : std::string(config.status().message());
}

AccessLogFormat TextFormat() {
  absl::StatusOr<AccessLogFormat> format = AccessLogFormat::Compile(
      "%REQ(:METHOD)% %REQ(:PATH)% %RESPONSE_CODE%\n", AccessLogEncoding::kText);
  EXPECT_TRUE(format.ok()) << format.status();
  return *format;
}

TEST(LokiConfigTest, DefaultsWithOnlyTheUrl) {
  absl::StatusOr<LokiConfig> config = ParseBlock("      url: http://loki:3100/loki/api/v1/push\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->endpoint.host, "loki");
  EXPECT_EQ(config->endpoint.port, 3100);
  EXPECT_EQ(config->endpoint.target, "/loki/api/v1/push");
  EXPECT_EQ(config->timeout, absl::Seconds(10));
  EXPECT_EQ(config->max_line_bytes, 256u * 1024);
  EXPECT_TRUE(config->structured_metadata);
  EXPECT_EQ(config->reject_older_than, absl::Hours(168));
  EXPECT_EQ(config->creation_grace_period, absl::Minutes(10));
  ASSERT_EQ(config->labels.size(), 3u);
  EXPECT_EQ(config->labels[0].name, "namespace");
  EXPECT_EQ(config->labels[0].field, LokiLabelField::kDestinationNamespace);
  EXPECT_EQ(config->labels[1].name, "workload");
  EXPECT_EQ(config->labels[1].field, LokiLabelField::kDestinationWorkload);
  EXPECT_EQ(config->labels[2].name, "reporter");
  EXPECT_EQ(config->labels[2].field, LokiLabelField::kReporter);
  ASSERT_EQ(config->static_labels.size(), 1u);
  EXPECT_EQ(config->static_labels[0], std::make_pair(std::string("job"), std::string("meshtel")));
}

TEST(LokiConfigTest, ReadsEveryKey) {
  absl::StatusOr<LokiConfig> config = ParseBlock(
      "      url: http://10.0.0.7:3100/loki/api/v1/push\n"
      "      tenant_id: team-a\n"
      "      basic_auth: {username: u, password: p}\n"
      "      timeout: 3s\n"
      "      labels: {app: destination_app, code: response_code_class}\n"
      "      static_labels: {cluster: east}\n"
      "      max_line_bytes: 1000\n"
      "      structured_metadata: false\n"
      "      reject_older_than: 24h\n"
      "      creation_grace_period: 1h\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->tenant_id, "team-a");
  EXPECT_EQ(config->basic_auth_username, "u");
  EXPECT_EQ(config->basic_auth_password, "p");
  EXPECT_EQ(config->timeout, absl::Seconds(3));
  ASSERT_EQ(config->labels.size(), 2u);
  EXPECT_EQ(config->labels[0].name, "app");
  EXPECT_EQ(LokiLabelFieldName(config->labels[0].field), "destination_app");
  EXPECT_EQ(LokiLabelFieldName(config->labels[1].field), "response_code_class");
  ASSERT_EQ(config->static_labels.size(), 1u);
  EXPECT_EQ(config->static_labels[0].first, "cluster");
  EXPECT_EQ(config->max_line_bytes, 1000u);
  EXPECT_FALSE(config->structured_metadata);
  EXPECT_EQ(config->reject_older_than, absl::Hours(24));
  EXPECT_EQ(config->creation_grace_period, absl::Hours(1));
}

TEST(LokiConfigTest, ErrorsNameThePath) {
  EXPECT_EQ(ErrorOf("      tenant_id: a\n"), "exporters[0].loki.url: is required");
  EXPECT_EQ(ErrorOf("      url: http://l/\n      creation_grace_period: 0s\n"),
            "exporters[0].loki.creation_grace_period: must be more than 0");
  EXPECT_EQ(ErrorOf("      url: http://l/\n      lables: {}\n"),
            "exporters[0].loki.lables: unknown key");
  EXPECT_EQ(ErrorOf("      url: ftp://l/\n"),
            "exporters[0].loki.url: 'ftp://l/' is not an http:// or https:// URL");
  EXPECT_EQ(ErrorOf("      url: http://l/\n      labels: {p: path}\n"),
            "exporters[0].loki.labels.p: 'path' changes with every request and cannot be a "
            "label (it would make one stream per request); it is in the line, and trace_id and "
            "request_id are in structured metadata");
  EXPECT_NE(ErrorOf("      url: http://l/\n      labels: {t: trace_id}\n")
                .find("exporters[0].loki.labels.t: 'trace_id' changes with every request"),
            std::string::npos);
  EXPECT_NE(ErrorOf("      url: http://l/\n      labels: {r: request_id}\n")
                .find("exporters[0].loki.labels.r: 'request_id' changes with every request"),
            std::string::npos);
  EXPECT_NE(ErrorOf("      url: http://l/\n      labels: {x: colour}\n")
                .find("exporters[0].loki.labels.x: 'colour' is not a label field; one of: "
                      "reporter, source_workload"),
            std::string::npos);
  EXPECT_NE(ErrorOf("      url: http://l/\n      labels: {9x: reporter}\n")
                .find("exporters[0].loki.labels.9x: '9x' is not a valid Loki label name"),
            std::string::npos);
  EXPECT_NE(ErrorOf("      url: http://l/\n      static_labels: {__name__: x}\n")
                .find("exporters[0].loki.static_labels.__name__: '__name__' is not a valid"),
            std::string::npos);
  EXPECT_EQ(ErrorOf("      url: http://l/\n      static_labels: {reporter: x}\n"),
            "exporters[0].loki.static_labels.reporter: is also in labels");
  EXPECT_EQ(ErrorOf("      url: http://l/\n      bearer_token: t\n"
                    "      basic_auth: {username: u, password: p}\n"),
            "exporters[0].loki.bearer_token: cannot be combined with basic_auth");
  EXPECT_EQ(ErrorOf("      url: http://l/\n      basic_auth: {password: p}\n"),
            "exporters[0].loki.basic_auth.username: is required");
  EXPECT_EQ(ErrorOf("      url: http://l/\n      basic_auth: {user: u}\n"),
            "exporters[0].loki.basic_auth.user: unknown key");
  EXPECT_EQ(ErrorOf("      url: http://l/\n      timeout: 0s\n"),
            "exporters[0].loki.timeout: must be more than 0");
  EXPECT_EQ(ErrorOf("      url: http://l/\n      max_line_bytes: 0\n"),
            "exporters[0].loki.max_line_bytes: must be at least 1");
  EXPECT_EQ(ErrorOf("      url: http://l/\n      labels: {}\n      static_labels: {}\n"),
            "exporters[0].loki.labels: Loki needs at least one label");
  std::string many = "      url: http://l/\n      labels:\n";
  for (int i = 0; i < 16; ++i) absl::StrAppend(&many, "        l", i, ": reporter\n");
  EXPECT_EQ(ErrorOf(many),
            "exporters[0].loki.labels: 17 labels with static_labels, over Loki's limit of 15");
}

TEST(LokiConfigTest, AnHttpsUrlIsTlsWithTheTlsBlock) {
  absl::StatusOr<LokiConfig> config =
      ParseBlock("      url: https://logs.example.net/loki/api/v1/push\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(config->endpoint.https);
  EXPECT_EQ(config->endpoint.port, 443);
  EXPECT_TRUE(config->tls.enabled);
  EXPECT_EQ(config->tls.ca_pem, "");

  const std::string dir = testing::MakeTempDir("meshtel-loki-tls");
  const testing::TestCertificates certificates = testing::MakeTestCertificates(dir);
  if (!certificates.unavailable.empty()) GTEST_SKIP() << certificates.unavailable;
  config = ParseBlock(absl::StrCat("      url: https://10.0.0.7:3100/loki/api/v1/push\n",
                                   "      tls:\n        ca_file: ", certificates.ca_file,
                                   "\n        cert_file: ", certificates.client_cert_file,
                                   "\n        key_file: ", certificates.client_key_file,
                                   "\n        server_name: loki.internal\n"));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(config->tls.enabled);
  EXPECT_EQ(config->tls.ca_pem, certificates.ca_pem);
  EXPECT_EQ(config->tls.cert_pem, certificates.client_cert_pem);
  EXPECT_EQ(config->tls.key_pem, certificates.client_key_pem);
  EXPECT_EQ(config->tls.server_name, "loki.internal");

  config = ParseBlock("      url: http://loki:3100/loki/api/v1/push\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_FALSE(config->tls.enabled);
}

TEST(LokiConfigTest, TlsErrorsNameTheField) {
  EXPECT_EQ(ErrorOf("      url: https://l/\n      tls: {ca_file: /nonexistent/ca.pem}\n"),
            "exporters[0].loki.tls.ca_file: cannot read '/nonexistent/ca.pem': No such file or "
            "directory");
  EXPECT_EQ(ErrorOf("      url: http://l/\n      tls: {enabled: true}\n"),
            "exporters[0].loki.tls.enabled: is true, but exporters[0].loki.url is an http:// "
            "URL: use https:// for TLS");
  EXPECT_EQ(ErrorOf("      url: https://l/\n      tls: {enabled: false}\n"),
            "exporters[0].loki.tls.enabled: is false, but exporters[0].loki.url is an https:// "
            "URL (always TLS): use http:// for plaintext");
  EXPECT_EQ(ErrorOf("      url: http://l/\n      tls: {server_name: l}\n"),
            "exporters[0].loki.tls: sets files or a server name, but exporters[0].loki.url is "
            "an http:// URL: use https:// for TLS");
  EXPECT_EQ(ErrorOf("      url: https://l/\n      tls: {cert_file: /c.pem}\n"),
            "exporters[0].loki.tls.key_file: is required with cert_file (mutual TLS needs both)");
  EXPECT_EQ(ErrorOf("      url: https://l/\n      tls: {insecure_skip_verify: true}\n"),
            "exporters[0].loki.tls.insecure_skip_verify: unknown key");
}

TEST(LokiConfigTest, ResourceLabelsDefaultToLokisOwnOtlpIndexLabels) {
  absl::StatusOr<LokiConfig> config = ParseBlock("      url: http://l/\n");
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_EQ(config->resource_labels.size(), 17u);
  EXPECT_EQ(config->resource_labels[0],
            std::make_pair(std::string("service.name"), std::string("service_name")));
  const auto has = [&](const std::string& attribute, const std::string& label) {
    return std::find(config->resource_labels.begin(), config->resource_labels.end(),
                     std::make_pair(attribute, label)) != config->resource_labels.end();
  };
  EXPECT_TRUE(has("service.namespace", "service_namespace"));
  EXPECT_TRUE(has("k8s.namespace.name", "k8s_namespace_name"));
  EXPECT_TRUE(has("k8s.pod.name", "k8s_pod_name"));
  EXPECT_TRUE(has("deployment.environment", "deployment_environment"));
  EXPECT_TRUE(has("cloud.availability_zone", "cloud_availability_zone"));
  EXPECT_TRUE(has("k8s.cronjob.name", "k8s_cronjob_name"));

  // Written: replaces the default, in order.
  config = ParseBlock(
      "      url: http://l/\n"
      "      resource_labels: {service.name: app, deployment.environment.name: env}\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->resource_labels,
            (std::vector<std::pair<std::string, std::string>>{
                {"service.name", "app"}, {"deployment.environment.name", "env"}}));
  config = ParseBlock("      url: http://l/\n      resource_labels: {}\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(config->resource_labels.empty());
  // A static label of a default label's name takes its place.
  config = ParseBlock("      url: http://l/\n      static_labels: {service_name: mesh}\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->resource_labels.size(), 16u);
  EXPECT_EQ(config->resource_labels[0].first, "service.namespace");
}

TEST(LokiConfigTest, ResourceLabelErrorsNameThePath) {
  EXPECT_NE(ErrorOf("      url: http://l/\n      resource_labels: {service.name: service.name}\n")
                .find("exporters[0].loki.resource_labels.service.name: 'service.name' is not a "
                      "valid Loki label name"),
            std::string::npos);
  EXPECT_EQ(ErrorOf("      url: http://l/\n      resource_labels: {a.b: x, c.d: x}\n"),
            "exporters[0].loki.resource_labels.c.d: label 'x' is already the label of 'a.b'");
  EXPECT_EQ(ErrorOf("      url: http://l/\n      resource_labels: {service.name: job}\n"),
            "exporters[0].loki.resource_labels.service.name: label 'job' is also in "
            "static_labels");
  EXPECT_EQ(ErrorOf("      url: http://l/\n      static_labels: {}\n"
                    "      resource_labels: {k8s.pod.name: pod}\n"),
            "exporters[0].loki.resource_labels: without static_labels, service.name must be "
            "mapped to a label (a received log record needs at least one label)");
  EXPECT_EQ(ErrorOf("      url: http://l/\n      resource_labels: [a]\n"),
            "exporters[0].loki.resource_labels: must be a mapping of strings to strings");
}

TEST(LokiAttributeNameTest, FollowsPrometheusLabelNormalization) {
  EXPECT_EQ(LokiAttributeName("k8s.pod.name"), "k8s_pod_name");
  EXPECT_EQ(LokiAttributeName("http-route/v2"), "http_route_v2");
  EXPECT_EQ(LokiAttributeName("0day"), "key_0day");
  EXPECT_EQ(LokiAttributeName("_private"), "key_private");
  EXPECT_EQ(LokiAttributeName("__reserved"), "__reserved");
  EXPECT_EQ(LokiAttributeName("plain_name"), "plain_name");
}

TEST(LokiConfigTest, EveryLabelFieldHasAName) {
  for (int i = 0; i <= static_cast<int>(LokiLabelField::kResponseCodeClass); ++i) {
    const std::string_view name = LokiLabelFieldName(static_cast<LokiLabelField>(i));
    ASSERT_FALSE(name.empty()) << i;
    absl::StatusOr<LokiConfig> config = ParseBlock(
        absl::StrCat("      url: http://l/\n      labels: {x: ", std::string(name), "}\n"));
    ASSERT_TRUE(config.ok()) << config.status();
    EXPECT_EQ(static_cast<int>(config->labels[0].field), i);
  }
}

TEST(BuildLokiExporterTest, BuildsWithoutTouchingTheNetwork) {
  absl::StatusOr<CollectorConfig> config = collector::ParseCollectorConfig(YAML::Load(
      "exporters:\n  - name: main\n    type: loki\n    loki:\n      url: http://127.0.0.1:1/\n"));
  ASSERT_TRUE(config.ok()) << config.status();
  absl::StatusOr<collector::Exporter> exporter =
      BuildLokiExporter(config->exporters[0], TextFormat());
  ASSERT_TRUE(exporter.ok()) << exporter.status();
  EXPECT_EQ(exporter->name, "main");
  EXPECT_EQ(exporter->type, "loki");
  EXPECT_EQ(exporter->family, collector::RecordFamily::kLogs);
  EXPECT_NE(exporter->encoder, nullptr);
  EXPECT_NE(exporter->sender, nullptr);

  config = collector::ParseCollectorConfig(
      YAML::Load("exporters:\n  - name: main\n    type: loki\n    loki:\n      tenant_id: x\n"));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(BuildLokiExporter(config->exporters[0], TextFormat()).status().message(),
            "exporters[0].loki.url: is required");
}

// The whole exporter against `receiver`, with `more_settings` in its `loki:` block: what it
// pushes decodes the same with the project's subset and with the official Loki schema.
void ExpectAPushBothSchemasDecodeAlike(LokiReceiver& receiver, const std::string& more_settings) {
  absl::StatusOr<CollectorConfig> config = collector::ParseCollectorConfig(YAML::Load(absl::StrCat(
      "exporters:\n  - name: main\n    type: loki\n    loki:\n      url: ", receiver.url(),
      "\n      tenant_id: team-a\n", more_settings)));
  ASSERT_TRUE(config.ok()) << config.status();
  absl::StatusOr<collector::Exporter> exporter =
      BuildLokiExporter(config->exporters[0], TextFormat());
  ASSERT_TRUE(exporter.ok()) << exporter.status();

  const uint64_t base = static_cast<uint64_t>(absl::ToUnixNanos(absl::Now() - absl::Hours(1)));
  std::vector<StoredRecord> records(3);
  for (size_t i = 0; i < records.size(); ++i) {
    records[i].key.time_unix_nano = base + 1000000;
    records[i].key.sequence = i;
    meshtel::v1::RequestRecord& record = records[i].record;
    record.set_start_time_unix_nano(base + 1000 * (3 - i));  // newest first in key order
    record.set_method("POST");
    record.set_path(absl::StrCat("/orders/", i));
    record.set_response_code(201);
    record.set_reporter(meshtel::v1::REPORTER_SOURCE);
    record.mutable_destination()->set_workload(i == 1 ? "billing-v2" : "orders-v1");
    record.mutable_destination()->set_namespace_("shop \"east\"");
    record.set_request_id(absl::StrCat("req-", i));
    record.set_trace_id(std::string(16, static_cast<char>(0x10 + i)));
    ASSERT_TRUE(exporter->encoder->Measure(records[i]).ok());
  }
  absl::StatusOr<collector::Payload> payload = exporter->encoder->Encode(records);
  ASSERT_TRUE(payload.ok()) << payload.status();
  const collector::SendResult result = exporter->sender->Send(*payload);
  ASSERT_EQ(result.verdict, collector::SendVerdict::kOk) << result.detail;

  const std::vector<LokiPush> pushes = receiver.Pushes();
  ASSERT_EQ(pushes.size(), 1u);
  const LokiPush& push = pushes[0];
  ASSERT_EQ(push.decode_error, "");
  EXPECT_EQ(push.headers.at("x-scope-orgid"), "team-a");
  const logproto::PushRequest& request = push.request;
  ASSERT_EQ(request.streams_size(), 2);
  EXPECT_EQ(request.streams(0).labels(),
            "{job=\"meshtel\", namespace=\"shop \\\"east\\\"\", reporter=\"source\", "
            "workload=\"billing-v2\"}");
  ASSERT_EQ(request.streams(1).entries_size(), 2);
  EXPECT_EQ(request.streams(1).entries(0).line(), "POST /orders/2 201");
  EXPECT_EQ(request.streams(1).entries(1).line(), "POST /orders/0 201");
  EXPECT_EQ(request.streams(1).entries(0).timestamp().nanos() % 1000000000,
            static_cast<int32_t>((base + 1000) % 1000000000));
  EXPECT_EQ(request.streams(1).entries(1).structuredmetadata(1).value(), "req-0");

  const std::string unavailable = meshtel::testing::OfficialLokiSchemaUnavailableReason();
  if (!unavailable.empty()) {
    std::printf("official-schema check skipped: %s\n", unavailable.c_str());
    GTEST_SKIP() << "official Loki schema unavailable: " << unavailable;
  }
  EXPECT_TRUE(push.official_checked);
  EXPECT_TRUE(push.official_mismatches.empty())
      << "first mismatch: " << push.official_mismatches.front();
}

TEST(BuildLokiExporterTest, PushesWhatBothSchemasDecodeAlike) {
  LokiReceiver receiver;
  ExpectAPushBothSchemasDecodeAlike(receiver, "");
}

// The same over https: the receiver speaks TLS only, so a push it decoded came over TLS.
TEST(BuildLokiExporterTest, PushesOverTls) {
  const testing::TestCertificates certificates =
      testing::MakeTestCertificates(testing::MakeTempDir("meshtel-loki-tls"));
  if (!certificates.unavailable.empty()) GTEST_SKIP() << certificates.unavailable;
  LokiReceiver receiver(
      LokiReceiver::Options{.tls = testing::TestTlsOptions{.cert_pem = certificates.server_cert_pem,
                                                           .key_pem = certificates.server_key_pem,
                                                           .client_ca_pem = certificates.ca_pem}});
  ASSERT_TRUE(receiver.url().starts_with("https://")) << receiver.url();
  ExpectAPushBothSchemasDecodeAlike(
      receiver, absl::StrCat("      tls:\n        ca_file: ", certificates.ca_file,
                             "\n        cert_file: ", certificates.client_cert_file,
                             "\n        key_file: ", certificates.client_key_file,
                             "\n        server_name: ", testing::kTestServerName, "\n"));
  EXPECT_EQ(receiver.server().tls_handshakes(), 1u);
  EXPECT_EQ(receiver.Pushes().size(), 1u);
}

// A receiver whose certificate the exporter cannot verify gets nothing, and the push is retried.
TEST(BuildLokiExporterTest, AnUnverifiedReceiverIsARetryableFailure) {
  const testing::TestCertificates certificates =
      testing::MakeTestCertificates(testing::MakeTempDir("meshtel-loki-tls"));
  if (!certificates.unavailable.empty()) GTEST_SKIP() << certificates.unavailable;
  LokiReceiver receiver(LokiReceiver::Options{
      .tls = testing::TestTlsOptions{.cert_pem = certificates.server_cert_pem,
                                     .key_pem = certificates.server_key_pem}});
  absl::StatusOr<CollectorConfig> config = collector::ParseCollectorConfig(YAML::Load(absl::StrCat(
      "exporters:\n  - name: main\n    type: loki\n    loki:\n      url: ", receiver.url(),
      "\n      timeout: 5s\n      tls: {server_name: ", testing::kTestServerName, "}\n")));
  ASSERT_TRUE(config.ok()) << config.status();
  absl::StatusOr<collector::Exporter> exporter =
      BuildLokiExporter(config->exporters[0], TextFormat());
  ASSERT_TRUE(exporter.ok()) << exporter.status();
  collector::Payload payload;
  payload.body = "x";
  payload.content_type = "application/x-protobuf";
  const collector::SendResult result = exporter->sender->Send(payload);
  EXPECT_EQ(result.verdict, collector::SendVerdict::kRetryable);
  EXPECT_NE(result.detail.find("TLS verification"), std::string::npos) << result.detail;
  EXPECT_TRUE(receiver.Pushes().empty());
}

// TLS settings OpenSSL refuses fail the build (the configuration load), naming the block.
TEST(BuildLokiExporterTest, UnusableTlsFilesFailTheBuild) {
  const testing::TestCertificates certificates =
      testing::MakeTestCertificates(testing::MakeTempDir("meshtel-loki-tls"));
  if (!certificates.unavailable.empty()) GTEST_SKIP() << certificates.unavailable;
  absl::StatusOr<CollectorConfig> config = collector::ParseCollectorConfig(YAML::Load(absl::StrCat(
      "exporters:\n  - name: main\n    type: loki\n    loki:\n      url: https://l/\n"
      "      tls: {cert_file: ",
      certificates.client_cert_file, ", key_file: ", certificates.server_key_file, "}\n")));
  ASSERT_TRUE(config.ok()) << config.status();
  absl::StatusOr<collector::Exporter> exporter =
      BuildLokiExporter(config->exporters[0], TextFormat());
  ASSERT_FALSE(exporter.ok());
  EXPECT_TRUE(std::string(exporter.status().message()).starts_with("exporters[0].loki.tls: "))
      << exporter.status();
  EXPECT_NE(exporter.status().message().find("the client key cannot be used"), std::string::npos)
      << exporter.status();
}

}  // namespace
}  // namespace meshtel::exporters
