#include "proxy/admin/proxy_admin.h"

#include <string>

#include "prometheus/text_serializer.h"

namespace meshtel::proxy {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

MetricFamily Family(std::string name, std::string help, MetricType type) {
  MetricFamily family;
  family.name = std::move(name);
  family.help = std::move(help);
  family.type = type;
  return family;
}

void Add(MetricFamily& family, double value, std::vector<ClientMetric::Label> labels = {}) {
  ClientMetric metric;
  metric.label = std::move(labels);
  if (family.type == MetricType::Counter) {
    metric.counter.value = value;
  } else {
    metric.gauge.value = value;
  }
  family.metric.push_back(std::move(metric));
}

double Load(const std::atomic<uint64_t>& counter) {
  return static_cast<double>(counter.load(std::memory_order_relaxed));
}

}  // namespace

std::vector<MetricFamily> CollectProxyMetrics(const ProxyServer& server,
                                              const RecordReporter& reporter,
                                              const AccessLogWriter* access_log,
                                              const PolicySubscriber* policy) {
  const ProxyStats& stats = server.stats();
  MetricFamily requests = Family("meshtel_proxy_requests_total",
                                 "Requests handled, by listener direction.", MetricType::Counter);
  MetricFamily flagged =
      Family("meshtel_proxy_response_flags_total",
             "Requests that carried an Envoy response flag (UF, UT, NR, ...), by direction.",
             MetricType::Counter);
  MetricFamily opened = Family("meshtel_proxy_upstream_connections_opened_total",
                               "Upstream connections opened.", MetricType::Counter);
  MetricFamily reused =
      Family("meshtel_proxy_upstream_requests_on_reused_connections_total",
             "Upstream requests sent on a kept-alive connection.", MetricType::Counter);
  for (const auto& [direction, direction_stats] :
       {std::pair<const char*, const DirectionStats*>{"inbound", &stats.inbound},
        {"outbound", &stats.outbound}}) {
    Add(requests, Load(direction_stats->requests), {{"direction", direction}});
    for (size_t bit = 0; bit < direction_stats->flagged.size(); ++bit) {
      const double count = Load(direction_stats->flagged[bit]);
      if (count == 0) continue;
      Add(flagged, count,
          {{"direction", direction},
           {"response_flag", std::string(common::kResponseFlagCodes[bit])}});
    }
    Add(opened, Load(direction_stats->upstream_connections_opened), {{"direction", direction}});
    Add(reused, Load(direction_stats->upstream_requests_on_reused_connections),
        {{"direction", direction}});
  }
  std::vector<MetricFamily> families = {std::move(requests), std::move(flagged), std::move(opened),
                                        std::move(reused)};
  if (families[1].metric.empty()) families.erase(families.begin() + 1);

  const auto single = [&](const char* name, const char* help, MetricType type, double value) {
    MetricFamily family = Family(name, help, type);
    Add(family, value);
    families.push_back(std::move(family));
  };
  single("meshtel_proxy_active_requests", "Requests in flight now.", MetricType::Gauge,
         static_cast<double>(stats.active_requests.load(std::memory_order_relaxed)));
  single("meshtel_proxy_upstream_connections", "Upstream connections open now, in use or idle.",
         MetricType::Gauge, static_cast<double>(server.upstream_connections_open()));
  single("meshtel_proxy_upstream_connections_idle",
         "Upstream connections kept alive in the pools, waiting for a request.", MetricType::Gauge,
         static_cast<double>(server.upstream_connections_idle()));
  single("meshtel_proxy_invalid_trace_context_total",
         "Requests whose trace headers were malformed; each started a new trace.",
         MetricType::Counter, Load(stats.invalid_trace_contexts));
  single("meshtel_proxy_records_invalid_utf8_total",
         "Request records whose text (path, header values, identities) held bytes that are not "
         "UTF-8; each such byte was reported as U+FFFD.",
         MetricType::Counter, Load(stats.records_with_invalid_utf8));
  single("meshtel_proxy_records_submitted_total", "Request records handed to the reporter.",
         MetricType::Counter, static_cast<double>(reporter.submitted_records()));
  single("meshtel_proxy_records_acked_total", "Records the collector acknowledged.",
         MetricType::Counter, static_cast<double>(reporter.acked_records()));
  single("meshtel_proxy_records_dropped_total",
         "Records dropped because the reporter's buffer was full.", MetricType::Counter,
         static_cast<double>(reporter.dropped_records()));
  single("meshtel_proxy_records_rejected_total",
         "Records in batches the collector refused (malformed or too large).", MetricType::Counter,
         static_cast<double>(reporter.rejected_records()));
  single("meshtel_proxy_records_buffered_bytes",
         "Bytes of batches kept until the collector acknowledges them.", MetricType::Gauge,
         static_cast<double>(reporter.unacked_bytes()));
  single("meshtel_proxy_records_failed_over_total",
         "Unacknowledged records moved from a collector that was down to the others.",
         MetricType::Counter, static_cast<double>(reporter.failed_over_records()));
  MetricFamily connected =
      Family("meshtel_proxy_collector_connected",
             "1 while the record stream to the collector is open.", MetricType::Gauge);
  MetricFamily buffered = Family("meshtel_proxy_collector_buffered_bytes",
                                 "Bytes of batches kept for one collector until it acknowledges "
                                 "them.",
                                 MetricType::Gauge);
  for (const RecordReporter::CollectorStatus& status : reporter.collectors()) {
    Add(connected, status.connected ? 1 : 0, {{"collector", status.address}});
    Add(buffered, static_cast<double>(status.unacked_bytes), {{"collector", status.address}});
  }
  families.push_back(std::move(connected));
  families.push_back(std::move(buffered));
  if (access_log != nullptr) {
    MetricFamily lines = Family("meshtel_proxy_access_log_lines_total",
                                "Lines of the proxy's own access log: written, or dropped (buffer "
                                "full behind a slow disk, write error, record dropped before it).",
                                MetricType::Counter);
    Add(lines, static_cast<double>(access_log->written_lines()), {{"outcome", "written"}});
    Add(lines, static_cast<double>(access_log->dropped_lines()), {{"outcome", "dropped"}});
    families.push_back(std::move(lines));
  }
  if (policy != nullptr) {
    MetricFamily info =
        Family("meshtel_proxy_policy_info",
               "1, labelled with the version of the telemetry policy in force (\"\" "
               "before the collector sent one).",
               MetricType::Gauge);
    Add(info, 1, {{"version", policy->version()}});
    families.push_back(std::move(info));
    MetricFamily responses = Family("meshtel_proxy_policy_responses_total",
                                    "Policy responses from the collector: accepted (ack) or "
                                    "rejected (nack, the policy in force stays).",
                                    MetricType::Counter);
    Add(responses, static_cast<double>(policy->acks()), {{"result", "ack"}});
    Add(responses, static_cast<double>(policy->nacks()), {{"result", "nack"}});
    families.push_back(std::move(responses));
    single("meshtel_proxy_policy_connected", "1 while the policy stream to the collector is open.",
           MetricType::Gauge, policy->connected() ? 1 : 0);
  }
  return families;
}

absl::StatusOr<std::unique_ptr<ProxyAdmin>> ProxyAdmin::Start(const common::HostPort& listen,
                                                              const ProxyServer& server,
                                                              const RecordReporter& reporter,
                                                              const AccessLogWriter* access_log,
                                                              const PolicySubscriber* policy) {
  std::vector<std::pair<std::string, common::AdminHandler>> routes;
  routes.emplace_back("/stats/prometheus", [&server, &reporter, access_log,
                                            policy](const common::AdminRequest&) {
    return common::AdminResponse{.content_type = "text/plain; version=0.0.4; charset=utf-8",
                                 .body = prometheus::TextSerializer().Serialize(
                                     CollectProxyMetrics(server, reporter, access_log, policy))};
  });
  routes.emplace_back("/healthz/ready", [&server](const common::AdminRequest&) {
    if (server.draining()) return common::AdminResponse{.status = 503, .body = "draining\n"};
    return common::AdminResponse{.body = "ready\n"};
  });
  auto http = common::AdminHttpServer::Start(listen, std::move(routes),
                                             /*quick_routes=*/{"/healthz/ready"});
  if (!http.ok()) {
    return absl::Status(http.status().code(),
                        "admin.listen: " + std::string(http.status().message()));
  }
  return std::unique_ptr<ProxyAdmin>(new ProxyAdmin(*std::move(http)));
}

}  // namespace meshtel::proxy
