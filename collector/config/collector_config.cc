#include "collector/config/collector_config.h"

#include "absl/strings/str_cat.h"
#include "collector/common/program.h"
#include "collector/common/yaml_map.h"

namespace meshtel::collector {

absl::Status IngestConfig::Validate() const {
  if (max_batch_bytes < 1024 || max_batch_bytes > (256ull << 20)) {
    return absl::InvalidArgumentError(
        absl::StrCat("ingest.max_batch_bytes: ", max_batch_bytes, " is not in [1024, 268435456]"));
  }
  return absl::OkStatus();
}

absl::Status StoreConfig::Validate() const {
  if (data_dir.empty()) {
    return absl::InvalidArgumentError("store.data_dir: must not be empty");
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
  return absl::OkStatus();
}

absl::Status CollectorConfig::Validate() const {
  if (!common::IsLogLevel(log_level)) {
    return absl::InvalidArgumentError(
        absl::StrCat("log_level: '", log_level,
                     "' is not one of trace, debug, info, warn, error, critical, off"));
  }
  if (ingest.listen == admin.listen && ingest.listen.port != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("admin.listen: ", admin.listen.ToString(), " is already ingest.listen"));
  }
  if (!common::IsIpAddress(admin.listen.host)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "admin.listen: '", admin.listen.host, "' is not an IP address (listeners bind addresses)"));
  }
  if (absl::Status status = ingest.Validate(); !status.ok()) return status;
  if (absl::Status status = metrics.Validate(); !status.ok()) return status;
  return store.Validate();
}

absl::StatusOr<CollectorConfig> ParseCollectorConfig(const YAML::Node& root) {
  CollectorConfig config;
  common::YamlMap top(root, "");
  top.Read("log_level", config.log_level);
  top.Read("shutdown_grace", config.shutdown_grace);
  if (auto ingest = top.Map("ingest")) {
    ingest->Read("listen", config.ingest.listen);
    ingest->Read("max_batch_bytes", config.ingest.max_batch_bytes);
    top.Fail(ingest->Finish());
  }
  if (auto admin = top.Map("admin")) {
    admin->Read("listen", config.admin.listen);
    top.Fail(admin->Finish());
  }
  if (auto store = top.Map("store")) {
    store->Read("data_dir", config.store.data_dir);
    top.Fail(store->Finish());
  }
  if (auto metrics = top.Map("metrics")) {
    metrics->Read("max_series_per_metric", config.metrics.max_series_per_metric);
    metrics->Read("series_idle_timeout", config.metrics.series_idle_timeout);
    top.Fail(metrics->Finish());
  }
  if (absl::Status status = top.Finish(); !status.ok()) return status;
  if (absl::Status status = config.Validate(); !status.ok()) return status;
  return config;
}

absl::StatusOr<CollectorConfig> LoadCollectorConfig(const std::string& file_path) {
  return common::LoadConfigFile<CollectorConfig>(file_path, &ParseCollectorConfig);
}

}  // namespace meshtel::collector
