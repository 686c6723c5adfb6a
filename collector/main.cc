// meshtel-collector: the central telemetry hub. See README.md and docs/configuration.md.

#include <cstdio>

#include "collector/collector.h"
#include "collector/common/program.h"
#include "collector/config/collector_config.h"
#include "exporters/exporter_registry.h"
#include "spdlog/spdlog.h"

namespace {

constexpr char kUsage[] =
    "Usage: meshtel-collector [--config FILE] [--help] [--version]\n"
    "\n"
    "Receives request records from meshtel-proxy sidecars, serves Istio-compatible metrics on\n"
    "the admin port (/metrics) and keeps its data in an embedded RocksDB store.\n"
    "Without --config every setting takes its default (docs/configuration.md).\n"
    "SIGTERM or SIGINT stops it cleanly; SIGHUP reloads the config and policy files\n"
    "(docs/policy.md).\n";

// The collector's config, with every exporter's own settings checked too (so a bad one is a
// configuration error, exit code 2, like any other).
absl::StatusOr<meshtel::collector::CollectorConfig> LoadConfig(const std::string& path) {
  absl::StatusOr<meshtel::collector::CollectorConfig> config =
      meshtel::collector::LoadCollectorConfig(path);
  if (!config.ok()) return config;
  if (absl::Status valid = meshtel::exporters::ValidateExporters(*config); !valid.ok()) {
    return valid;
  }
  return config;
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path;
  auto started = meshtel::common::StartProgram<meshtel::collector::CollectorConfig>(
      argc, argv, "meshtel-collector", kUsage, &LoadConfig, &config_path);
  if (const int* exit_code = std::get_if<int>(&started)) return *exit_code;
  const auto* config = &std::get<meshtel::collector::CollectorConfig>(started);
  spdlog::info("meshtel-collector {} starting", MESHTEL_VERSION);

  auto collector = meshtel::collector::Collector::Start(
      *config, &meshtel::exporters::BuildExporter,
      {.config_path = config_path, .load_config = &LoadConfig});
  if (!collector.ok()) {
    spdlog::critical("cannot start: {}", collector.status().ToString());
    return 1;
  }
  meshtel::collector::Collector* running = collector->get();
  const std::string signal_name =
      meshtel::common::WaitForTerminationSignal({}, [running] { running->Reload("SIGHUP"); });
  spdlog::info("{} received, shutting down", signal_name);
  if (absl::Status status = (*collector)->Shutdown(); !status.ok()) {
    spdlog::error("shutdown: {}", status.ToString());
    return 1;
  }
  spdlog::info("stopped");
  return 0;
}
