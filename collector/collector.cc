#include "collector/collector.h"

// Tested by: tests/e2e/mesh_prometheus_test.cc

#include <algorithm>
#include <chrono>
#include <map>
#include <optional>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "collector/common/program.h"
#include "collector/logs/json_escape.h"
#include "collector/logs/received_log.h"
#include "collector/policy/proxy_policy.h"
#include "collector/policy/span_routing.h"
#include "collector/traces/trace_json.h"
#include "fmt/format.h"
#include "fmt/ranges.h"
#include "spdlog/spdlog.h"

namespace meshtel::collector {
namespace {

std::string JsonString(std::string_view text) {
  std::string out = "\"";
  AppendJsonEscaped(out, text);
  out += '"';
  return out;
}

// The parameters of a query string (no percent-decoding: names and times need none).
std::map<std::string, std::string> QueryParameters(const std::string& query) {
  std::map<std::string, std::string> params;
  for (absl::string_view piece : absl::StrSplit(query, '&')) {
    const std::string pair(piece.data(), piece.size());
    const size_t equals = pair.find('=');
    if (equals == std::string::npos) continue;
    params[pair.substr(0, equals)] = pair.substr(equals + 1);
  }
  return params;
}

// A time as nanoseconds since the Unix epoch, or RFC 3339 ("2026-12-01T15:00:00Z").
std::optional<uint64_t> ParseTimeParameter(const std::string& text) {
  uint64_t nanos = 0;
  if (absl::SimpleAtoi(text, &nanos)) return nanos;
  absl::Time time;
  std::string error;
  if (!absl::ParseTime(absl::RFC3339_full, text, &time, &error)) return std::nullopt;
  const int64_t value = absl::ToUnixNanos(time);
  if (value < 0) return std::nullopt;
  return static_cast<uint64_t>(value);
}

std::string ReplayJson(const ReplayStatus& status) {
  std::string reasons = "[";
  for (const std::string& reason : status.refusal_reasons) {
    if (reasons.size() > 1) reasons += ",";
    reasons += JsonString(reason);
  }
  reasons += "]";
  return fmt::format(
      "{{\"exporter\":{},\"family\":{},\"from\":{},\"to\":{},\"state\":{},\"total\":{},"
      "\"checked\":{},\"filtered\":{},\"refused_before_send\":{},\"refusal_reasons\":{},"
      "\"sent\":{},\"rejected\":{},\"error\":{}}}",
      JsonString(status.exporter), JsonString(status.family), status.from_unix_nano,
      status.to_unix_nano, JsonString(status.state), status.total, status.checked, status.filtered,
      status.refused_before_send, reasons, status.sent, status.rejected, JsonString(status.error));
}

// The compiled metrics.overrides and keep list; the config was validated when it was loaded, so
// an error here means a config that skipped validation: it falls back to Istio's labels.
std::shared_ptr<const MetricLabelPlans> LabelPlansOf(const MetricsConfig& metrics) {
  absl::StatusOr<MetricLabelPlans> plans = metrics.CompileLabelPlans();
  if (!plans.ok()) {
    spdlog::error("metrics: ignoring the overrides: {}", plans.status().ToString());
    return nullptr;
  }
  return std::make_shared<const MetricLabelPlans>(*std::move(plans));
}

// GET /api/metrics/capture-headers: the request headers the tag overrides read, which the proxies
// must capture (their capture_request_headers option).
common::AdminResponse CaptureHeadersJson(const MetricLabelPlans& plans) {
  std::string body = "{\"capture_request_headers\":[";
  for (size_t i = 0; i < plans.captured_headers().size(); ++i) {
    if (i > 0) body += ',';
    body += JsonString(plans.captured_headers()[i]);
  }
  body += "]}\n";
  return common::AdminResponse{.content_type = "application/json", .body = std::move(body)};
}

}  // namespace

Collector::Collector(const CollectorConfig& config)
    : config_(config),
      registry_(std::make_shared<prometheus::Registry>()),
      request_metrics_({.max_series_per_metric = config.metrics.max_series_per_metric,
                        .registry = registry_.get(),
                        .label_plans = LabelPlansOf(config.metrics)}),
      scrape_handler_(request_metrics_, *registry_) {}

absl::StatusOr<std::unique_ptr<Collector>> Collector::Start(const CollectorConfig& config,
                                                            const ExporterBuilder& build_exporter,
                                                            ConfigReloaderOptions reload) {
  std::unique_ptr<Collector> collector(new Collector(config));
  std::vector<std::string> exporter_names;
  for (const ExporterConfig& exporter : config.exporters) exporter_names.push_back(exporter.name);
  reload.check_policy = [exporter_names](const TelemetryPolicy& policy) {
    return policy.CheckExporters(exporter_names);
  };
  reload.apply_log_level = [](const std::string& level) { (void)common::SetLogLevel(level); };
  if (!config.policy.file.empty()) {
    absl::StatusOr<TelemetryPolicy> policy = TelemetryPolicy::Load(config.policy.file);
    if (policy.ok()) {
      if (absl::Status checked = reload.check_policy(*policy); !checked.ok()) policy = checked;
    }
    if (!policy.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("policy.file: ", policy.status().message()));
    }
    spdlog::info("policy {}: {} Telemetry resources, digest {}", config.policy.file,
                 policy->resource_count(), policy->digest());
    collector->policy_source_.Replace(std::make_shared<const TelemetryPolicy>(*std::move(policy)));
  }
  collector->reloader_ = std::make_unique<ConfigReloader>(
      std::move(reload), config, collector->policy_source_, *collector->registry_);
  absl::StatusOr<std::unique_ptr<RecordStore>> store =
      RecordStore::Open(config.store, *collector->registry_);
  if (!store.ok()) return store.status();
  collector->store_ = *std::move(store);

  absl::StatusOr<AccessLogFormat> line_format = config.access_log.Compile();
  if (!line_format.ok()) return line_format.status();
  collector->line_format_ = std::make_unique<AccessLogFormat>(*std::move(line_format));
  PolicyDefaults policy_defaults{.metric_overrides = config.metrics.overrides,
                                 .keep_labels = config.metrics.keep_labels,
                                 .access_log = config.access_log,
                                 .phase_spans = config.traces.phase_spans};
  for (const ExporterConfig& exporter_config : config.exporters) {
    const bool spans = exporter_config.family == "spans";
    policy_defaults.exporters.push_back({exporter_config.name, spans});
  }
  PolicySource& source = collector->policy_source_;
  absl::StatusOr<std::unique_ptr<PolicyEnforcer>> enforcer = PolicyEnforcer::Create(
      std::move(policy_defaults),
      [&source](const PolicyWorkload& workload) { return source.current()->Resolve(workload); },
      [&source] { return source.current()->mesh(); }, collector->registry_.get());
  if (!enforcer.ok()) return enforcer.status();
  collector->policy_ = *std::move(enforcer);
  PolicyEnforcer* policy = collector->policy_.get();
  source.Subscribe(
      [policy](const std::shared_ptr<const TelemetryPolicy>&) { policy->PolicyChanged(); });
  const AccessLogLines lines(std::shared_ptr<const AccessLogRouting>(collector->policy_));
  std::vector<RetentionWatch> watched;
  std::vector<DeliveryTarget> targets;
  for (size_t i = 0; i < config.exporters.size(); ++i) {
    const ExporterConfig& exporter_config = config.exporters[i];
    if (build_exporter == nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat("exporters[", i, "]: this program has no exporters"));
    }
    absl::StatusOr<Exporter> exporter =
        build_exporter(exporter_config, lines, *collector->registry_);
    if (!exporter.ok()) return exporter.status();
    *exporter = RouteSpans(*std::move(exporter));
    watched.push_back({exporter->name, exporter->family});
    targets.push_back({.exporter = *std::move(exporter),
                       .batch = exporter_config.batch,
                       .retry = exporter_config.retry});
  }
  if (config.traces.enabled) {
    // Retention counts what it deletes before the trace pipeline read it, like an exporter.
    watched.push_back({std::string(TracePipeline::kReaderName), RecordFamily::kLogs});
  }
  collector->retention_ = std::make_unique<Retention>(*collector->store_, config.store,
                                                      std::move(watched), *collector->registry_);
  collector->retention_->Start();
  if (config.traces.enabled) {
    collector->traces_ = std::make_unique<TracePipeline>(
        config.traces, *collector->store_, *collector->registry_, collector->policy_.get());
    if (absl::Status started = collector->traces_->Start(); !started.ok()) return started;
  }
  collector->delivery_ =
      std::make_unique<DeliveryEngine>(*collector->store_, *collector->registry_);
  if (absl::Status started = collector->delivery_->Start(std::move(targets)); !started.ok()) {
    return started;
  }
  collector->build_exporter_ = build_exporter;
  Collector* owner = collector.get();
  collector->replays_ = std::make_unique<ReplayManager>(
      *collector->store_, [owner](const ReplayRequest& request) -> absl::StatusOr<DeliveryTarget> {
        const ExporterConfig* exporter_config = request.one_off ? &*request.one_off : nullptr;
        for (const ExporterConfig& configured : owner->config_.exporters) {
          if (exporter_config == nullptr && configured.name == request.exporter) {
            exporter_config = &configured;
          }
        }
        if (exporter_config == nullptr) {
          return absl::NotFoundError(
              absl::StrCat("no exporter named '", request.exporter, "' is configured"));
        }
        if (owner->build_exporter_ == nullptr) {
          return absl::FailedPreconditionError("this program has no exporters");
        }
        absl::StatusOr<Exporter> exporter = owner->build_exporter_(
            *exporter_config,
            AccessLogLines(std::shared_ptr<const AccessLogRouting>(owner->policy_)),
            *owner->registry_);
        if (!exporter.ok()) return exporter.status();
        *exporter = RouteSpans(*std::move(exporter));
        return DeliveryTarget{.exporter = *std::move(exporter),
                              .batch = exporter_config->batch,
                              .retry = exporter_config->retry};
      });
  if (config.admin.token.empty()) {
    spdlog::warn("admin.token is not set: the admin write endpoints answer only on loopback");
  }

  // Policy distribution: each proxy's node resolved against the policy in force, on the ingest
  // port; every PolicySource change is pushed to the proxies whose policy it changes.
  collector->policy_server_ = std::make_unique<PolicyServer>(
      [owner](const meshtel::v1::PolicyNode& node) {
        const std::shared_ptr<const TelemetryPolicy> policy = owner->policy_source_.current();
        PolicyWorkload workload;
        workload.namespace_name = node.namespace_();
        workload.name = node.workload();
        workload.labels.insert(node.labels().begin(), node.labels().end());
        return ToProxyPolicy(policy->Resolve(workload), policy->mesh(),
                             owner->config_.metrics.overrides);
      },
      [owner](const PolicyWorkload& workload) { owner->OnPolicyNode(workload); },
      *collector->registry_);
  collector->policy_subscription_ =
      collector->policy_source_.Subscribe([owner](const std::shared_ptr<const TelemetryPolicy>&) {
        owner->policy_server_->PolicyChanged();
      });
  absl::StatusOr<std::unique_ptr<RecordIngestServer>> ingest = RecordIngestServer::Start(
      config.ingest, *collector, *collector->registry_, {&collector->policy_server_->service()});
  if (!ingest.ok()) return ingest.status();
  collector->ingest_ = *std::move(ingest);
  if (config.ingest.otlp.enabled) {
    absl::StatusOr<std::unique_ptr<OtlpReceiver>> otlp =
        OtlpReceiver::Start(config.ingest.otlp, *collector, *collector->registry_);
    if (!otlp.ok()) return otlp.status();
    collector->otlp_ = *std::move(otlp);
  }
  if (config.ingest.als.enabled) {
    absl::StatusOr<std::unique_ptr<AlsServer>> als =
        AlsServer::Start(config.ingest.als, *collector, *collector->registry_);
    if (!als.ok()) return als.status();
    collector->als_ = *std::move(als);
  }

  Collector* self = collector.get();
  std::vector<std::pair<std::string, common::AdminHandler>> routes;
  routes.emplace_back("/metrics", [self](const common::AdminRequest& request) {
    return self->scrape_handler_.Serve(request);
  });
  routes.emplace_back(
      "/api/replay", [self](const common::AdminRequest& request) { return self->Replay(request); });
  routes.emplace_back("/api/replay/cancel", [self](const common::AdminRequest& request) {
    return self->Replay(request);
  });
  routes.emplace_back("/api/exporters",
                      [self](const common::AdminRequest&) { return self->ExportersJson(); });
  routes.emplace_back("/api/proxies",
                      [self](const common::AdminRequest&) { return self->ProxiesStatusJson(); });
  routes.emplace_back("/api/dead-letters", [self](const common::AdminRequest& request) {
    return self->DeadLettersJson(request);
  });
  routes.emplace_back("/api/traces/", [self](const common::AdminRequest& request) {
    return self->TraceJson(request);
  });
  routes.emplace_back("/api/metrics/capture-headers", [self](const common::AdminRequest&) {
    return CaptureHeadersJson(self->request_metrics_.label_plans());
  });
  routes.emplace_back("/api/policy", [self](const common::AdminRequest&) {
    return common::AdminResponse{.content_type = "application/json",
                                 .body = self->reloader_->StatusJson() + "\n"};
  });
  routes.emplace_back("/healthz", [](const common::AdminRequest&) {
    return common::AdminResponse{.body = "ok\n"};
  });
  routes.emplace_back("/readyz", [self](const common::AdminRequest&) {
    if (self->ready_.load()) return common::AdminResponse{.body = "ready\n"};
    return common::AdminResponse{.status = 503, .body = "not ready\n"};
  });
  absl::StatusOr<std::unique_ptr<common::AdminHttpServer>> admin =
      common::AdminHttpServer::Start(config.admin.listen, std::move(routes),
                                     /*quick_routes=*/{"/healthz", "/readyz"});
  if (!admin.ok()) return admin.status();
  collector->admin_ = *std::move(admin);
  spdlog::info("admin listening on {}:{} (/metrics, /healthz, /readyz)", config.admin.listen.host,
               collector->admin_->port());
  for (const RemoteWriteConfig& remote_write : config.metrics.remote_write) {
    absl::StatusOr<std::unique_ptr<RemoteWriter>> writer =
        RemoteWriter::Create(remote_write, {&collector->request_metrics_}, *collector->registry_,
                             collector->registry_.get());
    if (!writer.ok()) return writer.status();
    (*writer)->Start();
    collector->remote_writers_.push_back(*std::move(writer));
  }
  if (const auto& headers = collector->request_metrics_.label_plans().captured_headers();
      !headers.empty()) {
    spdlog::info(
        "metrics: tag overrides read the request headers [{}]; the proxies must capture them "
        "(capture_request_headers; also GET /api/metrics/capture-headers)",
        fmt::join(headers, ", "));
  }
  if (config.metrics.series_idle_timeout > absl::ZeroDuration()) {
    collector->expiry_thread_ = std::thread([self] { self->ExpireSeriesLoop(); });
  }
  collector->reloader_->Start();
  collector->ready_.store(true);
  return collector;
}

common::AdminResponse Collector::TraceJson(const common::AdminRequest& request) const {
  const std::string_view hex = std::string_view(request.path).substr(sizeof("/api/traces/") - 1);
  std::optional<std::string> trace_id = ParseHexId(hex);
  if (!trace_id || trace_id->size() != 16) {
    return common::AdminResponse{
        .status = 400,
        .body = absl::StrCat("trace id '", std::string(hex), "' is not 32 hex digits\n")};
  }
  absl::StatusOr<std::vector<StoredRecord>> spans = store_->ReadTrace(*trace_id);
  if (!spans.ok()) {
    return common::AdminResponse{.status = 503, .body = spans.status().ToString() + "\n"};
  }
  if (spans->empty()) {
    return common::AdminResponse{.status = 404,
                                 .body = absl::StrCat("no stored trace ", std::string(hex), "\n")};
  }
  return common::AdminResponse{.content_type = "application/json", .body = TraceToOtlpJson(*spans)};
}

absl::StatusOr<InstanceProgress> Collector::LoadProgress(std::string_view instance_id) {
  return store_->LoadInstanceProgress(instance_id);
}

absl::Status Collector::Consume(const meshtel::v1::RecordBatch& batch,
                                const InstanceProgress& progress) {
  return store_->AppendBatch(batch, progress);
}

absl::Status Collector::ConsumeReceived(const meshtel::v1::RecordBatch& batch,
                                        std::span<const std::string_view> record_bytes,
                                        const InstanceProgress& progress) {
  return store_->AppendEncodedBatch(batch.proxy_instance_id(), record_bytes, progress);
}

void Collector::CountStored(const meshtel::v1::RecordBatch& batch) {
  CountRequests(batch.records());
}

absl::Status Collector::Store(
    const google::protobuf::RepeatedPtrField<meshtel::v1::RequestRecord>& records) {
  if (absl::Status stored = store_->AppendRecords(records); !stored.ok()) return stored;
  CountRequests(records);
  return absl::OkStatus();
}

absl::Status Collector::StoreEncoded(std::span<const std::string_view> records) {
  return store_->AppendEncodedRecords(records);
}

void Collector::CountRequests(
    const google::protobuf::RepeatedPtrField<meshtel::v1::RequestRecord>& records) {
  for (const meshtel::v1::RequestRecord& record : records) {
    // Request metrics count requests only, whatever a sender put in its batch.
    if (record.has_received_span() || record.has_received_log()) continue;
    if (policy_ == nullptr) {
      request_metrics_.Record(record);
      continue;
    }
    const std::shared_ptr<const CompiledPolicy> policy = policy_->For(record);
    // A workload whose metrics providers leave out prometheus is not aggregated.
    if (!policy->metrics_enabled) continue;
    request_metrics_.Record(record, *policy->label_plans);
  }
}

common::AdminResponse Collector::ExportersJson() const {
  std::string body = "[";
  for (const DeliveryStatus& status : delivery_->statuses()) {
    if (body.size() > 1) body += ",";
    body += fmt::format(
        "{{\"name\":{},\"type\":{},\"cursor\":{},\"delivered\":{},\"rejected\":{},"
        "\"filtered\":{},\"retrying\":{},\"lag_records\":{},\"lag_seconds\":{:.3f},"
        "\"last_error\":{}}}",
        JsonString(status.name), JsonString(status.type), JsonString(status.cursor.ToString()),
        status.delivered, status.rejected, status.filtered, status.retrying, status.lag_records,
        status.lag_seconds, JsonString(status.last_error));
  }
  body += "]\n";
  return common::AdminResponse{.content_type = "application/json", .body = std::move(body)};
}

common::AdminResponse Collector::ProxiesStatusJson() const {
  const std::shared_ptr<const TelemetryPolicy> policy = policy_source_.current();
  return common::AdminResponse{.content_type = "application/json",
                               .body = ProxiesJson(policy_server_->Streams(),
                                                   policy_source_.generation(), policy->digest())};
}

void Collector::OnPolicyNode(const PolicyWorkload& workload) {
  // The labels proxies announce are what Telemetry selectors match, for the collector's own
  // enforcement too (records carry only app and version).
  spdlog::debug("policy: proxy of {}/{} announced {} labels", workload.namespace_name,
                workload.name, workload.labels.size());
  policy_->NoteWorkloadLabels(workload);
}

common::AdminResponse Collector::DeadLettersJson(const common::AdminRequest& request) const {
  const std::map<std::string, std::string> params = QueryParameters(request.query);
  const std::string exporter = params.contains("exporter") ? params.at("exporter") : "";
  size_t limit = 100;
  if (params.contains("limit") && !absl::SimpleAtoi(params.at("limit"), &limit)) {
    return common::AdminResponse{.status = 400, .body = "limit: not a number\n"};
  }
  absl::StatusOr<std::vector<RecordStore::DeadLetterEntry>> letters =
      store_->ListDeadLetters(exporter, std::min<size_t>(limit, 10000));
  if (!letters.ok()) {
    return common::AdminResponse{.status = 503, .body = letters.status().ToString() + "\n"};
  }
  std::string body;
  std::string line;
  for (const RecordStore::DeadLetterEntry& letter : *letters) {
    // What the record is, and one readable line of it: a request record as its access-log line,
    // a received log record as time, severity, service and body, a span by its ids and name.
    std::string_view kind;
    line.clear();
    if (letter.family == RecordFamily::kSpans) {
      kind = "span";
      line = SpanSummary(letter.span);
    } else if (letter.record.has_received_span()) {
      kind = "received_span";
      line = SpanSummary(letter.record.received_span());
    } else if (letter.record.has_received_log()) {
      kind = "received_log";
      line = ReceivedLogSummary(letter.record.received_log());
    } else {
      kind = "request";
      line_format_->Render(letter.record, line);
      while (!line.empty() && line.back() == '\n') line.pop_back();
    }
    body += fmt::format(
        "{{\"exporter\":{},\"key\":{},\"kind\":{},\"reason\":{},\"maybe_delivered\":{},"
        "\"set_aside_unix_nano\":{},\"line\":{}}}\n",
        JsonString(letter.exporter), JsonString(letter.key.ToString()), JsonString(kind),
        JsonString(letter.reason), letter.maybe_delivered, letter.set_aside_unix_nano,
        JsonString(line));
  }
  return common::AdminResponse{.content_type = "application/x-ndjson", .body = std::move(body)};
}

std::optional<common::AdminResponse> Collector::RefuseWrite(
    const common::AdminRequest& request) const {
  if (config_.admin.token.empty()) {
    if (request.from_loopback) return std::nullopt;
    return common::AdminResponse{
        .status = 403,
        .body = "admin write endpoints answer only on loopback while admin.token is not set\n"};
  }
  // Compared in full whatever the input, so the time taken says nothing about the token.
  const std::string expected = "Bearer " + config_.admin.token;
  unsigned char difference = expected.size() == request.authorization.size() ? 0 : 1;
  for (size_t i = 0; i < expected.size(); ++i) {
    const char given = i < request.authorization.size() ? request.authorization[i] : '\0';
    difference |= static_cast<unsigned char>(expected[i] ^ given);
  }
  if (difference == 0) return std::nullopt;
  return common::AdminResponse{.status = 401, .body = "a valid admin bearer token is required\n"};
}

common::AdminResponse Collector::Replay(const common::AdminRequest& request) {
  const auto json = [](unsigned status, std::string body) {
    return common::AdminResponse{
        .status = status, .content_type = "application/json", .body = std::move(body) + "\n"};
  };
  const auto error = [&json](unsigned status, const std::string& message) {
    return json(status, "{\"error\":" + JsonString(message) + "}");
  };
  if (request.method == "GET" && request.path == "/api/replay") {
    std::string body = "[";
    for (const ReplayStatus& status : replays_->List()) {
      if (body.size() > 1) body += ",";
      body += ReplayJson(status);
    }
    return json(200, body + "]");
  }
  if (request.method != "POST") return error(405, "use GET to list, POST to start or cancel");
  if (auto refused = RefuseWrite(request)) return *refused;
  const std::map<std::string, std::string> params = QueryParameters(request.query);
  const auto param = [&params](const char* name) {
    const auto it = params.find(name);
    return it == params.end() ? std::string() : it->second;
  };
  if (request.path == "/api/replay/cancel") {
    absl::Status cancelled = replays_->Cancel(param("exporter"));
    if (!cancelled.ok()) return error(404, std::string(cancelled.message()));
    return json(200, "{\"cancelled\":" + JsonString(param("exporter")) + "}");
  }
  ReplayRequest replay;
  replay.exporter = param("exporter");
  if (replay.exporter.empty()) return error(400, "exporter: required");
  const std::string family = param("family");
  if (family == "spans") {
    replay.family = RecordFamily::kSpans;
  } else if (!family.empty() && family != "logs") {
    return error(400, "family: '" + family + "' is not logs or spans");
  }
  const std::optional<uint64_t> from = ParseTimeParameter(param("from"));
  const std::optional<uint64_t> to = ParseTimeParameter(param("to"));
  if (!from) return error(400, "from: not a time (Unix nanoseconds or RFC 3339)");
  if (!to) return error(400, "to: not a time (Unix nanoseconds or RFC 3339)");
  replay.from_unix_nano = *from;
  replay.to_unix_nano = *to;
  if (!request.body.empty()) {
    // A one-off target: one exporter entry, read as the config reads `exporters:`.
    YAML::Node document;
    try {
      document["exporters"].push_back(YAML::Load(request.body));
    } catch (const YAML::Exception& exception) {
      return error(400, std::string("body: not YAML: ") + exception.what());
    }
    absl::StatusOr<CollectorConfig> parsed = ParseCollectorConfig(document);
    if (!parsed.ok()) return error(400, std::string(parsed.status().message()));
    replay.one_off = parsed->exporters.front();
    replay.exporter = replay.one_off->name;
  }
  absl::StatusOr<ReplayStatus> started = replays_->Start(replay);
  if (!started.ok()) {
    const unsigned status = absl::IsNotFound(started.status())             ? 404
                            : absl::IsFailedPrecondition(started.status()) ? 409
                                                                           : 400;
    return error(status, std::string(started.status().message()));
  }
  return json(202, ReplayJson(*started));
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
  if (reloader_ != nullptr) reloader_->Stop();
  {
    std::lock_guard<std::mutex> lock(expiry_mutex_);
    stopping_ = true;
  }
  expiry_wake_.notify_all();
  if (expiry_thread_.joinable()) expiry_thread_.join();
  if (policy_subscription_ != 0) {
    policy_source_.Unsubscribe(policy_subscription_);
    policy_subscription_ = 0;
  }
  // Policy streams never end on their own: end them first, so they do not hold up the ingest
  // server's grace period.
  if (policy_server_ != nullptr) policy_server_->Shutdown();
  if (ingest_ != nullptr) {
    ingest_->Shutdown(config_.shutdown_grace);
  }
  if (otlp_ != nullptr) otlp_->Shutdown(config_.shutdown_grace);
  // Envoy never ends its ALS streams: waiting would only delay shutdown. Messages already read
  // finish storing; what Envoy has in flight is lost on its side, as after any reconnect.
  if (als_ != nullptr) als_->Shutdown(absl::ZeroDuration());
  for (const std::unique_ptr<RemoteWriter>& writer : remote_writers_) writer->Stop();
  if (replays_ != nullptr) replays_->StopAll();
  if (traces_ != nullptr) traces_->Stop();
  if (delivery_ != nullptr) delivery_->Stop();
  if (retention_ != nullptr) retention_->Stop();
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
