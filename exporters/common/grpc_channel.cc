#include "exporters/common/grpc_channel.h"

// Tested by: tests/exporters/common/grpc_channel_test.cc

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <optional>

#include "fmt/format.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"

namespace meshtel::exporters {

namespace {

// Reads the PEM file at `file` (the value of `key` in `tls`) into `pem`; an error names the field.
absl::Status ReadPem(common::YamlMap& tls, const char* key, const std::string& file,
                     std::string& pem) {
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

}  // namespace

absl::StatusOr<GrpcTlsConfig> ReadGrpcTls(common::YamlMap& map) {
  GrpcTlsConfig config;
  std::optional<common::YamlMap> tls = map.Map("tls");
  if (!tls) return config;
  tls->Read("enabled", config.enabled);
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
  if (!config.enabled) {
    if (!config.ca_file.empty() || !config.cert_file.empty() || !config.server_name.empty()) {
      return absl::InvalidArgumentError(
          fmt::format("{}: is false, but the block sets files or a server name: set "
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

std::shared_ptr<grpc::Channel> CreateExporterChannel(const std::string& target,
                                                     const GrpcTlsConfig& tls) {
  if (!tls.enabled) return grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = tls.ca_pem;  // empty: gRPC's default roots
  options.pem_cert_chain = tls.cert_pem;
  options.pem_private_key = tls.key_pem;
  grpc::ChannelArguments arguments;
  if (!tls.server_name.empty()) {
    arguments.SetSslTargetNameOverride(tls.server_name);
  }
  return grpc::CreateCustomChannel(target, grpc::SslCredentials(options), arguments);
}

}  // namespace meshtel::exporters
