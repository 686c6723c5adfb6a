#include "collector/policy/policy_enforcer.h"

// Tested by: tests/collector/policy/policy_enforcer_test.cc

#include <algorithm>
#include <mutex>
#include <utility>

#include "absl/hash/hash.h"
#include "absl/strings/string_view.h"
#include "fmt/format.h"
#include "spdlog/spdlog.h"

namespace meshtel::collector {
namespace {

// Equal for equal override lists (the paths, which only name errors, left out).
std::string OverridesSignature(const std::vector<MetricOverrideConfig>& overrides) {
  std::string signature;
  for (const MetricOverrideConfig& entry : overrides) {
    signature +=
        fmt::format("{}|{}|{}|", entry.metric ? static_cast<int>(*entry.metric) : -1,
                    static_cast<int>(entry.mode), entry.disabled ? (*entry.disabled ? 1 : 0) : -1);
    for (const TagOverrideConfig& tag : entry.tag_overrides) {
      signature += fmt::format("{}\x1f{}\x1f{}\x1f", tag.label, tag.remove ? 1 : 0, tag.value);
    }
    signature += '\x1e';
  }
  return signature;
}

std::string FormatSignature(const AccessLogConfig& config) {
  std::string signature = config.encoding == AccessLogEncoding::kJson ? "J" : "T";
  signature += config.format;
  for (const auto& [key, value] : config.json_format) {
    signature += fmt::format("\x1e{}\x1f{}", key, value);
  }
  return signature;
}

std::string_view SideName(size_t side) { return side == 0 ? "CLIENT" : "SERVER"; }

}  // namespace

size_t PolicyEnforcer::WorkloadKeyHash::operator()(const WorkloadKeyView& key) const {
  const auto view = [](std::string_view text) {
    return absl::string_view(text.data(), text.size());
  };
  return absl::HashOf(view(key.namespace_name), view(key.name), view(key.app), view(key.version));
}

PolicyEnforcer::PolicyEnforcer(PolicyDefaults defaults, Resolver resolver, MeshSource mesh,
                               prometheus::Registry* registry, size_t max_workloads)
    : defaults_config_(std::move(defaults)),
      resolver_(std::move(resolver)),
      mesh_(std::move(mesh)),
      max_workloads_(std::max<size_t>(max_workloads, 2)) {
  for (size_t i = 0; i < defaults_config_.exporters.size(); ++i) {
    exporter_index_.emplace(defaults_config_.exporters[i].name, i);
  }
  if (registry != nullptr) {
    compile_error_counter_ = &prometheus::BuildCounter()
                                  .Name("meshtel_policy_compile_errors_total")
                                  .Help(
                                      "Workload policies that did not compile on the collector "
                                      "(the workload got the collector's defaults instead).")
                                  .Register(*registry)
                                  .Add({});
  }
}

absl::StatusOr<std::unique_ptr<PolicyEnforcer>> PolicyEnforcer::Create(
    PolicyDefaults defaults, Resolver resolver, MeshSource mesh, prometheus::Registry* registry,
    size_t max_workloads) {
  std::unique_ptr<PolicyEnforcer> enforcer(new PolicyEnforcer(
      std::move(defaults), std::move(resolver), std::move(mesh), registry, max_workloads));
  absl::StatusOr<MetricLabelPlans> plans = CompileMetricLabelPlans(
      enforcer->defaults_config_.metric_overrides, enforcer->defaults_config_.keep_labels);
  if (!plans.ok()) return plans.status();
  absl::StatusOr<AccessLogFormat> format = enforcer->defaults_config_.access_log.Compile();
  if (!format.ok()) return format.status();
  // The defaults' plans and format, memoized so that workloads without their own share them.
  enforcer->plans_memo_.emplace("", std::make_shared<const MetricLabelPlans>(*std::move(plans)));
  enforcer->format_memo_.emplace(FormatSignature(enforcer->defaults_config_.access_log),
                                 std::make_shared<const AccessLogFormat>(*std::move(format)));
  absl::StatusOr<std::shared_ptr<const CompiledPolicy>> compiled =
      enforcer->Compile(WorkloadPolicy{}, MeshDefaults{});
  if (!compiled.ok()) return compiled.status();
  enforcer->defaults_ = *std::move(compiled);
  return enforcer;
}

PolicySide PolicyEnforcer::SideOf(meshtel::v1::Reporter reporter) {
  return reporter == meshtel::v1::REPORTER_SOURCE ? PolicySide::kClient : PolicySide::kServer;
}

absl::StatusOr<std::shared_ptr<const MetricLabelPlans>> PolicyEnforcer::PlansFor(
    const std::vector<MetricOverrideConfig>& workload_overrides) const {
  const std::string signature =
      workload_overrides.empty() ? std::string() : OverridesSignature(workload_overrides);
  {
    std::lock_guard<std::mutex> lock(memo_mutex_);
    if (auto it = plans_memo_.find(signature); it != plans_memo_.end()) return it->second;
  }
  std::vector<MetricOverrideConfig> overrides = defaults_config_.metric_overrides;
  overrides.insert(overrides.end(), workload_overrides.begin(), workload_overrides.end());
  absl::StatusOr<MetricLabelPlans> plans =
      CompileMetricLabelPlans(overrides, defaults_config_.keep_labels);
  if (!plans.ok()) return plans.status();
  auto shared = std::make_shared<const MetricLabelPlans>(*std::move(plans));
  std::lock_guard<std::mutex> lock(memo_mutex_);
  return plans_memo_.emplace(signature, std::move(shared)).first->second;
}

absl::StatusOr<std::shared_ptr<const AccessLogFormat>> PolicyEnforcer::FormatFor(
    const AccessLogConfig& config, const std::string& path) const {
  const std::string signature = FormatSignature(config);
  {
    std::lock_guard<std::mutex> lock(memo_mutex_);
    if (auto it = format_memo_.find(signature); it != format_memo_.end()) return it->second;
  }
  absl::StatusOr<AccessLogFormat> format = config.Compile(path);
  if (!format.ok()) return format.status();
  auto shared = std::make_shared<const AccessLogFormat>(*std::move(format));
  std::lock_guard<std::mutex> lock(memo_mutex_);
  return format_memo_.emplace(signature, std::move(shared)).first->second;
}

absl::StatusOr<std::shared_ptr<const CompiledPolicy>> PolicyEnforcer::Compile(
    const WorkloadPolicy& policy, const MeshDefaults& mesh) const {
  auto compiled = std::make_shared<CompiledPolicy>();
  absl::StatusOr<std::shared_ptr<const MetricLabelPlans>> plans =
      PlansFor(policy.metrics.overrides);
  if (!plans.ok()) {
    return absl::InvalidArgumentError(
        fmt::format("metrics: {}", std::string(plans.status().message())));
  }
  compiled->label_plans = *std::move(plans);
  const std::vector<std::string>& metrics_providers =
      !policy.metrics.providers.empty() ? policy.metrics.providers : mesh.default_metrics_providers;
  compiled->metrics_enabled =
      metrics_providers.empty() || std::find(metrics_providers.begin(), metrics_providers.end(),
                                             "prometheus") != metrics_providers.end();

  // Exporter names of `providers` (already defaulted); nullopt: every exporter.
  const auto exporters_of =
      [&](const std::vector<std::string>& providers) -> std::optional<std::vector<std::string>> {
    if (providers.empty()) return std::nullopt;
    std::vector<std::string> names;
    for (const std::string& provider : providers) {
      const auto extension =
          std::find_if(mesh.extension_providers.begin(), mesh.extension_providers.end(),
                       [&](const ExtensionProvider& p) { return p.name == provider; });
      if (extension != mesh.extension_providers.end()) {
        names.insert(names.end(), extension->exporters.begin(), extension->exporters.end());
      } else if (exporter_index_.contains(provider)) {
        names.push_back(provider);
      }
    }
    std::sort(names.begin(), names.end());
    names.erase(std::unique(names.begin(), names.end()), names.end());
    return names;
  };

  for (size_t side = 0; side < kPolicySideCount; ++side) {
    CompiledSidePolicy& out = compiled->sides[side];
    const AccessLogPolicy& logs = policy.access_logging[side];
    out.logs_enabled = !logs.disabled;
    if (!logs.filter.empty()) {
      absl::StatusOr<FilterExpression> filter = CompileFilterExpression(logs.filter);
      if (!filter.ok()) {
        return absl::InvalidArgumentError(fmt::format("accessLogging ({}) filter '{}': {}",
                                                      SideName(side), logs.filter,
                                                      std::string(filter.status().message())));
      }
      out.filter = *std::move(filter);
    }
    absl::StatusOr<std::shared_ptr<const AccessLogFormat>> format =
        logs.format
            ? FormatFor(*logs.format, fmt::format("accessLogging ({}) logFormat", SideName(side)))
            : FormatFor(defaults_config_.access_log, "access_log");
    if (!format.ok()) return format.status();
    out.format = *std::move(format);
    const std::optional<std::vector<std::string>> log_exporters =
        exporters_of(!logs.providers.empty() ? logs.providers : mesh.default_access_log_providers);
    out.log_exporters.assign(defaults_config_.exporters.size(), !log_exporters.has_value());
    if (log_exporters) {
      for (const std::string& name : *log_exporters) {
        if (auto it = exporter_index_.find(name); it != exporter_index_.end()) {
          out.log_exporters[it->second] = true;
        }
      }
    }

    const TracingPolicy& tracing = policy.tracing[side];
    out.spans_enabled = !tracing.disable_span_reporting;
    out.phase_spans = tracing.phase_spans.value_or(defaults_config_.phase_spans);
    for (const CustomTag& tag : tracing.custom_tags) {
      if (tag.kind != CustomTag::Kind::kFormatter) continue;  // the proxies fill the others
      absl::StatusOr<AccessLogFormat> tag_format =
          AccessLogFormat::Compile(tag.value, AccessLogEncoding::kText);
      if (!tag_format.ok()) {
        return absl::InvalidArgumentError(fmt::format("tracing ({}) customTags.{}: {}",
                                                      SideName(side), tag.name,
                                                      std::string(tag_format.status().message())));
      }
      out.formatter_tags.push_back(
          {tag.name, std::make_shared<const AccessLogFormat>(*std::move(tag_format))});
    }
    const std::optional<std::vector<std::string>> span_exporters = exporters_of(
        !tracing.providers.empty() ? tracing.providers : mesh.default_tracing_providers);
    out.all_span_exporters = !span_exporters.has_value();
    if (span_exporters) {
      for (const std::string& name : *span_exporters) {
        const auto it = exporter_index_.find(name);
        // Names of configured span exporters only (a log exporter never takes spans).
        if (it != exporter_index_.end() && defaults_config_.exporters[it->second].spans) {
          out.span_exporters.push_back(name);
        }
      }
    }
  }
  return std::shared_ptr<const CompiledPolicy>(std::move(compiled));
}

std::shared_ptr<const CompiledPolicy> PolicyEnforcer::For(
    const meshtel::v1::RequestRecord& record) const {
  const meshtel::v1::WorkloadIdentity& identity =
      SideOf(record) == PolicySide::kClient ? record.source() : record.destination();
  const WorkloadKeyView key{identity.namespace_(), identity.workload(), identity.app(),
                            identity.version()};
  {
    std::shared_lock<std::shared_mutex> lock(mutex_);
    if (auto it = cache_.find(key); it != cache_.end()) return it->second;
  }
  return Miss(identity);
}

std::shared_ptr<const CompiledPolicy> PolicyEnforcer::Miss(
    const meshtel::v1::WorkloadIdentity& identity) const {
  PolicyWorkload workload{identity.namespace_(), identity.workload(), {}};
  uint64_t generation = 0;
  {
    std::shared_lock<std::shared_mutex> lock(mutex_);
    generation = generation_;
    if (auto it = noted_labels_.find({workload.namespace_name, workload.name});
        it != noted_labels_.end()) {
      workload.labels = it->second;
    }
  }
  if (!identity.app().empty()) workload.labels.emplace("app", identity.app());
  if (!identity.version().empty()) workload.labels.emplace("version", identity.version());

  std::shared_ptr<const CompiledPolicy> compiled = defaults_;
  if (resolver_ != nullptr) {
    const WorkloadPolicy policy = resolver_(workload);
    absl::StatusOr<std::shared_ptr<const CompiledPolicy>> result =
        Compile(policy, mesh_ != nullptr ? mesh_() : MeshDefaults{});
    if (result.ok()) {
      compiled = *std::move(result);
    } else {
      compile_errors_.fetch_add(1);
      if (compile_error_counter_ != nullptr) compile_error_counter_->Increment();
      spdlog::error(
          "policy: the policy of workload {}/{} does not compile ({}); it gets the "
          "collector's defaults",
          workload.namespace_name, workload.name, result.status().ToString());
    }
  }

  std::unique_lock<std::shared_mutex> lock(mutex_);
  if (generation != generation_) return compiled;  // the policy changed meanwhile: not cached
  WorkloadKey key{identity.namespace_(), identity.workload(), identity.app(), identity.version()};
  if (auto it = cache_.find(key); it != cache_.end()) return it->second;
  if (cache_.size() >= max_workloads_) {
    // Drops half: a workload that is still sending compiles again on its next record.
    size_t to_drop = cache_.size() / 2;
    for (auto it = cache_.begin(); it != cache_.end() && to_drop > 0; --to_drop) {
      cache_.erase(it++);
    }
  }
  cache_.emplace(std::move(key), compiled);
  return compiled;
}

void PolicyEnforcer::PolicyChanged() {
  {
    std::unique_lock<std::shared_mutex> lock(mutex_);
    cache_.clear();
    ++generation_;
  }
  std::lock_guard<std::mutex> lock(memo_mutex_);
  // Keeps the defaults' own plans and format ("" signatures).
  std::erase_if(plans_memo_, [](const auto& entry) { return !entry.first.empty(); });
  std::erase_if(format_memo_, [&](const auto& entry) {
    return entry.first != FormatSignature(defaults_config_.access_log);
  });
}

void PolicyEnforcer::NoteWorkloadLabels(const PolicyWorkload& workload) {
  std::unique_lock<std::shared_mutex> lock(mutex_);
  std::map<std::string, std::string>& labels =
      noted_labels_[{workload.namespace_name, workload.name}];
  if (labels == workload.labels) return;
  labels = workload.labels;
  absl::erase_if(cache_, [&](const auto& entry) {
    return entry.first.namespace_name == workload.namespace_name &&
           entry.first.name == workload.name;
  });
  ++generation_;
}

AccessLogRouting::Line PolicyEnforcer::Route(const meshtel::v1::RequestRecord& record,
                                             std::string_view exporter) const {
  std::shared_ptr<const CompiledPolicy> policy = For(record);
  const CompiledSidePolicy& side = policy->side(SideOf(record));
  bool deliver = side.Logs(record);
  if (deliver) {
    const auto it = exporter_index_.find(absl::string_view(exporter.data(), exporter.size()));
    if (it != exporter_index_.end() && !side.log_exporters[it->second]) deliver = false;
  }
  const AccessLogFormat* format = side.format.get();
  return Line{format, deliver, std::move(policy)};
}

size_t PolicyEnforcer::cached_workloads() const {
  std::shared_lock<std::shared_mutex> lock(mutex_);
  return cache_.size();
}

}  // namespace meshtel::collector
