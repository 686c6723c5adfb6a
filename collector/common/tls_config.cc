#include "collector/common/tls_config.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <optional>

#include "fmt/format.h"

namespace meshtel::common {

namespace {

// Reads the PEM file at `file` (the value of `key` in `tls`) into `pem`; an error names the field.
absl::Status ReadPem(YamlMap& tls, const char* key, const std::string& file, std::string& pem) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(
        fmt::format("{}: cannot read '{}': {}", tls.PathOf(key), file, std::strerror(errno)));
  }
  pem.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  if (pem.find("-----BEGIN ") == std::string::npos) {
    return absl::InvalidArgumentError(
        fmt::format("{}: '{}' holds no PEM block (-----BEGIN ...)", tls.PathOf(key), file));
  }
  return absl::OkStatus();
}

// What decides whether TLS is on.
struct Switch {
  bool by_url = false;  // HTTP: the URL's scheme; gRPC: the `enabled` key
  bool https = false;   // by_url: the URL is https://
  std::string url_path;
};

absl::StatusOr<TlsConfig> ReadTls(YamlMap& map, const Switch& on) {
  TlsConfig config;
  config.enabled = on.by_url && on.https;
  std::optional<YamlMap> tls = map.Map("tls");
  if (!tls) return config;
  const bool has_enabled = tls->Has("enabled");
  bool enabled = config.enabled;
  tls->Read("enabled", enabled);
  tls->Read("ca_file", config.ca_file);
  tls->Read("cert_file", config.cert_file);
  tls->Read("key_file", config.key_file);
  tls->Read("server_name", config.server_name);
  if (absl::Status status = tls->Finish(); !status.ok()) return status;
  if (config.cert_file.empty() != config.key_file.empty()) {
    const char* missing = config.cert_file.empty() ? "cert_file" : "key_file";
    return absl::InvalidArgumentError(
        fmt::format("{}: is required with {} (mutual TLS needs both)", tls->PathOf(missing),
                    config.cert_file.empty() ? "key_file" : "cert_file"));
  }
  if (on.by_url && has_enabled && enabled != on.https) {
    return absl::InvalidArgumentError(
        enabled ? fmt::format("{}: is true, but {} is an http:// URL: use https:// for TLS",
                              tls->PathOf("enabled"), on.url_path)
                : fmt::format("{}: is false, but {} is an https:// URL (always TLS): use "
                              "http:// for plaintext",
                              tls->PathOf("enabled"), on.url_path));
  }
  config.enabled = enabled;
  if (!config.enabled) {
    if (!config.ca_file.empty() || !config.cert_file.empty() || !config.server_name.empty()) {
      return absl::InvalidArgumentError(
          on.by_url ? fmt::format("{}: sets files or a server name, but {} is an http:// URL: "
                                  "use https:// for TLS",
                                  map.PathOf("tls"), on.url_path)
                    : fmt::format("{}: is false, but the block sets files or a server name: set "
                                  "'enabled: true' to use TLS",
                                  tls->PathOf("enabled")));
    }
    return config;
  }
  const struct {
    const char* key;
    const std::string& file;
    std::string& pem;
  } files[] = {{"ca_file", config.ca_file, config.ca_pem},
               {"cert_file", config.cert_file, config.cert_pem},
               {"key_file", config.key_file, config.key_pem}};
  for (const auto& [key, file, pem] : files) {
    if (file.empty()) continue;
    if (absl::Status status = ReadPem(*tls, key, file, pem); !status.ok()) return status;
  }
  return config;
}

}  // namespace

absl::StatusOr<TlsConfig> ReadTlsConfig(YamlMap& map) { return ReadTls(map, Switch{}); }

absl::StatusOr<TlsConfig> ReadUrlTlsConfig(YamlMap& map, std::string_view url_key, bool https) {
  return ReadTls(map, Switch{.by_url = true, .https = https, .url_path = map.PathOf(url_key)});
}

}  // namespace meshtel::common
