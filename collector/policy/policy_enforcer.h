#pragma once
// PolicyEnforcer: the telemetry policy compiled for the collector's hot paths, per workload.
//
// Which workload a record belongs to: reporter=source → record.source on the CLIENT side,
// reporter=destination (or unspecified) → record.destination on the SERVER side. Its labels:
// {app: identity.app, version: identity.version} (the non-empty ones) plus the labels the
// proxies of that (namespace, workload) announced (NoteWorkloadLabels; an announced label wins
// over the record's app/version).
//
// For(record) returns that workload's CompiledPolicy: the resolver's WorkloadPolicy
// (telemetry_policy.h) compiled once, on first sight, and cached until PolicyChanged():
// - metrics: the collector's metrics.overrides followed by the workload's, compiled into label
//   plans (with the collector's keep_labels); workloads with equal override lists share one
//   MetricLabelPlans, and a workload without overrides gets the collector's own plans;
//   metrics_enabled is false when the metrics providers (else MeshConfig defaultProviders.metrics,
//   else prometheus) do not name `prometheus` (the workload's records are then not aggregated).
// - per side (CLIENT, SERVER): access logs on/off, the compiled filter, the compiled line format
//   (the workload's, else the collector's access_log block), the log exporters (providers →
//   MeshConfig extensionProviders → exporter names; no providers and no defaultProviders → every
//   log exporter); span reporting on/off, phase spans (else the collector's traces.phase_spans),
//   the compiled `formatter` custom tags, and the span exporters (tracing providers, as above).
// A provider name that no extension provider defines but that names an exporter stands for that
// exporter. A workload policy that does not compile (the parser validates policies, so this
// means a bug or a collector override list the workload's overrides conflict with) falls back
// to the collector's defaults: logged once per workload and counted in
// meshtel_policy_compile_errors_total.
//
// The cache holds at most `max_workloads` compiled workloads (the oldest half is dropped when it
// is full). PolicyChanged() drops every compiled workload (a compile that raced with it is not
// cached); NoteWorkloadLabels() drops those of the workload whose labels changed.
//
// Threading: every method may be called from any number of threads at once. For() takes a
// shared lock for a cache hit (no allocation); a miss compiles outside every lock. Ownership:
// a CompiledPolicy is immutable and lives as long as someone holds it.

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "collector/logs/access_log_config.h"
#include "collector/logs/access_log_format.h"
#include "collector/logs/access_log_routing.h"
#include "collector/metrics/metric_overrides.h"
#include "collector/policy/filter_expression.h"
#include "collector/policy/telemetry_policy.h"
#include "meshtel/v1/record.pb.h"
#include "prometheus/counter.h"
#include "prometheus/registry.h"

namespace meshtel::collector {

// The collector's own settings: what a workload without a policy gets.
struct PolicyDefaults {
  std::vector<MetricOverrideConfig> metric_overrides;   // metrics.overrides
  std::optional<std::vector<std::string>> keep_labels;  // metrics.keep_labels
  AccessLogConfig access_log;                           // the access_log block
  bool phase_spans = false;                             // traces.phase_spans
  struct Exporter {
    std::string name;
    bool spans = false;  // family spans (else logs)
  };
  std::vector<Exporter> exporters;  // the configured exporters
};

// A `formatter` custom tag, compiled.
struct FormatterTag {
  std::string name;
  std::shared_ptr<const AccessLogFormat> format;
};

// One side of one workload, compiled.
struct CompiledSidePolicy {
  bool logs_enabled = true;
  std::optional<FilterExpression> filter;  // nullopt: every record
  std::shared_ptr<const AccessLogFormat> format;
  // By exporter index (PolicyDefaults::exporters): whether that log exporter gets the lines.
  std::vector<bool> log_exporters;
  bool spans_enabled = true;
  bool phase_spans = false;
  std::vector<FormatterTag> formatter_tags;
  // The span exporters the side's spans go to; empty with all_span_exporters.
  std::vector<std::string> span_exporters;
  bool all_span_exporters = true;

  // Whether the access-log line of `record` (of this side) is written at all (enabled, passes
  // the filter); exporters are checked apart.
  bool Logs(const meshtel::v1::RequestRecord& record) const {
    return logs_enabled && (!filter || filter->Matches(record));
  }
};

struct CompiledPolicy {
  std::shared_ptr<const MetricLabelPlans> label_plans;
  bool metrics_enabled = true;  // aggregated into the Prometheus metrics
  std::array<CompiledSidePolicy, kPolicySideCount> sides;

  const CompiledSidePolicy& side(PolicySide which) const {
    return sides[static_cast<size_t>(which)];
  }
};

class PolicyEnforcer : public AccessLogRouting {
 public:
  using Resolver = std::function<WorkloadPolicy(const PolicyWorkload&)>;
  using MeshSource = std::function<MeshDefaults()>;

  // Compiles the defaults (errors name the collector's config fields). `mesh` may be null (no
  // MeshConfig: no extension providers, no default providers); `registry` may be null.
  static absl::StatusOr<std::unique_ptr<PolicyEnforcer>> Create(
      PolicyDefaults defaults, Resolver resolver, MeshSource mesh = nullptr,
      prometheus::Registry* registry = nullptr, size_t max_workloads = 4096);

  // The side a record's policy is taken from (CLIENT for reporter=source, else SERVER).
  static PolicySide SideOf(const meshtel::v1::RequestRecord& record) {
    return SideOf(record.reporter());
  }
  static PolicySide SideOf(meshtel::v1::Reporter reporter);

  // The compiled policy of the record's workload.
  std::shared_ptr<const CompiledPolicy> For(const meshtel::v1::RequestRecord& record) const;
  // The compiled defaults (what every workload gets without a policy).
  const std::shared_ptr<const CompiledPolicy>& defaults() const { return defaults_; }
  const MetricLabelPlans& default_label_plans() const { return *defaults_->label_plans; }

  // The policy in force changed: drops every compiled workload.
  void PolicyChanged();
  // Labels the proxies of workload (namespace_name, name) announced.
  void NoteWorkloadLabels(const PolicyWorkload& workload);

  // AccessLogRouting: the record's side policy decides; an exporter this enforcer was not told
  // about (a replay's one-off target) gets what every log exporter would.
  Line Route(const meshtel::v1::RequestRecord& record, std::string_view exporter) const override;

  // Compiled workloads held now; compile errors so far.
  size_t cached_workloads() const;
  uint64_t compile_errors() const { return compile_errors_.load(); }

  // Compiles `policy` against these defaults (tests; For() uses it on a miss).
  absl::StatusOr<std::shared_ptr<const CompiledPolicy>> Compile(const WorkloadPolicy& policy,
                                                                const MeshDefaults& mesh) const;

  // A workload as the cache keys it: namespace, name, app, version.
  struct WorkloadKey {
    std::string namespace_name, name, app, version;
  };
  struct WorkloadKeyView {
    std::string_view namespace_name, name, app, version;
  };
  // Hash and equality over both, so a lookup builds no string.
  struct WorkloadKeyHash {
    using is_transparent = void;
    size_t operator()(const WorkloadKey& key) const { return (*this)(View(key)); }
    size_t operator()(const WorkloadKeyView& key) const;
  };
  struct WorkloadKeyEq {
    using is_transparent = void;
    template <class A, class B>
    bool operator()(const A& a, const B& b) const {
      const WorkloadKeyView x = View(a);
      const WorkloadKeyView y = View(b);
      return x.namespace_name == y.namespace_name && x.name == y.name && x.app == y.app &&
             x.version == y.version;
    }
  };
  static WorkloadKeyView View(const WorkloadKeyView& key) { return key; }
  static WorkloadKeyView View(const WorkloadKey& key) {
    return {key.namespace_name, key.name, key.app, key.version};
  }

 private:
  PolicyEnforcer(PolicyDefaults defaults, Resolver resolver, MeshSource mesh,
                 prometheus::Registry* registry, size_t max_workloads);

  std::shared_ptr<const CompiledPolicy> Miss(const meshtel::v1::WorkloadIdentity& identity) const;
  absl::StatusOr<std::shared_ptr<const MetricLabelPlans>> PlansFor(
      const std::vector<MetricOverrideConfig>& overrides) const;
  absl::StatusOr<std::shared_ptr<const AccessLogFormat>> FormatFor(const AccessLogConfig& config,
                                                                   const std::string& path) const;

  const PolicyDefaults defaults_config_;
  const Resolver resolver_;
  const MeshSource mesh_;
  const size_t max_workloads_;
  absl::flat_hash_map<std::string, size_t> exporter_index_;
  std::shared_ptr<const CompiledPolicy> defaults_;
  prometheus::Counter* compile_error_counter_ = nullptr;
  mutable std::atomic<uint64_t> compile_errors_{0};

  mutable std::shared_mutex mutex_;  // guards the members below
  mutable absl::flat_hash_map<WorkloadKey, std::shared_ptr<const CompiledPolicy>, WorkloadKeyHash,
                              WorkloadKeyEq>
      cache_;
  mutable uint64_t generation_ = 0;
  std::map<std::pair<std::string, std::string>, std::map<std::string, std::string>> noted_labels_;

  mutable std::mutex memo_mutex_;  // guards the memos: compiled plans and formats by signature
  mutable std::map<std::string, std::shared_ptr<const MetricLabelPlans>> plans_memo_;
  mutable std::map<std::string, std::shared_ptr<const AccessLogFormat>> format_memo_;
};

}  // namespace meshtel::collector
