#pragma once
// ProxyPolicy: what a proxy enforces itself, taken from the policy resolved for its workload
// (telemetry_policy.h), sent over PolicyService (proto/meshtel/v1/policy.proto).
//
// Per side (outbound = CLIENT, inbound = SERVER):
//   - random_sampling_percentage: the side's tracing randomSamplingPercentage, else MeshConfig's
//     defaultConfig.tracing.sampling, else unset (the proxy's own setting);
//   - custom_tags: the literal, header and environment customTags (formatter tags are evaluated
//     by the collector and left out), sorted by name;
//   - report: false only when that side has span reporting disabled, access logging disabled and
//     every metric disabled for that mode (nothing the collector would keep).
// capture_request_headers: ProxyCaptureHeaders() below.
//
// Pure functions; safe from any thread.

#include <string>
#include <vector>

#include "collector/metrics/metric_overrides.h"
#include "collector/policy/telemetry_policy.h"
#include "meshtel/v1/policy.pb.h"

namespace meshtel::collector {

// The request headers the proxies of a workload must capture for the collector, lower-case,
// sorted, without duplicates: the names of header custom tags (either side), the captured
// headers formatter custom tags show, the headers the metric overrides read
// (CompileMetricLabelPlans(collector_overrides + the workload's overrides).captured_headers()),
// and, for each side whose access logging is on, the headers its filter reads and its policy
// format shows (AccessLogFormat::captured_headers()). Overrides that do not compile add no
// header (logged).
std::vector<std::string> ProxyCaptureHeaders(
    const WorkloadPolicy& policy, const std::vector<MetricOverrideConfig>& collector_overrides);

// The ProxyPolicy for a workload resolved to `policy`, under `mesh`. `collector_overrides` is the
// collector's own metrics.overrides (applied before the workload's).
meshtel::v1::ProxyPolicy ToProxyPolicy(
    const WorkloadPolicy& policy, const MeshDefaults& mesh,
    const std::vector<MetricOverrideConfig>& collector_overrides);

// The version of `policy`: 16 hex digits of a digest of its deterministic serialization. Equal
// policies have equal versions, on every collector and every run.
std::string ProxyPolicyVersion(const meshtel::v1::ProxyPolicy& policy);

}  // namespace meshtel::collector
