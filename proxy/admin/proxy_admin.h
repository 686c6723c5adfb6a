#pragma once
// ProxyAdmin: meshtel-proxy's own HTTP endpoints on the admin port.
//   /stats/prometheus  the proxy's metrics (text format 0.0.4), rendered at scrape time from
//                      ProxyStats, the pools and the reporter: the request path only bumps
//                      atomics
//   /healthz/ready     200 while serving, 503 once draining
// Threading: the admin server's own thread; it only reads atomics of the server and reporter,
// and of the access log and policy subscriber (when given), which must outlive the ProxyAdmin.

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "collector/common/admin_http_server.h"
#include "prometheus/metric_family.h"
#include "proxy/access_log/access_log_writer.h"
#include "proxy/http/proxy_server.h"
#include "proxy/policy/policy_subscriber.h"
#include "proxy/reporter/record_reporter.h"

namespace meshtel::proxy {

// The proxy's metric families, read from its counters now. `access_log` (the proxy's own access
// log, when on) adds meshtel_proxy_access_log_lines_total; `policy` (the policy subscription,
// when on) adds meshtel_proxy_policy_info{version}, meshtel_proxy_policy_responses_total{result}
// and meshtel_proxy_policy_connected.
std::vector<prometheus::MetricFamily> CollectProxyMetrics(
    const ProxyServer& server, const RecordReporter& reporter,
    const AccessLogWriter* access_log = nullptr, const PolicySubscriber* policy = nullptr);

class ProxyAdmin {
 public:
  static absl::StatusOr<std::unique_ptr<ProxyAdmin>> Start(
      const common::HostPort& listen, const ProxyServer& server, const RecordReporter& reporter,
      const AccessLogWriter* access_log = nullptr, const PolicySubscriber* policy = nullptr);
  uint16_t port() const { return http_->port(); }

 private:
  explicit ProxyAdmin(std::unique_ptr<common::AdminHttpServer> http) : http_(std::move(http)) {}
  std::unique_ptr<common::AdminHttpServer> http_;
};

}  // namespace meshtel::proxy
