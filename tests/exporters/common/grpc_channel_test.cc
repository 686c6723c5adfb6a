#include "exporters/common/grpc_channel.h"

#include <string>

#include "gtest/gtest.h"
#include "tests/support/process.h"
#include "tests/support/test_certificates.h"
#include "yaml-cpp/yaml.h"

namespace meshtel::exporters {
namespace {

absl::StatusOr<GrpcTlsConfig> Read(const std::string& yaml) {
  common::YamlMap map(YAML::Load(yaml), "exporters[0].jaeger");
  absl::StatusOr<GrpcTlsConfig> tls = ReadGrpcTls(map);
  if (!tls.ok()) return tls;
  if (absl::Status finished = map.Finish(); !finished.ok()) return finished;
  return tls;
}

TEST(ReadGrpcTlsTest, AbsentOrDisabledIsPlaintext) {
  absl::StatusOr<GrpcTlsConfig> absent = Read("{}");
  ASSERT_TRUE(absent.ok()) << absent.status();
  EXPECT_FALSE(absent->enabled);
  absl::StatusOr<GrpcTlsConfig> disabled = Read("{tls: {enabled: false}}");
  ASSERT_TRUE(disabled.ok()) << disabled.status();
  EXPECT_FALSE(disabled->enabled);
}

TEST(ReadGrpcTlsTest, EnabledWithoutFilesUsesTheDefaultRoots) {
  absl::StatusOr<GrpcTlsConfig> tls = Read("{tls: {enabled: true, server_name: tempo.example}}");
  ASSERT_TRUE(tls.ok()) << tls.status();
  EXPECT_TRUE(tls->enabled);
  EXPECT_EQ(tls->ca_pem, "");
  EXPECT_EQ(tls->server_name, "tempo.example");
}

TEST(ReadGrpcTlsTest, TheFilesAreReadWhenTheConfigLoads) {
  const std::string dir = testing::MakeTempDir("meshtel-grpc-tls");
  const testing::TestCertificates certificates = testing::MakeTestCertificates(dir);
  if (!certificates.unavailable.empty()) GTEST_SKIP() << certificates.unavailable;
  absl::StatusOr<GrpcTlsConfig> tls =
      Read("{tls: {enabled: true, ca_file: '" + certificates.ca_file + "', cert_file: '" +
           certificates.client_cert_file + "', key_file: '" + certificates.client_key_file + "'}}");
  ASSERT_TRUE(tls.ok()) << tls.status();
  EXPECT_EQ(tls->ca_pem, certificates.ca_pem);
  EXPECT_EQ(tls->cert_pem, certificates.client_cert_pem);
  EXPECT_EQ(tls->key_pem, certificates.client_key_pem);
}

TEST(ReadGrpcTlsTest, ErrorsNameTheField) {
  const std::string dir = testing::MakeTempDir("meshtel-grpc-tls");
  testing::WriteFile(dir + "/not.pem", "hello");
  const auto error = [](const std::string& yaml) {
    absl::StatusOr<GrpcTlsConfig> tls = Read(yaml);
    EXPECT_FALSE(tls.ok()) << yaml;
    return tls.ok() ? std::string() : std::string(tls.status().message());
  };
  EXPECT_EQ(error("{tls: {enabled: true, ca_file: /nonexistent/ca.pem}}"),
            "exporters[0].jaeger.tls.ca_file: cannot read '/nonexistent/ca.pem': No such file or "
            "directory");
  EXPECT_EQ(
      error("{tls: {enabled: true, ca_file: '" + dir + "/not.pem'}}"),
      "exporters[0].jaeger.tls.ca_file: '" + dir + "/not.pem' holds no PEM block (-----BEGIN ...)");
  EXPECT_EQ(error("{tls: {enabled: true, cert_file: /a.pem}}"),
            "exporters[0].jaeger.tls.key_file: is required with cert_file (mutual TLS needs both)");
  EXPECT_EQ(error("{tls: {ca_file: /a.pem}}"),
            "exporters[0].jaeger.tls.enabled: is false, but the block sets files or a server "
            "name: set 'enabled: true' to use TLS");
  EXPECT_NE(error("{tls: {enabled: true, verify: false}}").find("exporters[0].jaeger.tls"),
            std::string::npos);
  EXPECT_NE(error("{tls: 'yes'}").find("exporters[0].jaeger.tls"), std::string::npos);
}

}  // namespace
}  // namespace meshtel::exporters
