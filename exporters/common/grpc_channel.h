#pragma once
// The channel of a gRPC exporter (Jaeger, OTLP over gRPC): plaintext HTTP/2, or TLS when the
// exporter's `tls:` block enables it.
//
//   tls:
//     enabled: true              # default false: plaintext
//     ca_file: /etc/ca.pem       # roots that verify the server; default: gRPC's system roots
//     cert_file: /etc/client.pem # client certificate chain for mutual TLS, with key_file
//     key_file: /etc/client.key
//     server_name: tempo.example # the name the server certificate must hold; default: the
//                                # endpoint's host
//
// The files are read when the configuration loads, so a missing or unreadable file, a file
// that holds no PEM block, or a cert_file without key_file fails the start with the field's full
// path ("exporters[0].otlp.tls.ca_file: cannot read '/etc/ca.pem': No such file or directory").
// The server's certificate is always verified (there is no switch to skip it); a verification
// failure is a failed connection, which the exporter retries (UNAVAILABLE) with the gRPC error
// in its detail and last_error.
//
// Threading: pure functions. The channel they create is thread-safe (gRPC's).

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "collector/common/yaml_map.h"
#include "grpcpp/channel.h"

namespace meshtel::exporters {

struct GrpcTlsConfig {
  bool enabled = false;
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  std::string server_name;
  // The files' contents, read by ReadGrpcTls().
  std::string ca_pem;
  std::string cert_pem;
  std::string key_pem;
};

// Reads the optional `tls:` block of `map` (an exporter's settings) and the files it names.
// Absent: TLS off. Errors name the field's full path.
absl::StatusOr<GrpcTlsConfig> ReadGrpcTls(common::YamlMap& map);

// A channel to `target` ("host:port"): plaintext, or TLS as `tls` says.
std::shared_ptr<grpc::Channel> CreateExporterChannel(const std::string& target,
                                                     const GrpcTlsConfig& tls);

}  // namespace meshtel::exporters
