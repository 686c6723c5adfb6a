#pragma once
// The exporter registry: builds the Exporter (encoder + sender) for one `exporters:` entry by its
// type. This is what meshtel-collector hands to Collector::Start, and what checks the entries'
// own settings when the config loads.
//
// Errors: InvalidArgument naming the YAML path of the bad setting ("exporters[1].loki.url: is
// required"). Building opens no connection. Threading: pure functions.
// Exporters with metrics of their own (otlp) register them in `registry`, which must outlive
// the exporter; building the same exporter again reuses its series.

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "collector/config/collector_config.h"
#include "collector/delivery/exporter.h"
#include "collector/logs/access_log_format.h"
#include "collector/logs/access_log_routing.h"
#include "prometheus/registry.h"

namespace meshtel::exporters {

// `lines` routes and renders access-log lines (log exporters); spans exporters ignore it.
absl::StatusOr<collector::Exporter> BuildExporter(const collector::ExporterConfig& config,
                                                  const collector::AccessLogLines& lines,
                                                  prometheus::Registry& registry);

// Builds every exporter of `config` once and discards it: the config's exporter settings are
// valid when this returns OK.
absl::Status ValidateExporters(const collector::CollectorConfig& config);

}  // namespace meshtel::exporters
