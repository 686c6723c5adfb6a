#include "exporters/loki/loki_exporter.h"

#include <algorithm>
#include <array>
#include <memory>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "collector/common/yaml_map.h"
#include "exporters/loki/loki_encoder.h"
#include "exporters/loki/loki_sender.h"

namespace meshtel::exporters {

namespace {

struct FieldName {
  std::string_view name;
  LokiLabelField field;
};

constexpr std::array<FieldName, 20> kFieldNames = {{
    {"reporter", LokiLabelField::kReporter},
    {"source_workload", LokiLabelField::kSourceWorkload},
    {"source_namespace", LokiLabelField::kSourceNamespace},
    {"source_app", LokiLabelField::kSourceApp},
    {"source_version", LokiLabelField::kSourceVersion},
    {"source_canonical_service", LokiLabelField::kSourceCanonicalService},
    {"source_cluster", LokiLabelField::kSourceCluster},
    {"destination_workload", LokiLabelField::kDestinationWorkload},
    {"destination_namespace", LokiLabelField::kDestinationNamespace},
    {"destination_app", LokiLabelField::kDestinationApp},
    {"destination_version", LokiLabelField::kDestinationVersion},
    {"destination_canonical_service", LokiLabelField::kDestinationCanonicalService},
    {"destination_cluster", LokiLabelField::kDestinationCluster},
    {"destination_service", LokiLabelField::kDestinationService},
    {"destination_service_name", LokiLabelField::kDestinationServiceName},
    {"destination_service_namespace", LokiLabelField::kDestinationServiceNamespace},
    {"request_protocol", LokiLabelField::kRequestProtocol},
    {"method", LokiLabelField::kMethod},
    {"response_code", LokiLabelField::kResponseCode},
    {"response_code_class", LokiLabelField::kResponseCodeClass},
}};

// Record fields that differ from request to request: as labels they would make a stream per
// request. They stay in the line (and trace_id, request_id in structured metadata).
constexpr std::array<std::string_view, 14> kPerRequestFields = {
    "path",           "request_id",   "trace_id",   "span_id",
    "parent_span_id", "authority",    "user_agent", "forwarded_for",
    "upstream_host",  "start_time",   "duration",   "downstream_remote_address",
    "response_bytes", "request_bytes"};

bool ValidLabelName(std::string_view name) {
  if (name.empty() || name.starts_with("__")) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    const bool digit = c >= '0' && c <= '9';
    if (!letter && !(digit && i > 0)) return false;
  }
  return true;
}

absl::Status Invalid(std::string_view path, std::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(std::string(path), ": ", std::string(what)));
}

absl::Status CheckLabelName(const std::string& path, const std::string& name) {
  if (ValidLabelName(name)) return absl::OkStatus();
  return Invalid(path, absl::StrCat("'", name,
                                    "' is not a valid Loki label name ([a-zA-Z_][a-zA-Z0-9_]*, "
                                    "not starting with __)"));
}

// True when `key` is present with a value (a key with no value keeps its default).
bool Present(const YAML::Node& settings, const std::string& key) {
  return settings.IsMap() && settings[key] && !settings[key].IsNull();
}

constexpr std::array<std::string_view, 17> kLokiDefaultIndexAttributes = {
    "service.name",           "service.namespace",    "service.instance.id",
    "deployment.environment", "cloud.region",         "cloud.availability_zone",
    "k8s.cluster.name",       "k8s.namespace.name",   "k8s.pod.name",
    "k8s.container.name",     "container.name",       "k8s.replicaset.name",
    "k8s.deployment.name",    "k8s.statefulset.name", "k8s.daemonset.name",
    "k8s.cronjob.name",       "k8s.job.name",
};

}  // namespace

std::string LokiAttributeName(std::string_view name) {
  std::string out;
  out.reserve(name.size() + 4);
  for (char c : name) {
    const bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    out.push_back(keep ? c : '_');
  }
  if (!out.empty() && out[0] >= '0' && out[0] <= '9') {
    out.insert(0, "key_");
  } else if (out.starts_with("_") && !out.starts_with("__")) {
    out.insert(0, "key");
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> DefaultLokiResourceLabels() {
  std::vector<std::pair<std::string, std::string>> labels;
  labels.reserve(kLokiDefaultIndexAttributes.size());
  for (std::string_view attribute : kLokiDefaultIndexAttributes) {
    labels.emplace_back(std::string(attribute), LokiAttributeName(attribute));
  }
  return labels;
}

std::string_view LokiLabelFieldName(LokiLabelField field) {
  for (const FieldName& entry : kFieldNames) {
    if (entry.field == field) return entry.name;
  }
  return "";
}

absl::StatusOr<LokiConfig> ParseLokiConfig(const YAML::Node& settings, const std::string& path) {
  LokiConfig config;
  common::YamlMap map(settings, path);
  map.Read("url", config.url);
  map.Read("tenant_id", config.tenant_id);
  const bool has_basic_auth = Present(settings, "basic_auth");
  if (std::optional<common::YamlMap> auth = map.Map("basic_auth")) {
    auth->Read("username", config.basic_auth_username);
    auth->Read("password", config.basic_auth_password);
    map.Fail(auth->Finish());
  }
  map.Read("bearer_token", config.bearer_token);
  map.Read("timeout", config.timeout);
  std::vector<std::pair<std::string, std::string>> labels;
  const bool has_labels = Present(settings, "labels");
  map.Read("labels", labels);
  const bool has_static_labels = Present(settings, "static_labels");
  std::vector<std::pair<std::string, std::string>> static_labels;
  map.Read("static_labels", static_labels);
  const bool has_resource_labels = Present(settings, "resource_labels");
  std::vector<std::pair<std::string, std::string>> resource_labels;
  map.Read("resource_labels", resource_labels);
  map.Read("max_line_bytes", config.max_line_bytes);
  map.Read("structured_metadata", config.structured_metadata);
  map.Read("reject_older_than", config.reject_older_than);
  map.Read("creation_grace_period", config.creation_grace_period);
  map.Node("tls");  // read below, once the url's scheme is known
  if (absl::Status status = map.Finish(); !status.ok()) return status;

  if (config.url.empty()) return Invalid(map.PathOf("url"), "is required");
  absl::StatusOr<common::HttpUrl> endpoint = common::ParseHttpUrl(config.url);
  if (!endpoint.ok()) return Invalid(map.PathOf("url"), std::string(endpoint.status().message()));
  config.endpoint = *std::move(endpoint);
  absl::StatusOr<common::TlsConfig> tls =
      common::ReadUrlTlsConfig(map, "url", config.endpoint.https);
  if (!tls.ok()) return tls.status();
  config.tls = *std::move(tls);
  if (has_basic_auth && config.basic_auth_username.empty()) {
    return Invalid(map.PathOf("basic_auth.username"), "is required");
  }
  if (!config.basic_auth_username.empty() && !config.bearer_token.empty()) {
    return Invalid(map.PathOf("bearer_token"), "cannot be combined with basic_auth");
  }
  if (config.timeout <= absl::ZeroDuration()) {
    return Invalid(map.PathOf("timeout"), "must be more than 0");
  }
  if (config.max_line_bytes < 1) return Invalid(map.PathOf("max_line_bytes"), "must be at least 1");
  if (config.reject_older_than <= absl::ZeroDuration()) {
    return Invalid(map.PathOf("reject_older_than"), "must be more than 0");
  }
  if (config.creation_grace_period <= absl::ZeroDuration()) {
    return Invalid(map.PathOf("creation_grace_period"), "must be more than 0");
  }

  if (has_labels) {
    config.labels.clear();
    for (const auto& [name, field_name] : labels) {
      const std::string at = absl::StrCat(map.PathOf("labels"), ".", name);
      if (absl::Status status = CheckLabelName(at, name); !status.ok()) return status;
      const FieldName* found = nullptr;
      for (const FieldName& entry : kFieldNames) {
        if (entry.name == field_name) found = &entry;
      }
      if (found == nullptr) {
        for (std::string_view refused : kPerRequestFields) {
          if (refused == field_name) {
            return Invalid(at, absl::StrCat("'", field_name,
                                            "' changes with every request and cannot be a label "
                                            "(it would make one stream per request); it is in the "
                                            "line, and trace_id and request_id are in structured "
                                            "metadata"));
          }
        }
        std::vector<std::string> names;
        for (const FieldName& entry : kFieldNames) names.emplace_back(entry.name);
        return Invalid(at, absl::StrCat("'", field_name, "' is not a label field; one of: ",
                                        absl::StrJoin(names, ", ")));
      }
      config.labels.push_back({name, found->field});
    }
  }
  if (has_static_labels) {
    config.static_labels.clear();
    for (const auto& [name, value] : static_labels) {
      const std::string at = absl::StrCat(map.PathOf("static_labels"), ".", name);
      if (absl::Status status = CheckLabelName(at, name); !status.ok()) return status;
      if (value.empty() || value.size() > 2048) {
        return Invalid(at, "must be 1 to 2048 bytes long");
      }
      config.static_labels.emplace_back(name, value);
    }
  }
  for (const auto& [name, value] : config.static_labels) {
    for (const LokiLabel& label : config.labels) {
      if (label.name == name) {
        return Invalid(absl::StrCat(map.PathOf("static_labels"), ".", name), "is also in labels");
      }
    }
  }
  if (has_resource_labels) {
    // Present, even empty ({}): it replaces the default mapping.
    config.resource_labels.clear();
    for (const auto& [attribute, name] : resource_labels) {
      const std::string at = absl::StrCat(map.PathOf("resource_labels"), ".", attribute);
      if (attribute.empty()) return Invalid(at, "an attribute name must not be empty");
      if (absl::Status status = CheckLabelName(at, name); !status.ok()) return status;
      for (const auto& [other_attribute, other_name] : config.resource_labels) {
        if (other_name == name) {
          return Invalid(at, absl::StrCat("label '", name, "' is already the label of '",
                                          other_attribute, "'"));
        }
      }
      for (const auto& [static_name, value] : config.static_labels) {
        if (static_name == name) {
          return Invalid(at, absl::StrCat("label '", name, "' is also in static_labels"));
        }
      }
      config.resource_labels.emplace_back(attribute, name);
    }
  } else {
    // The default mapping makes way for a static label of the same name.
    std::erase_if(config.resource_labels, [&config](const auto& entry) {
      for (const auto& [static_name, value] : config.static_labels) {
        if (static_name == entry.second) return true;
      }
      return false;
    });
  }
  if (config.static_labels.empty() &&
      std::none_of(config.resource_labels.begin(), config.resource_labels.end(),
                   [](const auto& entry) { return entry.first == "service.name"; })) {
    return Invalid(map.PathOf("resource_labels"),
                   "without static_labels, service.name must be mapped to a label (a received "
                   "log record needs at least one label)");
  }
  const size_t total = config.labels.size() + config.static_labels.size();
  if (total == 0) return Invalid(map.PathOf("labels"), "Loki needs at least one label");
  if (total > kLokiMaxLabels) {
    return Invalid(
        map.PathOf("labels"),
        absl::StrCat(total, " labels with static_labels, over Loki's limit of ", kLokiMaxLabels));
  }
  return config;
}

absl::StatusOr<collector::Exporter> BuildLokiExporter(const collector::ExporterConfig& config,
                                                      const collector::AccessLogLines& lines) {
  const std::string path =
      config.settings_path.empty() ? absl::StrCat(config.name, ".loki") : config.settings_path;
  absl::StatusOr<LokiConfig> loki = ParseLokiConfig(config.settings, path);
  if (!loki.ok()) return loki.status();
  collector::Exporter exporter;
  exporter.name = config.name;
  exporter.type = "loki";
  exporter.family =
      config.family == "spans" ? collector::RecordFamily::kSpans : collector::RecordFamily::kLogs;
  auto sender = std::make_unique<LokiSender>(*loki);
  if (!sender->tls_status().ok()) {
    return Invalid(absl::StrCat(path, ".tls"), std::string(sender->tls_status().message()));
  }
  exporter.encoder = std::make_unique<LokiEncoder>(*loki, lines, config.name);
  exporter.sender = std::move(sender);
  return exporter;
}

}  // namespace meshtel::exporters
