#include "exporters/exporter_registry.h"

#include "absl/strings/str_cat.h"
#include "exporters/fluentd/fluentd_exporter.h"
#include "exporters/jaeger/jaeger_exporter.h"
#include "exporters/loki/loki_exporter.h"
#include "exporters/otlp/otlp_exporter.h"

namespace meshtel::exporters {

absl::StatusOr<collector::Exporter> BuildExporter(const collector::ExporterConfig& config,
                                                  const collector::AccessLogLines& lines,
                                                  prometheus::Registry& registry) {
  if (config.type == "loki") return BuildLokiExporter(config, lines);
  if (config.type == "fluentd") return fluentd::BuildFluentdExporter(config, lines);
  if (config.type == "jaeger") return BuildJaegerExporter(config);
  if (config.type == "otlp") return BuildOtlpExporter(config, registry);
  return absl::InvalidArgumentError(
      absl::StrCat(config.settings_path.empty() ? std::string("exporters") : config.settings_path,
                   ": unknown exporter type '", config.type, "'"));
}

absl::Status ValidateExporters(const collector::CollectorConfig& config) {
  absl::StatusOr<collector::AccessLogFormat> line_format = config.access_log.Compile();
  if (!line_format.ok()) return line_format.status();
  prometheus::Registry registry;  // the exporters' metrics, discarded with them
  for (const collector::ExporterConfig& exporter : config.exporters) {
    absl::StatusOr<collector::Exporter> built = BuildExporter(exporter, *line_format, registry);
    if (!built.ok()) return built.status();
  }
  return absl::OkStatus();
}

}  // namespace meshtel::exporters
