#include "collector/config/collector_config.h"

#include <cctype>
#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "collector/common/program.h"
#include "collector/common/yaml_map.h"

namespace meshtel::collector {

absl::Status OtlpReceiverConfig::Validate() const {
  if (max_request_bytes < 1024 || max_request_bytes > (1ull << 30)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ingest.otlp.max_request_bytes: ", max_request_bytes, " is not in [1024, 1073741824]"));
  }
  if (!common::IsIpAddress(grpc_listen.host)) {
    return absl::InvalidArgumentError(
        absl::StrCat("ingest.otlp.grpc_listen: '", grpc_listen.host,
                     "' is not an IP address (listeners bind addresses)"));
  }
  if (!common::IsIpAddress(http_listen.host)) {
    return absl::InvalidArgumentError(
        absl::StrCat("ingest.otlp.http_listen: '", http_listen.host,
                     "' is not an IP address (listeners bind addresses)"));
  }
  if (enabled && grpc_listen == http_listen && grpc_listen.port != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("ingest.otlp.http_listen: ", http_listen.ToString(),
                     " is already ingest.otlp.grpc_listen"));
  }
  return absl::OkStatus();
}

absl::Status AlsConfig::Validate() const {
  if (max_message_bytes < 1024 || max_message_bytes > (256ull << 20)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ingest.als.max_message_bytes: ", max_message_bytes, " is not in [1024, 268435456]"));
  }
  if (enabled && !common::IsIpAddress(listen.host)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ingest.als.listen: '", listen.host, "' is not an IP address (listeners bind addresses)"));
  }
  return absl::OkStatus();
}

absl::Status IngestConfig::Validate() const {
  if (absl::Status status = als.Validate(); !status.ok()) return status;
  if (max_batch_bytes < 1024 || max_batch_bytes > (256ull << 20)) {
    return absl::InvalidArgumentError(
        absl::StrCat("ingest.max_batch_bytes: ", max_batch_bytes, " is not in [1024, 268435456]"));
  }
  return otlp.Validate();
}

absl::Status StoreConfig::Validate() const {
  if (data_dir.empty()) {
    return absl::InvalidArgumentError("store.data_dir: must not be empty");
  }
  if (max_age <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("store.max_age: must be positive");
  }
  if (max_bytes < (uint64_t{16} << 20)) {
    return absl::InvalidArgumentError(
        absl::StrCat("store.max_bytes: ", max_bytes, " is under 16 MiB (16777216)"));
  }
  if (retention_interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("store.retention_interval: must be positive");
  }
  if (durability != "fsync" && durability != "process") {
    return absl::InvalidArgumentError(
        absl::StrCat("store.durability: '", durability, "' is not one of fsync, process"));
  }
  return absl::OkStatus();
}

absl::Status ValidateExporter(const ExporterConfig& exporter, std::string_view path) {
  const std::string at(path);
  if (exporter.name.empty()) return absl::InvalidArgumentError(at + ".name: is required");
  for (char c : exporter.name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') {
      return absl::InvalidArgumentError(absl::StrCat(
          at, ".name: '", exporter.name, "' may hold only letters, digits, '-' and '_'"));
    }
  }
  if (exporter.type != "loki" && exporter.type != "fluentd" && exporter.type != "jaeger" &&
      exporter.type != "otlp") {
    return absl::InvalidArgumentError(
        absl::StrCat(at, ".type: '", exporter.type, "' is not one of loki, fluentd, jaeger, otlp"));
  }
  if (exporter.family != "logs" && exporter.family != "spans") {
    return absl::InvalidArgumentError(
        absl::StrCat(at, ".family: '", exporter.family, "' is not one of logs, spans"));
  }
  if (exporter.family != "spans" && (exporter.type == "jaeger" || exporter.type == "otlp")) {
    return absl::InvalidArgumentError(absl::StrCat(
        at, ".family: '", exporter.family, "': ", exporter.type == "otlp" ? "an otlp" : "a jaeger",
        " exporter delivers spans only"));
  }
  if (exporter.batch.max_records < 1 || exporter.batch.max_records > 100000) {
    return absl::InvalidArgumentError(absl::StrCat(
        at, ".batch.max_records: ", exporter.batch.max_records, " is not in [1, 100000]"));
  }
  if (exporter.batch.max_bytes < 1024) {
    return absl::InvalidArgumentError(
        absl::StrCat(at, ".batch.max_bytes: ", exporter.batch.max_bytes, " is under 1024"));
  }
  if (exporter.batch.max_wait < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(at + ".batch.max_wait: must not be negative");
  }
  if (exporter.retry.initial_backoff <= absl::ZeroDuration() ||
      exporter.retry.max_backoff < exporter.retry.initial_backoff) {
    return absl::InvalidArgumentError(
        at + ".retry: initial_backoff must be positive and not above max_backoff");
  }
  return absl::OkStatus();
}

absl::Status MetricsConfig::Validate() const {
  if (max_series_per_metric < 1 || max_series_per_metric > 10'000'000) {
    return absl::InvalidArgumentError(absl::StrCat(
        "metrics.max_series_per_metric: ", max_series_per_metric, " is not in [1, 10000000]"));
  }
  if (series_idle_timeout != absl::ZeroDuration() && series_idle_timeout < absl::Seconds(1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics.series_idle_timeout: ", absl::FormatDuration(series_idle_timeout),
                     " is neither 0 nor at least 1s"));
  }
  return CompileLabelPlans().status();
}

absl::StatusOr<MetricLabelPlans> MetricsConfig::CompileLabelPlans() const {
  return CompileMetricLabelPlans(overrides, keep_labels);
}

absl::Status CollectorConfig::Validate() const {
  for (size_t i = 0; i < exporters.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (exporters[i].name == exporters[j].name) {
        return absl::InvalidArgumentError(absl::StrCat(
            "exporters[", i, "].name: '", exporters[i].name, "' is already exporters[", j, "]"));
      }
    }
  }
  if (!common::IsLogLevel(log_level)) {
    return absl::InvalidArgumentError(
        absl::StrCat("log_level: '", log_level,
                     "' is not one of trace, debug, info, warn, error, critical, off"));
  }
  if (ingest.listen == admin.listen && ingest.listen.port != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("admin.listen: ", admin.listen.ToString(), " is already ingest.listen"));
  }
  if (ingest.als.enabled && ingest.als.listen.port != 0 &&
      (ingest.als.listen == ingest.listen || ingest.als.listen == admin.listen)) {
    return absl::InvalidArgumentError(
        absl::StrCat("ingest.als.listen: ", ingest.als.listen.ToString(),
                     " is already ingest.listen or admin.listen"));
  }
  if (!common::IsIpAddress(admin.listen.host)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "admin.listen: '", admin.listen.host, "' is not an IP address (listeners bind addresses)"));
  }
  if (absl::Status status = access_log.Validate(); !status.ok()) return status;
  if (absl::Status status = ingest.Validate(); !status.ok()) return status;
  if (absl::Status status = metrics.Validate(); !status.ok()) return status;
  if (absl::Status status = policy.Validate(); !status.ok()) return status;
  return store.Validate();
}

absl::Status PolicyConfig::Validate() const {
  if (watch_interval < absl::ZeroDuration() ||
      (watch_interval > absl::ZeroDuration() && watch_interval < absl::Milliseconds(100))) {
    return absl::InvalidArgumentError(
        absl::StrCat("policy.watch_interval: ", absl::FormatDuration(watch_interval),
                     " is neither 0 nor at least 100ms"));
  }
  return absl::OkStatus();
}

absl::StatusOr<CollectorConfig> ParseCollectorConfig(const YAML::Node& root) {
  CollectorConfig config;
  common::YamlMap top(root, "");
  top.Read("log_level", config.log_level);
  top.Read("shutdown_grace", config.shutdown_grace);
  if (auto ingest = top.Map("ingest")) {
    ingest->Read("listen", config.ingest.listen);
    ingest->Read("max_batch_bytes", config.ingest.max_batch_bytes);
    if (auto otlp = ingest->Map("otlp")) {
      otlp->Read("enabled", config.ingest.otlp.enabled);
      otlp->Read("grpc_listen", config.ingest.otlp.grpc_listen);
      otlp->Read("http_listen", config.ingest.otlp.http_listen);
      otlp->Read("max_request_bytes", config.ingest.otlp.max_request_bytes);
      ingest->Fail(otlp->Finish());
    }
    if (auto als = ingest->Map("als")) {
      als->Read("enabled", config.ingest.als.enabled);
      als->Read("listen", config.ingest.als.listen);
      als->Read("max_message_bytes", config.ingest.als.max_message_bytes);
      ingest->Fail(als->Finish());
    }
    top.Fail(ingest->Finish());
  }
  if (auto admin = top.Map("admin")) {
    admin->Read("listen", config.admin.listen);
    admin->Read("token", config.admin.token);
    top.Fail(admin->Finish());
  }
  if (auto store = top.Map("store")) {
    store->Read("data_dir", config.store.data_dir);
    store->Read("durability", config.store.durability);
    store->Read("max_age", config.store.max_age);
    store->Read("max_bytes", config.store.max_bytes);
    store->Read("retention_interval", config.store.retention_interval);
    top.Fail(store->Finish());
  }
  if (auto access_log = top.Map("access_log")) {
    ReadAccessLogFormat(*access_log, config.access_log);
    top.Fail(access_log->Finish());
  }
  for (common::YamlMap& entry : top.MapList("exporters")) {
    ExporterConfig exporter;
    entry.Read("name", exporter.name);
    entry.Read("type", exporter.type);
    entry.Read("family", exporter.family);
    if (!entry.Has("family") && (exporter.type == "jaeger" || exporter.type == "otlp")) {
      exporter.family = "spans";  // trace backends take spans only
    }
    if (auto batch = entry.Map("batch")) {
      batch->Read("max_records", exporter.batch.max_records);
      batch->Read("max_bytes", exporter.batch.max_bytes);
      batch->Read("max_wait", exporter.batch.max_wait);
      entry.Fail(batch->Finish());
    }
    if (auto retry = entry.Map("retry")) {
      retry->Read("initial_backoff", exporter.retry.initial_backoff);
      retry->Read("max_backoff", exporter.retry.max_backoff);
      entry.Fail(retry->Finish());
    }
    if (!exporter.type.empty()) {
      exporter.settings = entry.Node(exporter.type);
      exporter.settings_path = entry.PathOf(exporter.type);
    }
    const std::string path = entry.PathOf("");
    top.Fail(entry.Finish());
    top.Fail(ValidateExporter(exporter, path.substr(0, path.size() - 1)));
    config.exporters.push_back(std::move(exporter));
  }
  if (auto metrics = top.Map("metrics")) {
    metrics->Read("max_series_per_metric", config.metrics.max_series_per_metric);
    metrics->Read("series_idle_timeout", config.metrics.series_idle_timeout);
    ReadRemoteWriteConfigs(*metrics, config.metrics.remote_write);
    ReadMetricOverrides(*metrics, config.metrics.overrides, config.metrics.keep_labels);
    top.Fail(metrics->Finish());
  }
  ReadTracesConfig(top, config.traces);
  if (auto policy = top.Map("policy")) {
    policy->Read("file", config.policy.file);
    policy->Read("watch_interval", config.policy.watch_interval);
    top.Fail(policy->Finish());
  }
  if (absl::Status status = top.Finish(); !status.ok()) return status;
  if (absl::Status status = config.Validate(); !status.ok()) return status;
  return config;
}

absl::StatusOr<CollectorConfig> LoadCollectorConfig(const std::string& file_path) {
  return common::LoadConfigFile<CollectorConfig>(file_path, &ParseCollectorConfig);
}

}  // namespace meshtel::collector
