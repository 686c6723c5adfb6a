#include "collector/collector.h"

// Tested by: tests/e2e/mesh_prometheus_test.cc

#include <utility>

#include "prometheus/text_serializer.h"
#include "spdlog/spdlog.h"

namespace meshtel::collector {

Collector::Collector(const CollectorConfig& config)
    : config_(config), registry_(std::make_shared<prometheus::Registry>()) {}

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
    return self->RenderMetrics(request);
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

common::AdminResponse Collector::RenderMetrics(const common::AdminRequest&) const {
  common::AdminResponse response;
  response.content_type = "text/plain; version=0.0.4; charset=utf-8";
  request_metrics_.RenderText(response.body);
  response.body += prometheus::TextSerializer().Serialize(registry_->Collect());
  return response;
}

absl::Status Collector::Shutdown() {
  ready_.store(false);
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
