#include "collector/policy/proxy_policy.h"

// Tested by: tests/collector/policy/proxy_policy_test.cc

#include <algorithm>
#include <optional>

#include "collector/logs/access_log_format.h"
#include "collector/policy/filter_expression.h"
#include "fmt/format.h"
#include "fmt/ranges.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "spdlog/spdlog.h"

namespace meshtel::collector {
namespace {

// The collector's overrides, then the workload's, compiled; nullopt (logged) when they do not
// compile, which a validated policy and config never give.
std::optional<MetricLabelPlans> CompilePlans(
    const WorkloadPolicy& policy, const std::vector<MetricOverrideConfig>& collector_overrides) {
  if (policy.metrics.overrides.empty() && collector_overrides.empty()) return MetricLabelPlans();
  std::vector<MetricOverrideConfig> overrides = collector_overrides;
  overrides.insert(overrides.end(), policy.metrics.overrides.begin(),
                   policy.metrics.overrides.end());
  absl::StatusOr<MetricLabelPlans> plans = CompileMetricLabelPlans(overrides, std::nullopt);
  if (!plans.ok()) {
    spdlog::warn("policy: the metric overrides of {} do not compile: {}",
                 fmt::join(policy.applied, ", "), plans.status().ToString());
    return std::nullopt;
  }
  return *std::move(plans);
}

std::vector<std::string> CaptureHeaders(const WorkloadPolicy& policy,
                                        const std::optional<MetricLabelPlans>& plans) {
  std::vector<std::string> headers;
  const auto add_format_headers = [&headers](const absl::StatusOr<AccessLogFormat>& format) {
    if (!format.ok()) return;  // validated with the policy; nothing to capture otherwise
    for (std::string& header : format->captured_headers()) headers.push_back(std::move(header));
  };
  for (const TracingPolicy& side : policy.tracing) {
    for (const CustomTag& tag : side.custom_tags) {
      if (tag.kind == CustomTag::Kind::kHeader) headers.push_back(tag.value);
      if (tag.kind == CustomTag::Kind::kFormatter) {
        add_format_headers(AccessLogFormat::Compile(tag.value, AccessLogEncoding::kText));
      }
    }
  }
  // Access logs: what the side's filter reads and what its own format (the policy's, not the
  // collector's access_log block) shows from captured headers.
  for (const AccessLogPolicy& side : policy.access_logging) {
    if (side.disabled) continue;
    if (!side.filter.empty()) {
      if (absl::StatusOr<FilterExpression> filter = CompileFilterExpression(side.filter);
          filter.ok()) {
        headers.insert(headers.end(), filter->headers().begin(), filter->headers().end());
      }
    }
    if (side.format) add_format_headers(side.format->Compile());
  }
  if (plans) {
    headers.insert(headers.end(), plans->captured_headers().begin(),
                   plans->captured_headers().end());
  }
  std::sort(headers.begin(), headers.end());
  headers.erase(std::unique(headers.begin(), headers.end()), headers.end());
  return headers;
}

bool EveryMetricDisabled(const std::optional<MetricLabelPlans>& plans, RecordMode mode) {
  if (!plans) return false;
  for (size_t metric = 0; metric < kIstioMetricCount; ++metric) {
    if (!plans->plan(static_cast<IstioMetric>(metric), mode).disabled) return false;
  }
  return true;
}

void FillSide(const WorkloadPolicy& policy, const MeshDefaults& mesh, PolicySide side,
              const std::optional<MetricLabelPlans>& plans, meshtel::v1::SidePolicy& out) {
  const TracingPolicy& tracing = policy.tracing[static_cast<size_t>(side)];
  if (tracing.random_sampling_percentage) {
    out.set_random_sampling_percentage(*tracing.random_sampling_percentage);
  } else if (mesh.default_sampling_percentage) {
    out.set_random_sampling_percentage(*mesh.default_sampling_percentage);
  }
  std::vector<const CustomTag*> tags;
  for (const CustomTag& tag : tracing.custom_tags) {
    if (tag.kind != CustomTag::Kind::kFormatter) tags.push_back(&tag);
  }
  std::sort(tags.begin(), tags.end(),
            [](const CustomTag* a, const CustomTag* b) { return a->name < b->name; });
  for (const CustomTag* tag : tags) {
    meshtel::v1::PolicyCustomTag& added = *out.add_custom_tags();
    added.set_name(tag->name);
    switch (tag->kind) {
      case CustomTag::Kind::kLiteral:
        added.set_literal(tag->value);
        break;
      case CustomTag::Kind::kHeader:
        added.set_header(tag->value);
        added.set_default_value(tag->default_value);
        break;
      case CustomTag::Kind::kEnvironment:
        added.set_environment(tag->value);
        added.set_default_value(tag->default_value);
        break;
      case CustomTag::Kind::kFormatter:
        break;
    }
  }
  const RecordMode mode = side == PolicySide::kClient ? RecordMode::kClient : RecordMode::kServer;
  const bool nothing_kept = tracing.disable_span_reporting &&
                            policy.access_logging[static_cast<size_t>(side)].disabled &&
                            EveryMetricDisabled(plans, mode);
  out.set_report(!nothing_kept);
}

uint64_t Fnv1a64(uint64_t hash, const std::string& bytes) {
  for (unsigned char c : bytes) {
    hash ^= c;
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

}  // namespace

std::vector<std::string> ProxyCaptureHeaders(
    const WorkloadPolicy& policy, const std::vector<MetricOverrideConfig>& collector_overrides) {
  return CaptureHeaders(policy, CompilePlans(policy, collector_overrides));
}

meshtel::v1::ProxyPolicy ToProxyPolicy(
    const WorkloadPolicy& policy, const MeshDefaults& mesh,
    const std::vector<MetricOverrideConfig>& collector_overrides) {
  const std::optional<MetricLabelPlans> plans = CompilePlans(policy, collector_overrides);
  meshtel::v1::ProxyPolicy out;
  FillSide(policy, mesh, PolicySide::kClient, plans, *out.mutable_outbound());
  FillSide(policy, mesh, PolicySide::kServer, plans, *out.mutable_inbound());
  for (std::string& header : CaptureHeaders(policy, plans)) {
    out.add_capture_request_headers(std::move(header));
  }
  for (const std::string& applied : policy.applied) out.add_applied(applied);
  return out;
}

std::string ProxyPolicyVersion(const meshtel::v1::ProxyPolicy& policy) {
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    policy.SerializeToCodedStream(&coded);
  }
  return fmt::format("{:016x}", Fnv1a64(0xcbf29ce484222325ULL, bytes));
}

}  // namespace meshtel::collector
