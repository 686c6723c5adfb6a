#pragma once
// The Fluentd forward-protocol exporter: its configuration block and its factory.
//
// BuildFluentdExporter() reads `exporters[i].fluentd` (ExporterConfig::settings) and returns the
// Exporter the delivery engine runs: a FluentdEncoder and a FluentdSender. It opens no
// connection; the sender connects on its first Send().
// Errors: InvalidArgument naming the YAML path and the value ("exporters[0].fluentd.address:
// required", "exporters[0].fluentd.compresion: unknown key").
// Threading: none (called while the configuration loads).

#include <string>

#include "absl/status/statusor.h"
#include "collector/config/collector_config.h"
#include "collector/delivery/exporter.h"
#include "collector/logs/access_log_format.h"
#include "collector/logs/access_log_routing.h"
#include "exporters/fluentd/fluentd_config.h"
#include "yaml-cpp/yaml.h"

namespace meshtel::exporters::fluentd {

// Parses and checks the `fluentd:` block found at `path` (a null or absent node is an empty
// block, which lacks the required address).
absl::StatusOr<FluentdConfig> ParseFluentdConfig(const YAML::Node& settings,
                                                 const std::string& path);

// The exporter for `config` (type "fluentd"); `lines` says per record whether this exporter
// delivers it and renders it for record_format `line` (the telemetry policy, or the collector's
// access_log format for every record); it is copied.
absl::StatusOr<collector::Exporter> BuildFluentdExporter(const collector::ExporterConfig& config,
                                                         const collector::AccessLogLines& lines);

}  // namespace meshtel::exporters::fluentd
