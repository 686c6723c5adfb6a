#include "collector/common/tls_config.h"

#include <string>

#include "gtest/gtest.h"
#include "tests/support/process.h"
#include "tests/support/test_certificates.h"
#include "yaml-cpp/yaml.h"

namespace meshtel::common {
namespace {

// Reads the `tls:` block as a gRPC exporter does (`enabled` switches TLS).
absl::StatusOr<TlsConfig> Read(const std::string& yaml) {
  YamlMap map(YAML::Load(yaml), "exporters[0].jaeger");
  absl::StatusOr<TlsConfig> tls = ReadTlsConfig(map);
  if (!tls.ok()) return tls;
  if (absl::Status finished = map.Finish(); !finished.ok()) return finished;
  return tls;
}

// Reads it as an HTTP exporter does (the `url` scheme switches TLS).
absl::StatusOr<TlsConfig> ReadForUrl(const std::string& yaml, bool https) {
  YamlMap map(YAML::Load(yaml), "exporters[0].loki");
  absl::StatusOr<TlsConfig> tls = ReadUrlTlsConfig(map, "url", https);
  if (!tls.ok()) return tls;
  if (absl::Status finished = map.Finish(); !finished.ok()) return finished;
  return tls;
}

std::string ErrorOf(const absl::StatusOr<TlsConfig>& tls) {
  EXPECT_FALSE(tls.ok());
  return tls.ok() ? std::string() : std::string(tls.status().message());
}

TEST(ReadTlsConfigTest, AbsentOrDisabledIsPlaintext) {
  absl::StatusOr<TlsConfig> absent = Read("{}");
  ASSERT_TRUE(absent.ok()) << absent.status();
  EXPECT_FALSE(absent->enabled);
  absl::StatusOr<TlsConfig> disabled = Read("{tls: {enabled: false}}");
  ASSERT_TRUE(disabled.ok()) << disabled.status();
  EXPECT_FALSE(disabled->enabled);
}

TEST(ReadTlsConfigTest, EnabledWithoutFilesUsesTheDefaultRoots) {
  absl::StatusOr<TlsConfig> tls = Read("{tls: {enabled: true, server_name: tempo.example}}");
  ASSERT_TRUE(tls.ok()) << tls.status();
  EXPECT_TRUE(tls->enabled);
  EXPECT_EQ(tls->ca_pem, "");
  EXPECT_EQ(tls->server_name, "tempo.example");
}

TEST(ReadTlsConfigTest, TheFilesAreReadWhenTheConfigLoads) {
  const std::string dir = testing::MakeTempDir("meshtel-tls-config");
  const testing::TestCertificates certificates = testing::MakeTestCertificates(dir);
  if (!certificates.unavailable.empty()) GTEST_SKIP() << certificates.unavailable;
  absl::StatusOr<TlsConfig> tls =
      Read("{tls: {enabled: true, ca_file: '" + certificates.ca_file + "', cert_file: '" +
           certificates.client_cert_file + "', key_file: '" + certificates.client_key_file + "'}}");
  ASSERT_TRUE(tls.ok()) << tls.status();
  EXPECT_EQ(tls->ca_pem, certificates.ca_pem);
  EXPECT_EQ(tls->cert_pem, certificates.client_cert_pem);
  EXPECT_EQ(tls->key_pem, certificates.client_key_pem);
}

TEST(ReadTlsConfigTest, ErrorsNameTheField) {
  const std::string dir = testing::MakeTempDir("meshtel-tls-config");
  testing::WriteFile(dir + "/not.pem", "hello");
  EXPECT_EQ(ErrorOf(Read("{tls: {enabled: true, ca_file: /nonexistent/ca.pem}}")),
            "exporters[0].jaeger.tls.ca_file: cannot read '/nonexistent/ca.pem': No such file or "
            "directory");
  EXPECT_EQ(
      ErrorOf(Read("{tls: {enabled: true, ca_file: '" + dir + "/not.pem'}}")),
      "exporters[0].jaeger.tls.ca_file: '" + dir + "/not.pem' holds no PEM block (-----BEGIN ...)");
  EXPECT_EQ(ErrorOf(Read("{tls: {enabled: true, cert_file: /a.pem}}")),
            "exporters[0].jaeger.tls.key_file: is required with cert_file (mutual TLS needs both)");
  EXPECT_EQ(ErrorOf(Read("{tls: {ca_file: /a.pem}}")),
            "exporters[0].jaeger.tls.enabled: is false, but the block sets files or a server "
            "name: set 'enabled: true' to use TLS");
  EXPECT_NE(ErrorOf(Read("{tls: {enabled: true, verify: false}}")).find("exporters[0].jaeger.tls"),
            std::string::npos);
  EXPECT_NE(ErrorOf(Read("{tls: 'yes'}")).find("exporters[0].jaeger.tls"), std::string::npos);
}

TEST(ReadUrlTlsConfigTest, AnHttpsUrlIsTlsWithOrWithoutABlock) {
  absl::StatusOr<TlsConfig> bare = ReadForUrl("{}", /*https=*/true);
  ASSERT_TRUE(bare.ok()) << bare.status();
  EXPECT_TRUE(bare->enabled);
  EXPECT_EQ(bare->ca_pem, "");
  absl::StatusOr<TlsConfig> named = ReadForUrl("{tls: {server_name: loki.example}}", true);
  ASSERT_TRUE(named.ok()) << named.status();
  EXPECT_TRUE(named->enabled);
  EXPECT_EQ(named->server_name, "loki.example");
  absl::StatusOr<TlsConfig> explicit_on = ReadForUrl("{tls: {enabled: true}}", true);
  ASSERT_TRUE(explicit_on.ok()) << explicit_on.status();
  EXPECT_TRUE(explicit_on->enabled);
}

TEST(ReadUrlTlsConfigTest, AnHttpUrlIsPlaintext) {
  absl::StatusOr<TlsConfig> bare = ReadForUrl("{}", /*https=*/false);
  ASSERT_TRUE(bare.ok()) << bare.status();
  EXPECT_FALSE(bare->enabled);
  absl::StatusOr<TlsConfig> off = ReadForUrl("{tls: {enabled: false}}", false);
  ASSERT_TRUE(off.ok()) << off.status();
  EXPECT_FALSE(off->enabled);
}

TEST(ReadUrlTlsConfigTest, TheFilesOfAnHttpsUrlAreRead) {
  const std::string dir = testing::MakeTempDir("meshtel-tls-config");
  const testing::TestCertificates certificates = testing::MakeTestCertificates(dir);
  if (!certificates.unavailable.empty()) GTEST_SKIP() << certificates.unavailable;
  absl::StatusOr<TlsConfig> tls = ReadForUrl(
      "{tls: {ca_file: '" + certificates.ca_file + "', cert_file: '" +
          certificates.client_cert_file + "', key_file: '" + certificates.client_key_file + "'}}",
      /*https=*/true);
  ASSERT_TRUE(tls.ok()) << tls.status();
  EXPECT_TRUE(tls->enabled);
  EXPECT_EQ(tls->ca_pem, certificates.ca_pem);
  EXPECT_EQ(tls->cert_pem, certificates.client_cert_pem);
  EXPECT_EQ(tls->key_pem, certificates.client_key_pem);
}

TEST(ReadUrlTlsConfigTest, ErrorsNameTheField) {
  EXPECT_EQ(ErrorOf(ReadForUrl("{tls: {enabled: true}}", /*https=*/false)),
            "exporters[0].loki.tls.enabled: is true, but exporters[0].loki.url is an http:// URL: "
            "use https:// for TLS");
  EXPECT_EQ(ErrorOf(ReadForUrl("{tls: {enabled: false}}", /*https=*/true)),
            "exporters[0].loki.tls.enabled: is false, but exporters[0].loki.url is an https:// "
            "URL (always TLS): use http:// for plaintext");
  EXPECT_EQ(ErrorOf(ReadForUrl("{tls: {ca_file: /a.pem}}", /*https=*/false)),
            "exporters[0].loki.tls: sets files or a server name, but exporters[0].loki.url is an "
            "http:// URL: use https:// for TLS");
  EXPECT_EQ(ErrorOf(ReadForUrl("{tls: {ca_file: /nonexistent/ca.pem}}", /*https=*/true)),
            "exporters[0].loki.tls.ca_file: cannot read '/nonexistent/ca.pem': No such file or "
            "directory");
  EXPECT_EQ(ErrorOf(ReadForUrl("{tls: {key_file: /a.key}}", /*https=*/true)),
            "exporters[0].loki.tls.cert_file: is required with key_file (mutual TLS needs both)");
  EXPECT_EQ(ErrorOf(ReadForUrl("{tls: {insecure_skip_verify: true}}", /*https=*/true)),
            "exporters[0].loki.tls.insecure_skip_verify: unknown key");
}

}  // namespace
}  // namespace meshtel::common
