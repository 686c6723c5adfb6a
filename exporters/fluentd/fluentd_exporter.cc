#include "exporters/fluentd/fluentd_exporter.h"

#include <unistd.h>

#include <array>
#include <memory>
#include <utility>

#include "absl/status/status.h"
#include "collector/common/yaml_map.h"
#include "exporters/fluentd/fluentd_encoder.h"
#include "exporters/fluentd/fluentd_sender.h"
#include "fmt/format.h"

namespace meshtel::exporters::fluentd {
namespace {

// "host", "[v6]" or a HostPort text; a missing port is the forward protocol's.
absl::StatusOr<common::HostPort> ParseAddress(const std::string& text) {
  if (!text.empty() && text.front() == '[' && text.back() == ']') {
    return common::HostPort{text.substr(1, text.size() - 2), kDefaultForwardPort};
  }
  if (!text.empty() && text.find(':') == std::string::npos) {
    return common::HostPort{text, kDefaultForwardPort};
  }
  absl::StatusOr<common::HostPort> parsed = common::ParseHostPort(text);
  if (!parsed.ok()) return parsed.status();
  if (parsed->port == 0) return absl::InvalidArgumentError("port 0 is not a destination port");
  return parsed;
}

std::string HostName() {
  std::array<char, 256> name{};
  if (gethostname(name.data(), name.size() - 1) != 0) return "localhost";
  return name.data();
}

}  // namespace

absl::StatusOr<FluentdConfig> ParseFluentdConfig(const YAML::Node& settings,
                                                 const std::string& path) {
  FluentdConfig config;
  common::YamlMap map(settings, path);
  auto fail = [&](std::string_view key, std::string_view what) {
    return absl::InvalidArgumentError(fmt::format("{}: {}", map.PathOf(key), what));
  };

  std::string address;
  std::string compression = "none";
  std::string record_format = "fields";
  map.Read("address", address);
  map.Read("tag", config.tag);
  map.Read("received_log_tag", config.received_log_tag);
  map.Read("compression", compression);
  map.Read("require_ack", config.require_ack);
  map.Read("timeout", config.timeout);
  map.Read("shared_key", config.shared_key);
  map.Read("self_hostname", config.self_hostname);
  map.Read("username", config.username);
  map.Read("password", config.password);
  map.Read("record_format", record_format);
  map.Read("line_key", config.line_key);
  if (absl::Status status = map.Finish(); !status.ok()) return status;

  if (address.empty()) return fail("address", "required (host:port of the forward input)");
  absl::StatusOr<common::HostPort> host_port = ParseAddress(address);
  if (!host_port.ok()) {
    return fail("address",
                fmt::format("'{}': {}", address, std::string(host_port.status().message())));
  }
  config.address = *std::move(host_port);
  if (config.tag.empty()) return fail("tag", "must not be empty");
  if (config.received_log_tag.empty()) return fail("received_log_tag", "must not be empty");
  if (compression == "none") {
    config.compression = FluentdCompression::kNone;
  } else if (compression == "gzip") {
    config.compression = FluentdCompression::kGzip;
  } else {
    return fail("compression", fmt::format("'{}' is not none or gzip", compression));
  }
  if (config.timeout <= absl::ZeroDuration()) {
    return fail("timeout",
                fmt::format("'{}' must be more than 0", absl::FormatDuration(config.timeout)));
  }
  if (record_format == "fields") {
    config.record_format = FluentdRecordFormat::kFields;
  } else if (record_format == "line") {
    config.record_format = FluentdRecordFormat::kLine;
  } else {
    return fail("record_format", fmt::format("'{}' is not fields or line", record_format));
  }
  if (config.line_key.empty()) return fail("line_key", "must not be empty");
  if (config.shared_key.empty()) {
    for (std::string_view key : {"self_hostname", "username", "password"}) {
      if (map.Has(key)) return fail(key, "only used with shared_key (the handshake)");
    }
  } else if (config.self_hostname.empty()) {
    config.self_hostname = HostName();
  }
  if (config.username.empty() != config.password.empty()) {
    return fail(config.username.empty() ? "username" : "password",
                "username and password go together");
  }
  return config;
}

absl::StatusOr<collector::Exporter> BuildFluentdExporter(const collector::ExporterConfig& config,
                                                         const collector::AccessLogLines& lines) {
  if (config.type != "fluentd") {
    return absl::InvalidArgumentError(
        fmt::format("exporter '{}' has type '{}', not fluentd", config.name, config.type));
  }
  const std::string path =
      config.settings_path.empty() ? std::string("fluentd") : config.settings_path;
  absl::StatusOr<FluentdConfig> fluentd = ParseFluentdConfig(config.settings, path);
  if (!fluentd.ok()) return fluentd.status();
  collector::Exporter exporter;
  exporter.name = config.name;
  exporter.type = config.type;
  exporter.family =
      config.family == "spans" ? collector::RecordFamily::kSpans : collector::RecordFamily::kLogs;
  exporter.encoder = std::make_unique<FluentdEncoder>(*fluentd, lines, config.name);
  exporter.sender = std::make_unique<FluentdSender>(*std::move(fluentd));
  return exporter;
}

}  // namespace meshtel::exporters::fluentd
