// meshtel-proxy: the sidecar. See README.md and docs/configuration.md.

#include <unistd.h>

#include <cstdio>
#include <random>

#include "collector/common/program.h"
#include "fmt/format.h"
#include "proxy/access_log/access_log_writer.h"
#include "proxy/admin/proxy_admin.h"
#include "proxy/config/proxy_config.h"
#include "proxy/http/proxy_server.h"
#include "proxy/policy/active_policy.h"
#include "proxy/policy/policy_subscriber.h"
#include "proxy/reporter/record_reporter.h"
#include "spdlog/spdlog.h"

namespace {

constexpr char kUsage[] =
    "Usage: meshtel-proxy [--config FILE] [--help] [--version]\n"
    "\n"
    "HTTP sidecar: forwards inbound traffic to the local app and outbound traffic to routed\n"
    "upstreams, adds x-request-id, and streams one record per request to meshtel-collector.\n"
    "Without --config every setting takes its default (docs/configuration.md).\n"
    "SIGTERM or SIGINT drains in-flight requests, flushes records and exits.\n"
    "SIGUSR1 reopens the access-log file (access_log.path) after a rotation by rename.\n"
    "With policy.enabled (the default) it subscribes to the collector's telemetry policy and\n"
    "applies each version it accepts without a restart.\n";

std::string DefaultInstanceId() {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  std::random_device random;
  return fmt::format("{}-{}-{:08x}", host[0] != '\0' ? host : "proxy", getpid(), random());
}

}  // namespace

int main(int argc, char** argv) {
  auto started = meshtel::common::StartProgram<meshtel::proxy::ProxyConfig>(
      argc, argv, "meshtel-proxy", kUsage, &meshtel::proxy::LoadProxyConfig);
  if (const int* exit_code = std::get_if<int>(&started)) return *exit_code;
  const auto* config = &std::get<meshtel::proxy::ProxyConfig>(started);
  const std::string instance_id =
      config->instance_id.empty() ? DefaultInstanceId() : config->instance_id;
  spdlog::info("meshtel-proxy {} starting as {} (workload {}.{})", MESHTEL_VERSION, instance_id,
               config->workload.name, config->workload.namespace_name);

  // The access log outlives the reporter, whose batcher thread writes into it.
  std::unique_ptr<meshtel::proxy::AccessLogWriter> access_log;
  if (!config->access_log.path.empty()) {
    auto opened = meshtel::proxy::AccessLogWriter::Open(config->access_log);
    if (!opened.ok()) {
      spdlog::critical("cannot start: {}", opened.status().ToString());
      return 1;
    }
    access_log = *std::move(opened);
    spdlog::info("access log to {}", access_log->path());
  }
  meshtel::proxy::RecordReporter reporter(config->reporter, instance_id, access_log.get());
  meshtel::proxy::PolicyHolder policy(meshtel::proxy::DefaultPolicy(*config));
  auto server = meshtel::proxy::ProxyServer::Start(*config, reporter, &policy);
  if (!server.ok()) {
    spdlog::critical("cannot start: {}", server.status().ToString());
    reporter.Shutdown(absl::ZeroDuration());
    return 1;
  }
  std::unique_ptr<meshtel::proxy::PolicySubscriber> subscriber;
  if (config->policy.enabled) {
    subscriber = std::make_unique<meshtel::proxy::PolicySubscriber>(
        *config, instance_id, policy, [&reporter](size_t index) {
          const auto collectors = reporter.collectors();
          return index < collectors.size() && collectors[index].connected;
        });
  }
  std::unique_ptr<meshtel::proxy::ProxyAdmin> admin;
  if (config->admin.enabled) {
    auto started = meshtel::proxy::ProxyAdmin::Start(config->admin.listen, **server, reporter,
                                                     access_log.get(), subscriber.get());
    if (!started.ok()) {
      spdlog::critical("cannot start: {}", started.status().ToString());
      (*server)->Shutdown();
      reporter.Shutdown(absl::ZeroDuration());
      return 1;
    }
    admin = *std::move(started);
    spdlog::info("admin on {}:{} (/stats/prometheus, /healthz/ready)", config->admin.listen.host,
                 admin->port());
  }
  const std::string signal_name = meshtel::common::WaitForTerminationSignal([&access_log] {
    if (access_log != nullptr) access_log->Reopen();
  });
  spdlog::info("{} received, draining", signal_name);
  if (subscriber != nullptr) subscriber->Stop();
  (*server)->Shutdown();
  const uint64_t lost = reporter.Shutdown(config->drain_timeout);
  if (access_log != nullptr) {
    access_log->Shutdown();
    spdlog::info("access log: {} lines written, {} dropped", access_log->written_lines(),
                 access_log->dropped_lines());
  }
  spdlog::info("stopped: {} records submitted, {} acknowledged, {} dropped, {} unsent",
               reporter.submitted_records(), reporter.acked_records(), reporter.dropped_records(),
               lost);
  return 0;
}
