#include "collector/metrics/scrape_handler.h"

#include <string>

#include "collector/common/gzip.h"
#include "collector/metrics/exposition.h"
#include "prometheus/family.h"
#include "spdlog/spdlog.h"

namespace meshtel::collector {

ScrapeHandler::ScrapeHandler(const RequestMetrics& metrics, prometheus::Registry& registry)
    : metrics_(metrics), registry_(registry) {
  auto& family = prometheus::BuildCounter()
                     .Name("meshtel_metrics_scrapes_total")
                     .Help("Scrapes of /metrics, by the format and encoding negotiated.")
                     .Register(registry);
  for (int format = 0; format < 2; ++format) {
    for (int gzip = 0; gzip < 2; ++gzip) {
      scrapes_[format][gzip] = &family.Add({{"format", format == 0 ? "text" : "openmetrics"},
                                            {"encoding", gzip == 0 ? "identity" : "gzip"}});
    }
  }
}

common::AdminResponse ScrapeHandler::Serve(const common::AdminRequest& request) const {
  const ScrapeNegotiation negotiation = NegotiateScrape(request.accept, request.accept_encoding);
  const bool open_metrics = negotiation.format == ExpositionFormat::kOpenMetrics;
  scrapes_[open_metrics ? 1 : 0][negotiation.gzip ? 1 : 0]->Increment();

  common::AdminResponse response;
  response.content_type = std::string(ContentTypeOf(negotiation.format));
  const size_t last = last_body_bytes_.load(std::memory_order_relaxed);
  ReserveBody(response.body, last + last / 8 + 4096);
  metrics_.Render(negotiation.format, response.body);
  AppendPrometheusCppFamilies(negotiation.format, registry_.Collect(), response.body);
  if (open_metrics) response.body.append(kOpenMetricsEof);
  last_body_bytes_.store(response.body.size(), std::memory_order_relaxed);
  if (negotiation.gzip) {
    absl::StatusOr<std::string> compressed = meshtel::common::GzipCompress(response.body);
    if (compressed.ok()) {
      response.body = *std::move(compressed);
      response.content_encoding = "gzip";
    } else {
      spdlog::error("metrics: sending the scrape uncompressed: {}", compressed.status().ToString());
    }
  }
  return response;
}

}  // namespace meshtel::collector
