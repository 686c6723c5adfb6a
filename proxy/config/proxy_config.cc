#include "proxy/config/proxy_config.h"

#include "collector/common/program.h"
#include "collector/common/yaml_map.h"
#include "fmt/format.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <string_view>

namespace meshtel::proxy {
namespace {

absl::Status Invalid(const std::string& path, const std::string& what) {
  return absl::InvalidArgumentError(fmt::format("{}: {}", path, what));
}

absl::Status CheckPositive(const std::string& path, absl::Duration value) {
  if (value <= absl::ZeroDuration()) {
    return Invalid(path, fmt::format("'{}' must be greater than 0", absl::FormatDuration(value)));
  }
  return absl::OkStatus();
}

bool IsDnsName(const std::string& host) {
  if (host.empty() || host.size() > 253 || host.front() == '.' || host.back() == '.') return false;
  for (char c : host) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

void ApplyIstioEnvironment(WorkloadConfig& workload, bool namespace_set,
                           const std::function<const char*(const char*)>& getenv) {
  const auto from_env = [&](std::string& field, std::initializer_list<const char*> names) {
    if (!field.empty()) return;
    for (const char* name : names) {
      const char* value = getenv(name);
      if (value != nullptr && *value != '\0') {
        field = value;
        return;
      }
    }
  };
  from_env(workload.name, {"ISTIO_META_WORKLOAD_NAME", "POD_NAME"});
  if (!namespace_set) {
    std::string from_pod;
    from_env(from_pod, {"POD_NAMESPACE", "ISTIO_META_NAMESPACE"});
    if (!from_pod.empty()) workload.namespace_name = from_pod;
  }
  from_env(workload.app, {"ISTIO_META_APP", "ISTIO_META_LABELS_APP"});
  from_env(workload.version, {"ISTIO_META_VERSION", "ISTIO_META_LABELS_VERSION"});
  from_env(workload.canonical_service, {"ISTIO_META_CANONICAL_SERVICE"});
  from_env(workload.canonical_revision, {"ISTIO_META_CANONICAL_REVISION"});
  if (workload.cluster == "Kubernetes") {
    std::string cluster;
    from_env(cluster, {"ISTIO_META_CLUSTER_ID"});
    if (!cluster.empty()) workload.cluster = cluster;
  }
  if (workload.principal.empty()) {
    std::string account;
    from_env(account, {"SERVICE_ACCOUNT"});
    if (!account.empty()) {
      workload.principal =
          fmt::format("spiffe://cluster.local/ns/{}/sa/{}", workload.namespace_name, account);
    }
  }
}

absl::Status ApplyDefaultLabels(WorkloadConfig& workload, bool labels_set,
                                const std::function<const char*(const char*)>& getenv) {
  if (labels_set) return absl::OkStatus();
  const char* json = getenv("ISTIO_METAJSON_LABELS");
  if (json != nullptr && *json != '\0') {
    // JSON is YAML here: a flow mapping of quoted strings.
    YAML::Node labels;
    try {
      labels = YAML::Load(json);
    } catch (const YAML::Exception& exception) {
      return Invalid("ISTIO_METAJSON_LABELS", fmt::format("not JSON: {}", exception.what()));
    }
    if (!labels.IsMap()) return Invalid("ISTIO_METAJSON_LABELS", "not a JSON object");
    for (const auto& entry : labels) {
      if (!entry.second.IsScalar()) {
        return Invalid("ISTIO_METAJSON_LABELS",
                       fmt::format("label '{}' is not a string", entry.first.Scalar()));
      }
      workload.labels[entry.first.Scalar()] = entry.second.Scalar();
    }
    return absl::OkStatus();
  }
  if (!workload.app.empty()) workload.labels["app"] = workload.app;
  if (!workload.version.empty()) workload.labels["version"] = workload.version;
  return absl::OkStatus();
}

absl::Status ProxyConfig::Validate() const {
  if (!common::IsLogLevel(log_level)) {
    return Invalid("log_level",
                   fmt::format("'{}' is not one of trace, debug, info, warn, error, critical, off",
                               log_level));
  }
  if (io_threads > 256)
    return Invalid("io_threads", fmt::format("{} is not in [0, 256]", io_threads));
  for (const auto& [path, value] :
       {std::pair<const char*, absl::Duration>{"idle_timeout", idle_timeout},
        {"connect_timeout", connect_timeout},
        {"inbound.timeout", inbound.timeout},
        {"outbound.timeout", outbound.timeout},
        {"reporter.flush_interval", reporter.flush_interval},
        {"reporter.reconnect_initial_backoff", reporter.reconnect_initial_backoff},
        {"reporter.reconnect_max_backoff", reporter.reconnect_max_backoff},
        {"reporter.failover_after", reporter.failover_after},
        {"upstream.queue_timeout", upstream.queue_timeout},
        {"upstream.idle_timeout", upstream.idle_timeout}}) {
    if (absl::Status status = CheckPositive(path, value); !status.ok()) return status;
  }
  if (reporter.reconnect_max_backoff < reporter.reconnect_initial_backoff) {
    return Invalid("reporter.reconnect_max_backoff",
                   fmt::format("'{}' must not be less than reporter.reconnect_initial_backoff",
                               absl::FormatDuration(reporter.reconnect_max_backoff)));
  }
  if (upstream.max_connections_per_destination == 0) {
    return Invalid("upstream.max_connections_per_destination", "0 is not at least 1");
  }
  if (reporter.collectors.empty()) return Invalid("reporter.collectors", "must list an address");
  for (size_t i = 0; i < reporter.collectors.size(); ++i) {
    if (reporter.collectors[i].port == 0) {
      return Invalid(fmt::format("reporter.collectors[{}]", i),
                     fmt::format("'{}' needs a port", reporter.collectors[i].ToString()));
    }
    for (size_t j = 0; j < i; ++j) {
      if (reporter.collectors[j] == reporter.collectors[i]) {
        return Invalid(fmt::format("reporter.collectors[{}]", i),
                       fmt::format("'{}' is listed twice", reporter.collectors[i].ToString()));
      }
    }
  }
  if (reporter.max_batch_records == 0 || reporter.max_batch_records > 100000) {
    return Invalid("reporter.max_batch_records",
                   fmt::format("{} is not in [1, 100000]", reporter.max_batch_records));
  }
  if (reporter.max_queued_records < 64 || reporter.max_queued_records > (1u << 24)) {
    return Invalid("reporter.max_queued_records",
                   fmt::format("{} is not in [64, 16777216]", reporter.max_queued_records));
  }
  if (reporter.max_queued_records < reporter.max_batch_records) {
    return Invalid("reporter.max_queued_records",
                   fmt::format("{} is less than reporter.max_batch_records ({})",
                               reporter.max_queued_records, reporter.max_batch_records));
  }
  if (reporter.max_unacked_bytes < (64 << 10)) {
    return Invalid("reporter.max_unacked_bytes",
                   fmt::format("{} is less than 65536", reporter.max_unacked_bytes));
  }
  if (!(tracing.random_sampling_percentage >= 0 && tracing.random_sampling_percentage <= 100)) {
    return Invalid("tracing.random_sampling_percentage",
                   fmt::format("{} is not in [0, 100]", tracing.random_sampling_percentage));
  }
  for (size_t i = 0; i < tracing.propagation.size(); ++i) {
    const std::string& form = tracing.propagation[i];
    if (form != "w3c" && form != "b3multi" && form != "b3") {
      return Invalid(fmt::format("tracing.propagation[{}]", i),
                     fmt::format("'{}' is not one of w3c, b3multi, b3", form));
    }
  }
  if (capture_request_headers.size() > 32) {
    return Invalid("capture_request_headers",
                   fmt::format("{} headers are more than 32", capture_request_headers.size()));
  }
  for (size_t i = 0; i < capture_request_headers.size(); ++i) {
    const std::string& name = capture_request_headers[i];
    const bool token = !name.empty() && std::all_of(name.begin(), name.end(), [](unsigned char c) {
      return (std::isalnum(c) && !std::isupper(c)) ||
             std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) !=
                 std::string_view::npos;
    });
    if (!token) {
      return Invalid(fmt::format("capture_request_headers[{}]", i),
                     fmt::format("'{}' is not a header name", name));
    }
    for (size_t j = 0; j < i; ++j) {
      if (capture_request_headers[j] == name) {
        return Invalid(fmt::format("capture_request_headers[{}]", i),
                       fmt::format("'{}' is already capture_request_headers[{}]", name, j));
      }
    }
  }
  if (workload.namespace_name.empty()) return Invalid("workload.namespace", "must not be empty");
  for (const auto& [name, value] : workload.labels) {
    if (name.empty()) return Invalid("workload.labels", "a label name is empty");
  }
  if (absl::Status status = access_log.render.Validate("access_log"); !status.ok()) return status;
  if (access_log.max_buffered_bytes < (64 << 10) || access_log.max_buffered_bytes > (1u << 30)) {
    return Invalid("access_log.max_buffered_bytes",
                   fmt::format("{} is not in [65536, 1073741824]", access_log.max_buffered_bytes));
  }
  if (inbound.enabled && outbound.enabled && inbound.listen == outbound.listen &&
      inbound.listen.port != 0) {
    return Invalid("outbound.listen",
                   fmt::format("{} is already inbound.listen", outbound.listen.ToString()));
  }
  if (inbound.enabled && !common::IsIpAddress(inbound.listen.host)) {
    return Invalid("inbound.listen", fmt::format("'{}' is not an IP address", inbound.listen.host));
  }
  if (outbound.enabled && !common::IsIpAddress(outbound.listen.host)) {
    return Invalid("outbound.listen",
                   fmt::format("'{}' is not an IP address", outbound.listen.host));
  }
  if (admin.enabled && !common::IsIpAddress(admin.listen.host)) {
    return Invalid("admin.listen", fmt::format("'{}' is not an IP address", admin.listen.host));
  }
  if (inbound.enabled && inbound.app.port == 0) {
    return Invalid("inbound.app", fmt::format("'{}' needs a port", inbound.app.ToString()));
  }
  for (size_t i = 0; i < outbound.routes.size(); ++i) {
    const RouteConfig& route = outbound.routes[i];
    const std::string path = fmt::format("outbound.routes[{}]", i);
    if (!IsDnsName(route.host)) {
      return Invalid(path + ".host", fmt::format("'{}' is not a lower-case DNS name", route.host));
    }
    if (route.addresses.empty()) return Invalid(path + ".addresses", "must list an address");
    for (size_t j = 0; j < route.addresses.size(); ++j) {
      if (route.addresses[j].port == 0) {
        return Invalid(fmt::format("{}.addresses[{}]", path, j),
                       fmt::format("'{}' needs a port", route.addresses[j].ToString()));
      }
    }
    for (size_t j = 0; j < i; ++j) {
      if (outbound.routes[j].host == route.host) {
        return Invalid(path + ".host",
                       fmt::format("'{}' is already outbound.routes[{}].host", route.host, j));
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<ProxyConfig> ParseProxyConfig(const YAML::Node& root) {
  ProxyConfig config;
  common::YamlMap top(root, "");
  top.Read("log_level", config.log_level);
  top.Read("instance_id", config.instance_id);
  top.Read("io_threads", config.io_threads);
  top.Read("max_body_bytes", config.max_body_bytes);
  top.Read("idle_timeout", config.idle_timeout);
  top.Read("connect_timeout", config.connect_timeout);
  top.Read("drain_timeout", config.drain_timeout);
  top.Read("capture_request_headers", config.capture_request_headers);
  for (std::string& name : config.capture_request_headers) {
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  }
  bool namespace_set = false;
  bool labels_set = false;
  if (auto workload = top.Map("workload")) {
    WorkloadConfig& w = config.workload;
    workload->Read("name", w.name);
    namespace_set = workload->Has("namespace");
    workload->Read("namespace", w.namespace_name);
    workload->Read("app", w.app);
    workload->Read("version", w.version);
    workload->Read("canonical_service", w.canonical_service);
    workload->Read("canonical_revision", w.canonical_revision);
    workload->Read("cluster", w.cluster);
    workload->Read("principal", w.principal);
    workload->Read("service_host", w.service_host);
    labels_set = workload->Has("labels");
    std::vector<std::pair<std::string, std::string>> labels;
    workload->Read("labels", labels);
    w.labels.insert(labels.begin(), labels.end());
    top.Fail(workload->Finish());
  }
  if (auto inbound = top.Map("inbound")) {
    inbound->Read("enabled", config.inbound.enabled);
    inbound->Read("listen", config.inbound.listen);
    inbound->Read("app", config.inbound.app);
    inbound->Read("timeout", config.inbound.timeout);
    inbound->Read("transparent", config.inbound.transparent);
    top.Fail(inbound->Finish());
  }
  if (auto outbound = top.Map("outbound")) {
    outbound->Read("enabled", config.outbound.enabled);
    outbound->Read("listen", config.outbound.listen);
    outbound->Read("timeout", config.outbound.timeout);
    outbound->Read("transparent", config.outbound.transparent);
    for (common::YamlMap& route_map : outbound->MapList("routes")) {
      RouteConfig route;
      route_map.Read("host", route.host);
      route_map.Read("addresses", route.addresses);
      route_map.Read("timeout", route.timeout);
      outbound->Fail(route_map.Finish());
      config.outbound.routes.push_back(std::move(route));
    }
    top.Fail(outbound->Finish());
  }
  if (auto reporter = top.Map("reporter")) {
    ReporterConfig& r = config.reporter;
    common::HostPort single;
    const bool has_single = reporter->Has("collector");
    reporter->Read("collector", single);
    std::vector<common::HostPort> several;
    const bool has_several = reporter->Has("collectors");
    reporter->Read("collectors", several);
    if (has_single && has_several) {
      reporter->Fail(Invalid("reporter.collectors", "set either collector or collectors"));
    } else if (has_single) {
      r.collectors = {single};
    } else if (has_several) {
      r.collectors = std::move(several);
    }
    reporter->Read("max_batch_records", r.max_batch_records);
    reporter->Read("max_queued_records", r.max_queued_records);
    reporter->Read("failover_after", r.failover_after);
    reporter->Read("flush_interval", r.flush_interval);
    reporter->Read("max_unacked_bytes", r.max_unacked_bytes);
    reporter->Read("reconnect_initial_backoff", r.reconnect_initial_backoff);
    reporter->Read("reconnect_max_backoff", r.reconnect_max_backoff);
    top.Fail(reporter->Finish());
  }
  if (auto upstream = top.Map("upstream")) {
    UpstreamConfig& u = config.upstream;
    upstream->Read("max_connections_per_destination", u.max_connections_per_destination);
    upstream->Read("max_pending_requests", u.max_pending_requests);
    upstream->Read("queue_timeout", u.queue_timeout);
    upstream->Read("idle_timeout", u.idle_timeout);
    top.Fail(upstream->Finish());
  }
  if (auto admin = top.Map("admin")) {
    admin->Read("enabled", config.admin.enabled);
    admin->Read("listen", config.admin.listen);
    top.Fail(admin->Finish());
  }
  if (auto tracing = top.Map("tracing")) {
    tracing->Read("random_sampling_percentage", config.tracing.random_sampling_percentage);
    tracing->Read("propagation", config.tracing.propagation);
    top.Fail(tracing->Finish());
  }
  if (auto access_log = top.Map("access_log")) {
    access_log->Read("path", config.access_log.path);
    collector::ReadAccessLogFormat(*access_log, config.access_log.render);
    access_log->Read("max_buffered_bytes", config.access_log.max_buffered_bytes);
    top.Fail(access_log->Finish());
  }
  if (auto policy = top.Map("policy")) {
    policy->Read("enabled", config.policy.enabled);
    top.Fail(policy->Finish());
  }
  if (absl::Status status = top.Finish(); !status.ok()) return status;
  const auto getenv = [](const char* name) { return std::getenv(name); };
  ApplyIstioEnvironment(config.workload, namespace_set, getenv);
  if (absl::Status status = ApplyDefaultLabels(config.workload, labels_set, getenv); !status.ok()) {
    return status;
  }
  if (config.workload.service_host.empty() && !config.workload.name.empty()) {
    config.workload.service_host = fmt::format("{}.{}.svc.cluster.local", config.workload.name,
                                               config.workload.namespace_name);
  }
  if (absl::Status status = config.Validate(); !status.ok()) return status;
  return config;
}

absl::StatusOr<ProxyConfig> LoadProxyConfig(const std::string& file_path) {
  return common::LoadConfigFile<ProxyConfig>(file_path, &ParseProxyConfig);
}

}  // namespace meshtel::proxy
