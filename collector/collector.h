#pragma once
// Collector: meshtel-collector's parts wired together — the store, the record ingest server, the
// request-metrics aggregator and the admin HTTP server.
//
// Envoy ALS (ingest.als.enabled): AlsServer → Collector::Store (ReceivedRecordSink) → the same
// store and metrics as proxy records.
// Data path today: RecordIngestServer → Collector::Consume → RecordStore (durable, then acked)
// → RequestMetrics; the admin server renders /metrics from RequestMetrics plus the collector's
// own prometheus-cpp registry. A batch the store could not write is not counted in metrics
// either: the proxy resends it. The admin server answers /metrics with a ScrapeHandler
// (RequestMetrics plus the collector's own prometheus-cpp registry, in the negotiated format). A
// background thread expires idle metric series every tenth of metrics.series_idle_timeout (between
// 1 s and 1 min); none runs when it is 0. Threading: Consume() runs on gRPC threads; admin handlers
// on the admin thread. Shutdown() is called once, from the main thread.
// Metric overrides: metrics.overrides and metrics.keep_labels are compiled once into the
// RequestMetrics' label plans; GET /api/metrics/capture-headers answers the request headers they
// read ({"capture_request_headers":[...]}), which the proxies must capture.
// Telemetry policy: a PolicyEnforcer compiles each workload's policy once; request metrics count
// a record with its workload's label plans (not at all when its metrics providers leave out
// prometheus), the log exporters deliver and render its access-log line as its workload's side
// says, the trace pipeline builds its spans as its tracing policy says, and span exporters
// deliver the spans routed to them (span_routing.h).
// Remote write: each metrics.remote_write entry gets a RemoteWriter (its own thread) pushing the
// samples /metrics shows of RequestMetrics to a Prometheus remote write receiver.
// Policy distribution: PolicyServer serves meshtel.v1.PolicyService on the ingest port (the same
// gRPC server as RecordService); each proxy's node is resolved against policy_source() and
// converted (ToProxyPolicy, with metrics.overrides); every PolicySource change is pushed to the
// proxies whose policy it changes. GET /api/proxies shows every stream and the policy in force.

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "collector/common/admin_http_server.h"
#include "collector/config/collector_config.h"
#include "collector/config/config_reloader.h"
#include "collector/delivery/delivery_engine.h"
#include "collector/delivery/exporter.h"
#include "collector/delivery/replay.h"
#include "collector/ingest/als_server.h"
#include "collector/ingest/otlp_receiver.h"
#include "collector/ingest/received_record_sink.h"
#include "collector/ingest/record_batch_sink.h"
#include "collector/ingest/record_ingest_server.h"
#include "collector/logs/access_log_format.h"
#include "collector/logs/access_log_routing.h"
#include "collector/metrics/remote_write.h"
#include "collector/metrics/request_metrics.h"
#include "collector/metrics/scrape_handler.h"
#include "collector/policy/policy_enforcer.h"
#include "collector/policy/policy_server.h"
#include "collector/policy/policy_source.h"
#include "collector/store/record_store.h"
#include "collector/store/retention.h"
#include "collector/traces/trace_pipeline.h"
#include "prometheus/registry.h"

namespace meshtel::collector {

// Builds the Exporter for one `exporters:` entry (exporters/exporter_registry.h in the program;
// the collector library does not depend on the backends). `lines` routes and renders access-log
// lines (the telemetry policy per record); an exporter's own metrics go to `registry` (the
// collector's, served on /metrics).
using ExporterBuilder = std::function<absl::StatusOr<Exporter>(
    const ExporterConfig& config, const AccessLogLines& lines, prometheus::Registry& registry)>;

class Collector : public RecordBatchSink, public ReceivedRecordSink {
 public:
  // Opens the store, starts retention, builds the exporters with `build_exporter` and starts
  // their delivery, then the ingest and admin servers. Errors name the failing part.
  // The policy file (policy.file) is loaded first: an invalid one fails the start. `reload`
  // names the config file and its loader for hot reload (ConfigReloader; its check_policy and
  // apply_log_level are the collector's own); without a config path only the policy file is
  // followed.
  static absl::StatusOr<std::unique_ptr<Collector>> Start(
      const CollectorConfig& config, const ExporterBuilder& build_exporter = nullptr,
      ConfigReloaderOptions reload = {});
  ~Collector() override;

  // Not ready, stop ingest (open streams get `shutdown_grace`), stop delivery and retention,
  // stop admin, close the store.
  absl::Status Shutdown();

  uint16_t ingest_port() const { return ingest_->port(); }
  uint16_t admin_port() const { return admin_->port(); }
  // The OTLP receiver's ports (0 when ingest.otlp.enabled is false).
  uint16_t otlp_grpc_port() const { return otlp_ != nullptr ? otlp_->grpc_port() : 0; }
  uint16_t otlp_http_port() const { return otlp_ != nullptr ? otlp_->http_port() : 0; }
  // The Envoy ALS receiver's port; 0 when ingest.als.enabled is false.
  uint16_t als_port() const { return als_ == nullptr ? 0 : als_->port(); }
  std::vector<DeliveryStatus> exporter_statuses() const { return delivery_->statuses(); }
  // The telemetry policy in force (policy.file); replaced on reload. Lives as long as the
  // collector.
  PolicySource& policy_source() { return policy_source_; }
  // Reloads the config and policy files now (SIGHUP); see ConfigReloader.
  void Reload(std::string_view reason) { reloader_->ReloadNow(reason); }
  // The proxies' policy streams (PolicyService on the ingest port); GET /api/proxies.
  PolicyServer& policy_server() { return *policy_server_; }

  // RecordBatchSink
  absl::Status Consume(const meshtel::v1::RecordBatch& batch,
                       const InstanceProgress& progress) override;
  absl::Status ConsumeReceived(const meshtel::v1::RecordBatch& batch,
                               std::span<const std::string_view> record_bytes,
                               const InstanceProgress& progress) override;
  void CountStored(const meshtel::v1::RecordBatch& batch) override;
  absl::StatusOr<InstanceProgress> LoadProgress(std::string_view instance_id) override;
  // ReceivedRecordSink
  absl::Status Store(
      const google::protobuf::RepeatedPtrField<meshtel::v1::RequestRecord>& records) override;
  absl::Status StoreEncoded(std::span<const std::string_view> records) override;

 private:
  // Feeds the stored request records among `records` to the metrics aggregator.
  void CountRequests(const google::protobuf::RepeatedPtrField<meshtel::v1::RequestRecord>& records);
  explicit Collector(const CollectorConfig& config);

  // Runs on expiry_thread_ until Shutdown().
  void ExpireSeriesLoop();
  // GET /api/exporters: each exporter's cursor, counts, lag and last error, as JSON.
  common::AdminResponse ExportersJson() const;
  // GET /api/dead-letters?exporter=NAME&limit=N: dead letters as JSON lines.
  common::AdminResponse DeadLettersJson(const common::AdminRequest& request) const;
  // GET /api/replay: every replay's status. POST /api/replay?exporter=NAME&from=T&to=T
  // [&family=logs|spans] starts one (an optional body, one YAML exporter entry, names a one-off
  // target instead of a configured exporter); POST /api/replay/cancel?exporter=NAME stops it.
  common::AdminResponse Replay(const common::AdminRequest& request);
  // GET /api/proxies: every proxy's policy stream (ACK/NACK/PENDING) and the policy in force.
  common::AdminResponse ProxiesStatusJson() const;
  // A proxy announced its workload on its policy stream.
  void OnPolicyNode(const PolicyWorkload& workload);
  // GET /api/traces/{trace_id}: a stored trace as OTLP/JSON (404 when none is stored).
  common::AdminResponse TraceJson(const common::AdminRequest& request) const;
  // Null when `request` may write; else the 401/403 answer.
  std::optional<common::AdminResponse> RefuseWrite(const common::AdminRequest& request) const;

  const CollectorConfig config_;
  PolicySource policy_source_;
  std::shared_ptr<prometheus::Registry> registry_;
  RequestMetrics request_metrics_;
  ScrapeHandler scrape_handler_;
  std::mutex expiry_mutex_;
  std::condition_variable expiry_wake_;
  bool stopping_ = false;  // guarded by expiry_mutex_
  std::thread expiry_thread_;
  std::unique_ptr<RecordStore> store_;
  std::unique_ptr<AccessLogFormat> line_format_;
  // The policy compiled per workload; shared with the log exporters (AccessLogLines).
  std::shared_ptr<PolicyEnforcer> policy_;
  std::unique_ptr<Retention> retention_;
  std::unique_ptr<TracePipeline> traces_;  // null when traces.enabled is false
  std::unique_ptr<DeliveryEngine> delivery_;
  ExporterBuilder build_exporter_;
  std::unique_ptr<ReplayManager> replays_;
  // Before ingest_: it outlives the gRPC server that serves it.
  std::unique_ptr<PolicyServer> policy_server_;
  int policy_subscription_ = 0;  // PolicySource listener pushing changes; 0 = none
  std::unique_ptr<RecordIngestServer> ingest_;
  std::unique_ptr<OtlpReceiver> otlp_;  // null when ingest.otlp.enabled is false
  std::unique_ptr<AlsServer> als_;      // null when ingest.als.enabled is false
  std::unique_ptr<common::AdminHttpServer> admin_;
  std::unique_ptr<ConfigReloader> reloader_;
  // One per metrics.remote_write entry; started once the metrics exist, stopped in Shutdown().
  std::vector<std::unique_ptr<RemoteWriter>> remote_writers_;
  std::atomic<bool> ready_{false};
};

}  // namespace meshtel::collector
