#pragma once
// Collector: meshtel-collector's parts wired together — the store, the record ingest server, the
// request-metrics aggregator and the admin HTTP server.
//
// Data path today: RecordIngestServer → Collector::Consume → RecordStore (durable, then acked)
// → RequestMetrics; the admin server renders /metrics from RequestMetrics plus the collector's
// own prometheus-cpp registry. A batch the store could not write is not counted in metrics
// either: the proxy resends it.
// Threading: Consume() runs on gRPC threads; admin handlers on the admin thread. Shutdown() is
// called once, from the main thread.

#include <atomic>
#include <memory>

#include "absl/status/statusor.h"
#include "collector/common/admin_http_server.h"
#include "collector/config/collector_config.h"
#include "collector/ingest/record_batch_sink.h"
#include "collector/ingest/record_ingest_server.h"
#include "collector/metrics/request_metrics.h"
#include "collector/store/record_store.h"
#include "prometheus/registry.h"

namespace meshtel::collector {

class Collector : public RecordBatchSink {
 public:
  // Opens the store, then starts the ingest and admin servers. Errors name the failing part.
  static absl::StatusOr<std::unique_ptr<Collector>> Start(const CollectorConfig& config);
  ~Collector() override;

  // Not ready, stop ingest (open streams get `shutdown_grace`), stop admin, close the store.
  absl::Status Shutdown();

  uint16_t ingest_port() const { return ingest_->port(); }
  uint16_t admin_port() const { return admin_->port(); }

  // RecordBatchSink
  absl::Status Consume(const meshtel::v1::RecordBatch& batch,
                       const InstanceProgress& progress) override;
  absl::StatusOr<InstanceProgress> LoadProgress(std::string_view instance_id) override;

 private:
  explicit Collector(const CollectorConfig& config);

  common::AdminResponse RenderMetrics(const common::AdminRequest& request) const;

  const CollectorConfig config_;
  std::shared_ptr<prometheus::Registry> registry_;
  RequestMetrics request_metrics_;
  std::unique_ptr<RecordStore> store_;
  std::unique_ptr<RecordIngestServer> ingest_;
  std::unique_ptr<common::AdminHttpServer> admin_;
  std::atomic<bool> ready_{false};
};

}  // namespace meshtel::collector
