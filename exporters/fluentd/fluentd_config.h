#pragma once
// FluentdConfig: the `fluentd:` block of one exporter (exporters[i].fluentd), parsed by
// ParseFluentdConfig() in fluentd_exporter.h. Each field carries its default in the declaration;
// docs/configuration.md lists the same defaults. A plain value type.

#include <cstdint>
#include <string>

#include "absl/time/time.h"
#include "collector/common/host_port.h"

namespace meshtel::exporters::fluentd {

// The forward protocol's default port, used when `address` names no port.
inline constexpr uint16_t kDefaultForwardPort = 24224;

enum class FluentdCompression { kNone, kGzip };
enum class FluentdRecordFormat { kFields, kLine };

struct FluentdConfig {
  // The Fluentd (or Fluent Bit) forward input: "host", "host:port", "[v6]:port". Required.
  common::HostPort address;
  // The tag of the access-log events (request records). Default: meshtel.access
  std::string tag = "meshtel.access";
  // The tag of the events of received (OTLP) log records. Default: meshtel.log
  std::string received_log_tag = "meshtel.log";
  // none: PackedForward; gzip: CompressedPackedForward. Default: none
  FluentdCompression compression = FluentdCompression::kNone;
  // Ask for an acknowledgement of every payload (the `chunk` option) and wait for it; without
  // it a payload counts as delivered once written to the socket. Default: true
  bool require_ack = true;
  // The most one Send() takes: connecting, the handshake, writing and waiting for the ack.
  // Default: 10s
  absl::Duration timeout = absl::Seconds(10);
  // The secure-forward handshake: set when the server has `<security> shared_key`. Default: ""
  // (no handshake).
  std::string shared_key;
  // The client host name sent in the handshake. Default: this machine's host name.
  std::string self_hostname;
  // User authentication in the handshake (the server's `user_auth`). Default: "" (none).
  std::string username;
  std::string password;
  // fields: one typed key per record field; line: one key holding the access-log line.
  // Default: fields
  FluentdRecordFormat record_format = FluentdRecordFormat::kFields;
  // record_format line: the key of the line. Default: message
  std::string line_key = "message";
};

}  // namespace meshtel::exporters::fluentd
