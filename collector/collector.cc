#include "collector/collector.h"

// Tested by: tests/e2e/mesh_prometheus_test.cc

#include <algorithm>
#include <chrono>
#include <utility>

#include "spdlog/spdlog.h"

namespace meshtel::collector {

Collector::Collector(const CollectorConfig& config)
    : config_(config),
      registry_(std::make_shared<prometheus::Registry>()),
      request_metrics_({.max_series_per_metric = config.metrics.max_series_per_metric,
                        .registry = registry_.get()}),
      scrape_handler_(request_metrics_, *registry_) {}

absl::StatusOr<std::unique_ptr<Collector>> Collector::Start(const CollectorConfig& config) {
  std::unique_ptr<Collector> collector(new Collector(config));
  absl::StatusOr<std::unique_ptr<RecordStore>> store =
      RecordStore::Open(config.store, *collector->registry_);
  if (!store.ok()) return store.status();
  collector->store_ = *std::move(store);

  absl::StatusOr<std::unique_ptr<RecordIngestServer>> ingest =
      RecordIngestServer::Start(config.ingest, *collector, *collector->registry_);
  if (!ingest.ok()) return ingest.status();
  collector->ingest_ = *std::move(ingest);

  Collector* self = collector.get();
  std::vector<std::pair<std::string, common::AdminHandler>> routes;
  routes.emplace_back("/metrics", [self](const common::AdminRequest& request) {
    return self->scrape_handler_.Serve(request);
  });
  routes.emplace_back("/healthz", [](const common::AdminRequest&) {
    return common::AdminResponse{.body = "ok\n"};
  });
  routes.emplace_back("/readyz", [self](const common::AdminRequest&) {
    if (self->ready_.load()) return common::AdminResponse{.body = "ready\n"};
    return common::AdminResponse{.status = 503, .body = "not ready\n"};
  });
  absl::StatusOr<std::unique_ptr<common::AdminHttpServer>> admin =
      common::AdminHttpServer::Start(config.admin.listen, std::move(routes));
  if (!admin.ok()) return admin.status();
  collector->admin_ = *std::move(admin);
  spdlog::info("admin listening on {}:{} (/metrics, /healthz, /readyz)", config.admin.listen.host,
               collector->admin_->port());
  if (config.metrics.series_idle_timeout > absl::ZeroDuration()) {
    collector->expiry_thread_ = std::thread([self] { self->ExpireSeriesLoop(); });
  }
  collector->ready_.store(true);
  return collector;
}

absl::StatusOr<InstanceProgress> Collector::LoadProgress(std::string_view instance_id) {
  return store_->LoadInstanceProgress(instance_id);
}

absl::Status Collector::Consume(const meshtel::v1::RecordBatch& batch,
                                const InstanceProgress& progress) {
  if (absl::Status stored = store_->AppendBatch(batch, progress); !stored.ok()) return stored;
  for (const meshtel::v1::RequestRecord& record : batch.records()) {
    request_metrics_.Record(record);
  }
  return absl::OkStatus();
}

void Collector::ExpireSeriesLoop() {
  const int64_t idle_ms = absl::ToInt64Milliseconds(config_.metrics.series_idle_timeout);
  const auto interval = std::chrono::milliseconds(std::clamp<int64_t>(idle_ms / 10, 1000, 60000));
  std::unique_lock<std::mutex> lock(expiry_mutex_);
  while (!expiry_wake_.wait_for(lock, interval, [this] { return stopping_; })) {
    lock.unlock();
    const size_t removed = request_metrics_.ExpireIdle(RequestMetrics::NowMs(), idle_ms);
    if (removed > 0) spdlog::debug("metrics: expired {} idle series", removed);
    lock.lock();
  }
}

absl::Status Collector::Shutdown() {
  ready_.store(false);
  {
    std::lock_guard<std::mutex> lock(expiry_mutex_);
    stopping_ = true;
  }
  expiry_wake_.notify_all();
  if (expiry_thread_.joinable()) expiry_thread_.join();
  if (ingest_ != nullptr) {
    ingest_->Shutdown(config_.shutdown_grace);
  }
  admin_.reset();
  absl::Status status = absl::OkStatus();
  if (store_ != nullptr) {
    status = store_->Close();
    store_.reset();
  }
  return status;
}

Collector::~Collector() {
  if (absl::Status status = Shutdown(); !status.ok()) {
    spdlog::error("shutdown: {}", status.ToString());
  }
}

}  // namespace meshtel::collector
