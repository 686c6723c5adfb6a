#pragma once
// TracesConfig: the collector's `traces:` block — how spans are built from proxy records, how
// traces are assembled, and which traces tail sampling keeps. Defaults are in the declarations;
// docs/configuration.md lists the same.
//
// ReadTracesConfig() reads and validates the block; errors name the YAML path and the value
// ("traces.sampling.percentage: 140 is not in [0, 100]"), unknown keys are rejected.
// Threading: none (config loading).

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "collector/common/yaml_map.h"

namespace meshtel::collector {

// How a span's service name is made from the workload identity, as Istio's tracing providers
// name it (MeshConfig extensionProviders[].*.serviceName ... APP_LABEL_AND_NAMESPACE is Istio's
// default: "<app>.<namespace>").
enum class TraceServiceName {
  kAppLabelAndNamespace,
  kCanonicalNameOnly,
  kCanonicalNameAndNamespace
};

struct TraceAssemblyConfig {
  // A trace whose root span has arrived is decided once no span of it arrived for this long.
  // Positive. Default: 2s
  absl::Duration idle_timeout = absl::Seconds(2);
  // Any trace is decided at the latest this long after its first span arrived (a trace whose root
  // never comes: its top spans are then marked orphans). At least idle_timeout. Default: 30s
  absl::Duration max_wait = absl::Seconds(30);
  // Traces and spans held in memory at most; past either, the oldest trace is decided early (its
  // spans marked, counted in meshtel_trace_evictions_total). Default: 50000 / 500000
  uint64_t max_traces = 50000;
  uint64_t max_spans = 500000;
};

struct TraceSamplingConfig {
  // Keep every trace with an error span (HTTP 5xx, no response, or a proxy error flag).
  // Default: true
  bool keep_errors = true;
  // Keep every trace at least this long (its root span's duration; without a root, first span
  // start to last span end); 0 = off.
  // Default: 1s
  absl::Duration latency_threshold = absl::Seconds(1);
  // Keep the traces the proxies sampled (the head decision: an incoming sampled flag, a forced
  // trace, or the proxies' random percentage, 1% by default, as Istio). Default: true
  bool keep_head_sampled = true;
  // Besides, keep this share of the other traces, chosen by trace id (the same traces on every
  // collector). 0..100. Default: 0
  double percentage = 0;
  // Traces per second per root service that the two probabilistic rules above may keep at most
  // (errors and slow traces are never limited); 0 = no limit. Default: 0
  double per_service_rate_limit = 0;
};

struct TracesConfig {
  // Build spans from proxy records, assemble and sample traces, store the kept ones in the spans
  // family for the trace exporters. Default: true
  bool enabled = true;
  // Add an INTERNAL child span per proxy phase (reading the request, routing, acquiring the
  // upstream connection, sending upstream, waiting on the upstream, streaming the response) to
  // each hop's span. Default: false
  bool phase_spans = false;
  // APP_LABEL_AND_NAMESPACE, CANONICAL_NAME_ONLY or CANONICAL_NAME_AND_NAMESPACE.
  // Default: APP_LABEL_AND_NAMESPACE
  TraceServiceName service_name = TraceServiceName::kAppLabelAndNamespace;
  // The mesh id of the istio.mesh_id tag. Default: cluster.local
  std::string mesh_id = "cluster.local";
  TraceAssemblyConfig assembly;
  TraceSamplingConfig sampling;

  absl::Status Validate() const;
};

// Reads `traces` under the document root into `out` and validates it; errors are recorded in
// `root` (see YamlMap::Finish()).
void ReadTracesConfig(common::YamlMap& root, TracesConfig& out);

}  // namespace meshtel::collector
