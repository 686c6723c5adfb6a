#pragma once
// ScrapeHandler: the collector's /metrics endpoint.
//
// Answers a scrape with Istio's metrics (RequestMetrics) followed by the collector's own
// meshtel_* metrics (a prometheus-cpp registry), in the format the scraper's `Accept` prefers:
// Prometheus text 0.0.4 by default, OpenMetrics 1.0.0 (ended by "# EOF") when asked for, gzip
// when `Accept-Encoding` allows it (exposition.h has the negotiation rules). Every scrape is
// counted in meshtel_metrics_scrapes_total{format, encoding}.
//
// Threading: Serve() may run on any thread, concurrently with RequestMetrics::Record(); the
// body is rendered from snapshots (see RequestMetrics) into one buffer sized from the previous
// scrape. Errors: when gzip fails the body is sent
// uncompressed and the failure logged; Serve() itself always answers 200.
// Ownership: `metrics` and `registry` must outlive the handler.

#include <array>
#include <atomic>
#include <cstddef>

#include "collector/common/admin_http_server.h"
#include "collector/metrics/request_metrics.h"
#include "prometheus/counter.h"
#include "prometheus/registry.h"

namespace meshtel::collector {

class ScrapeHandler {
 public:
  // Registers meshtel_metrics_scrapes_total in `registry`.
  ScrapeHandler(const RequestMetrics& metrics, prometheus::Registry& registry);

  common::AdminResponse Serve(const common::AdminRequest& request) const;

 private:
  const RequestMetrics& metrics_;
  const prometheus::Registry& registry_;
  // [format][gzip]: text/identity, text/gzip, openmetrics/identity, openmetrics/gzip.
  std::array<std::array<prometheus::Counter*, 2>, 2> scrapes_{};
  // The uncompressed size of the last body: the next one is allocated at once at about that
  // size instead of growing (and copying) its way there.
  mutable std::atomic<size_t> last_body_bytes_{0};
};

}  // namespace meshtel::collector
