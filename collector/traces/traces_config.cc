#include "collector/traces/traces_config.h"

#include "absl/strings/str_cat.h"

namespace meshtel::collector {

absl::Status TracesConfig::Validate() const {
  if (assembly.idle_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("traces.assembly.idle_timeout: ", absl::FormatDuration(assembly.idle_timeout),
                     " is not positive"));
  }
  if (assembly.max_wait < assembly.idle_timeout) {
    return absl::InvalidArgumentError(
        absl::StrCat("traces.assembly.max_wait: ", absl::FormatDuration(assembly.max_wait),
                     " is shorter than traces.assembly.idle_timeout (",
                     absl::FormatDuration(assembly.idle_timeout), ")"));
  }
  if (assembly.max_traces < 1) {
    return absl::InvalidArgumentError("traces.assembly.max_traces: must be at least 1");
  }
  if (assembly.max_spans < 1) {
    return absl::InvalidArgumentError("traces.assembly.max_spans: must be at least 1");
  }
  if (sampling.latency_threshold < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "traces.sampling.latency_threshold: ", absl::FormatDuration(sampling.latency_threshold),
        " is negative"));
  }
  if (!(sampling.percentage >= 0 && sampling.percentage <= 100)) {
    return absl::InvalidArgumentError(
        absl::StrCat("traces.sampling.percentage: ", sampling.percentage, " is not in [0, 100]"));
  }
  if (!(sampling.per_service_rate_limit >= 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("traces.sampling.per_service_rate_limit: ", sampling.per_service_rate_limit,
                     " is negative"));
  }
  return absl::OkStatus();
}

void ReadTracesConfig(common::YamlMap& root, TracesConfig& out) {
  std::optional<common::YamlMap> traces = root.Map("traces");
  if (!traces) return;
  traces->Read("enabled", out.enabled);
  traces->Read("phase_spans", out.phase_spans);
  std::string service_name;
  traces->Read("service_name", service_name);
  if (service_name == "APP_LABEL_AND_NAMESPACE") {
    out.service_name = TraceServiceName::kAppLabelAndNamespace;
  } else if (service_name == "CANONICAL_NAME_ONLY") {
    out.service_name = TraceServiceName::kCanonicalNameOnly;
  } else if (service_name == "CANONICAL_NAME_AND_NAMESPACE") {
    out.service_name = TraceServiceName::kCanonicalNameAndNamespace;
  } else if (!service_name.empty()) {
    traces->Fail(absl::InvalidArgumentError(
        absl::StrCat("traces.service_name: '", service_name,
                     "' is not one of APP_LABEL_AND_NAMESPACE, CANONICAL_NAME_ONLY, "
                     "CANONICAL_NAME_AND_NAMESPACE")));
  }
  traces->Read("mesh_id", out.mesh_id);
  if (std::optional<common::YamlMap> assembly = traces->Map("assembly")) {
    assembly->Read("idle_timeout", out.assembly.idle_timeout);
    assembly->Read("max_wait", out.assembly.max_wait);
    assembly->Read("max_traces", out.assembly.max_traces);
    assembly->Read("max_spans", out.assembly.max_spans);
    traces->Fail(assembly->Finish());
  }
  if (std::optional<common::YamlMap> sampling = traces->Map("sampling")) {
    sampling->Read("keep_errors", out.sampling.keep_errors);
    sampling->Read("latency_threshold", out.sampling.latency_threshold);
    sampling->Read("keep_head_sampled", out.sampling.keep_head_sampled);
    sampling->Read("percentage", out.sampling.percentage);
    sampling->Read("per_service_rate_limit", out.sampling.per_service_rate_limit);
    traces->Fail(sampling->Finish());
  }
  root.Fail(traces->Finish());
  root.Fail(out.Validate());
}

}  // namespace meshtel::collector
