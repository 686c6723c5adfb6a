#pragma once
// TlsConfig: the `tls:` block every TLS client of the collector reads the same way — the gRPC
// exporters' channels (exporters/common/grpc_channel.h) and the HTTP client's users (the Loki
// exporter, the OTLP exporter over http/protobuf, Prometheus remote write):
//
//   tls:
//     enabled: true              # gRPC: default false (plaintext). HTTP: follows the URL's
//                                # scheme (https:// is TLS without a tls block)
//     ca_file: /etc/ca.pem       # roots that verify the server; default: the system's roots
//     cert_file: /etc/client.pem # client certificate chain for mutual TLS, with key_file
//     key_file: /etc/client.key
//     server_name: tempo.example # the name the server certificate must hold (and SNI);
//                                # default: the endpoint's host
//
// The files are read when the configuration loads, so a missing or unreadable file, a file
// that holds no PEM block, or a cert_file without key_file fails the start with the field's full
// path ("exporters[0].otlp.tls.ca_file: cannot read '/etc/ca.pem': No such file or directory").
// Unknown keys are refused. While TLS is off, setting files or a server name is an error (they
// would be ignored). The server's certificate is always verified: there is no key to skip it.
//
// Threading: pure functions, used while a config loads.

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "collector/common/yaml_map.h"

namespace meshtel::common {

struct TlsConfig {
  bool enabled = false;
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  std::string server_name;
  // The files' contents, read by ReadTlsConfig() / ReadUrlTlsConfig().
  std::string ca_pem;
  std::string cert_pem;
  std::string key_pem;
};

// Reads the optional `tls:` block of `map` (a client's settings) and the files it names, for a
// client whose TLS is switched by `enabled` (gRPC). Absent: TLS off. Errors name the field's
// full path.
absl::StatusOr<TlsConfig> ReadTlsConfig(YamlMap& map);

// The same for a client addressed by a URL (HTTP), whose scheme switches TLS: `https` says
// whether the URL under `url_key` of `map` is https://. With https the block's keys apply
// (enabled may be left out); `enabled: true` with an http:// URL, `enabled: false` with an
// https:// URL, and files or a server name with an http:// URL are errors naming the field.
absl::StatusOr<TlsConfig> ReadUrlTlsConfig(YamlMap& map, std::string_view url_key, bool https);

}  // namespace meshtel::common
