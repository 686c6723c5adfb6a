#include "collector/policy/telemetry_policy.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <set>
#include <tuple>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "collector/common/yaml_map.h"
#include "collector/policy/filter_expression.h"
#include "fmt/format.h"
#include "yaml-cpp/yaml.h"

namespace meshtel::collector {
namespace {

using common::YamlMap;

constexpr std::string_view kMeshConfigApiVersion = "meshtel.io/v1";
constexpr std::string_view kPrometheusProvider = "prometheus";

// Kubernetes ObjectMeta fields that `kubectl get -o yaml` prints besides name and namespace:
// accepted and ignored.
constexpr std::string_view kIgnoredMetadataKeys[] = {"generateName",
                                                     "selfLink",
                                                     "uid",
                                                     "resourceVersion",
                                                     "generation",
                                                     "creationTimestamp",
                                                     "deletionTimestamp",
                                                     "deletionGracePeriodSeconds",
                                                     "labels",
                                                     "annotations",
                                                     "ownerReferences",
                                                     "finalizers",
                                                     "managedFields"};

// Which signal a provider reference is for.
enum class Signal : uint8_t { kTracing, kMetrics, kAccessLogging };

// A provider name a resource refers to, checked once every document is read (the MeshConfig
// may come after the Telemetry resources).
struct ProviderReference {
  std::string prefix;  // "document 2 (Telemetry shop/reviews)"
  std::string path;    // "spec.tracing[0].providers[0].name"
  std::string name;
  Signal signal;
};

// Parsing state shared by the documents of one file.
struct ParseState {
  bool have_mesh_config = false;
  std::string mesh_config_document;
  MeshDefaults mesh;
  std::vector<TelemetryPolicy::Resource> resources;
  std::vector<std::string> resource_documents;  // parallel to resources
  std::vector<ProviderReference> references;
};

std::string Fnv1a64Hex(std::string_view text) {
  uint64_t hash = 14695981039346656037ull;
  for (const unsigned char c : text) {
    hash ^= c;
    hash *= 1099511628211ull;
  }
  return fmt::format("{:016x}", hash);
}

// An optional bool: absent or null stays nullopt.
std::optional<bool> ReadOptionalBool(YamlMap& map, std::string_view key) {
  if (!map.Node(key).IsDefined()) return std::nullopt;
  bool value = false;
  map.Read(key, value);
  return value;
}

// Records "<path>: <what>" in `map`.
void FailAt(YamlMap& map, std::string_view key, std::string_view what) {
  map.Fail(absl::InvalidArgumentError(fmt::format("{}: {}", map.PathOf(key), what)));
}

// Marks `key` as known and fails when it is present: an Istio field meshtel does not implement.
void RejectUnsupported(YamlMap& map, std::string_view key, std::string_view why) {
  if (map.Has(key)) {
    map.Node(key);
    FailAt(map, key, fmt::format("not supported by meshtel ({})", why));
  }
}

// A sampling percentage: a number in [0,100] in steps of 0.01.
std::optional<double> ReadPercentage(YamlMap& map, std::string_view key) {
  const YAML::Node node = map.Node(key);
  if (!node.IsDefined()) return std::nullopt;
  const std::string text = node.IsScalar() ? node.Scalar() : "";
  double value = 0;
  if (!node.IsScalar() || !absl::SimpleAtod(text, &value)) {
    FailAt(map, key, fmt::format("'{}' is not a number", text));
    return std::nullopt;
  }
  if (!(value >= 0 && value <= 100)) {
    FailAt(map, key, fmt::format("{} is not in [0,100]", text));
    return std::nullopt;
  }
  const double hundredths = value * 100;
  if (std::abs(hundredths - std::round(hundredths)) > 1e-6) {
    FailAt(map, key, fmt::format("{} is finer than the 0.01 steps allowed", text));
    return std::nullopt;
  }
  return value;
}

WorkloadMode ReadMode(YamlMap& entry) {
  WorkloadMode mode = WorkloadMode::kClientAndServer;
  if (auto match = entry.Map("match")) {
    std::string text;
    match->Read("mode", text);
    if (text == "CLIENT") {
      mode = WorkloadMode::kClient;
    } else if (text == "SERVER") {
      mode = WorkloadMode::kServer;
    } else if (!text.empty() && text != "CLIENT_AND_SERVER") {
      FailAt(*match, "mode",
             fmt::format("'{}' is not one of CLIENT, SERVER, CLIENT_AND_SERVER", text));
    }
    entry.Fail(match->Finish());
  }
  return mode;
}

// spec.<signal>[i].providers: [{name}]; nullopt when absent.
std::optional<std::vector<std::string>> ReadProviders(YamlMap& entry, Signal signal,
                                                      const std::string& prefix,
                                                      ParseState& state) {
  if (!entry.Node("providers").IsDefined()) return std::nullopt;
  std::vector<std::string> names;
  for (YamlMap& provider : entry.MapList("providers")) {
    std::string name;
    provider.Read("name", name);
    if (name.empty()) {
      FailAt(provider, "name", "required");
    } else {
      state.references.push_back({prefix, provider.PathOf("name"), name, signal});
    }
    entry.Fail(provider.Finish());
    names.push_back(std::move(name));
  }
  return names;
}

std::vector<CustomTag> ReadCustomTags(YamlMap& entry) {
  std::vector<CustomTag> tags;
  const YAML::Node node = entry.Node("customTags");
  if (!node.IsDefined()) return tags;
  const std::string path = entry.PathOf("customTags");
  if (!node.IsMap()) {
    entry.Fail(absl::InvalidArgumentError(
        fmt::format("{}: must be a mapping of tag names to literal, header, environment or "
                    "formatter",
                    path)));
    return tags;
  }
  std::set<std::string> seen;
  for (const auto& item : node) {
    CustomTag tag;
    tag.name = item.first.IsScalar() ? item.first.Scalar() : "";
    const std::string tag_path = fmt::format("{}.{}", path, tag.name);
    if (tag.name.empty()) {
      entry.Fail(absl::InvalidArgumentError(fmt::format("{}: a tag name is empty", path)));
      return tags;
    }
    if (!seen.insert(tag.name).second) {
      entry.Fail(absl::InvalidArgumentError(fmt::format("{}: duplicate tag", tag_path)));
      return tags;
    }
    YamlMap fields(item.second, tag_path);
    int kinds = 0;
    if (auto literal = fields.Map("literal")) {
      ++kinds;
      tag.kind = CustomTag::Kind::kLiteral;
      if (!literal->Has("value")) FailAt(*literal, "value", "required");
      literal->Read("value", tag.value);
      fields.Fail(literal->Finish());
    }
    if (auto header = fields.Map("header")) {
      ++kinds;
      tag.kind = CustomTag::Kind::kHeader;
      header->Read("name", tag.value);
      header->Read("defaultValue", tag.default_value);
      if (tag.value.empty()) FailAt(*header, "name", "required");
      tag.value = absl::AsciiStrToLower(tag.value);
      fields.Fail(header->Finish());
    }
    if (auto environment = fields.Map("environment")) {
      ++kinds;
      tag.kind = CustomTag::Kind::kEnvironment;
      environment->Read("name", tag.value);
      environment->Read("defaultValue", tag.default_value);
      if (tag.value.empty()) FailAt(*environment, "name", "required");
      fields.Fail(environment->Finish());
    }
    if (auto formatter = fields.Map("formatter")) {
      ++kinds;
      tag.kind = CustomTag::Kind::kFormatter;
      formatter->Read("value", tag.value);
      if (tag.value.empty()) {
        FailAt(*formatter, "value", "required");
      } else if (absl::StatusOr<AccessLogFormat> compiled =
                     AccessLogFormat::Compile(tag.value, AccessLogEncoding::kText);
                 !compiled.ok()) {
        FailAt(*formatter, "value", std::string(compiled.status().message()));
      }
      fields.Fail(formatter->Finish());
    }
    absl::Status status = fields.Finish();
    if (status.ok() && kinds != 1) {
      status = absl::InvalidArgumentError(
          fmt::format("{}: needs exactly one of literal, header, environment or formatter (has {})",
                      tag_path, kinds));
    }
    entry.Fail(std::move(status));
    tags.push_back(std::move(tag));
  }
  std::sort(tags.begin(), tags.end(),
            [](const CustomTag& a, const CustomTag& b) { return a.name < b.name; });
  return tags;
}

TracingEntry ReadTracingEntry(YamlMap& entry, const std::string& prefix, ParseState& state) {
  TracingEntry tracing;
  tracing.mode = ReadMode(entry);
  tracing.providers = ReadProviders(entry, Signal::kTracing, prefix, state);
  tracing.random_sampling_percentage = ReadPercentage(entry, "randomSamplingPercentage");
  tracing.disable_span_reporting = ReadOptionalBool(entry, "disableSpanReporting");
  if (entry.Node("customTags").IsDefined()) tracing.custom_tags = ReadCustomTags(entry);
  tracing.phase_spans = ReadOptionalBool(entry, "phaseSpans");
  RejectUnsupported(entry, "useRequestIdForTraceSampling", "the proxy samples at random");
  RejectUnsupported(entry, "enableIstioTags", "spans carry meshtel's own tags");
  RejectUnsupported(entry, "disableContextPropagation", "the proxy always propagates context");
  return tracing;
}

MetricsEntry ReadMetricsEntry(YamlMap& entry, const std::string& prefix, ParseState& state) {
  MetricsEntry metrics;
  metrics.providers = ReadProviders(entry, Signal::kMetrics, prefix, state);
  // keep_labels is the collector's own key (metrics.keep_labels), not the Telemetry API's.
  if (entry.Has("keep_labels")) {
    entry.Fail(absl::InvalidArgumentError(
        fmt::format("{}: unknown key (keep_labels is the collector's metrics.keep_labels)",
                    entry.PathOf("keep_labels"))));
  }
  std::optional<std::vector<std::string>> keep_labels;
  ReadMetricOverrides(entry, metrics.overrides, keep_labels);
  RejectUnsupported(entry, "reportingInterval", "records are counted as they arrive");
  return metrics;
}

// logFormat: {text: "..."} (TEXT) or {labels: {key: "..."}} (JSON).
std::optional<AccessLogConfig> ReadLogFormat(YamlMap& entry) {
  std::optional<YamlMap> log_format = entry.Map("logFormat");
  if (!log_format) return std::nullopt;
  AccessLogConfig config;
  const bool has_text = log_format->Node("text").IsDefined();
  const bool has_labels = log_format->Node("labels").IsDefined();
  if (has_text == has_labels) {
    entry.Fail(absl::InvalidArgumentError(
        fmt::format("{}: needs exactly one of text or labels", entry.PathOf("logFormat"))));
    entry.Fail(log_format->Finish());
    return std::nullopt;
  }
  if (has_text) {
    config.encoding = AccessLogEncoding::kText;
    log_format->Read("text", config.format);
    // As Istio: a text format gets a final newline when it has none.
    if (!config.format.empty() && config.format.back() != '\n') config.format += '\n';
    if (absl::StatusOr<AccessLogFormat> compiled =
            AccessLogFormat::Compile(config.format, config.encoding);
        !compiled.ok()) {
      FailAt(*log_format, "text", std::string(compiled.status().message()));
    }
  } else {
    config.encoding = AccessLogEncoding::kJson;
    log_format->Read("labels", config.json_format);
    std::set<std::string> keys;
    for (const auto& [key, value] : config.json_format) {
      if (key.empty()) FailAt(*log_format, "labels", "a key is empty");
      if (!keys.insert(key).second) {
        FailAt(*log_format, "labels", fmt::format("duplicate key '{}'", key));
      }
    }
    if (absl::StatusOr<AccessLogFormat> compiled = AccessLogFormat::CompileJson(config.json_format);
        !compiled.ok()) {
      log_format->Fail(absl::InvalidArgumentError(fmt::format(
          "{}.{}", log_format->PathOf("labels"), std::string(compiled.status().message()))));
    }
  }
  entry.Fail(log_format->Finish());
  return config;
}

AccessLoggingEntry ReadAccessLoggingEntry(YamlMap& entry, const std::string& prefix,
                                          ParseState& state) {
  AccessLoggingEntry logging;
  logging.mode = ReadMode(entry);
  logging.providers = ReadProviders(entry, Signal::kAccessLogging, prefix, state);
  logging.disabled = ReadOptionalBool(entry, "disabled");
  if (auto filter = entry.Map("filter")) {
    std::string expression;
    filter->Read("expression", expression);
    if (expression.empty()) {
      FailAt(*filter, "expression", "required");
    } else if (absl::StatusOr<FilterExpression> compiled = CompileFilterExpression(expression);
               !compiled.ok()) {
      FailAt(*filter, "expression", std::string(compiled.status().message()));
    }
    logging.filter = std::move(expression);
    entry.Fail(filter->Finish());
  }
  logging.format = ReadLogFormat(entry);
  return logging;
}

// metadata: name and namespace (as given; checked by the caller), the rest ignored.
void ReadMetadata(YamlMap& document, std::string& name, std::string& namespace_name) {
  std::optional<YamlMap> metadata = document.Map("metadata");
  if (!metadata) return;
  metadata->Read("name", name);
  metadata->Read("namespace", namespace_name);
  for (const std::string_view key : kIgnoredMetadataKeys) metadata->Node(key);
  document.Fail(metadata->Finish());
}

absl::Status ReadTelemetry(YamlMap& document, const std::string& prefix, ParseState& state,
                           TelemetryPolicy::Resource& resource) {
  if (resource.name.empty()) {
    FailAt(document, "metadata.name", "required");
  }
  if (resource.namespace_name.empty()) {
    FailAt(document, "metadata.namespace", "required");
  }
  std::optional<YamlMap> spec = document.Map("spec");
  if (spec) {
    if (auto selector = spec->Map("selector")) {
      std::vector<std::pair<std::string, std::string>> labels;
      selector->Read("matchLabels", labels);
      std::map<std::string, std::string> match_labels;
      for (auto& [key, value] : labels) {
        if (key.empty()) {
          FailAt(*selector, "matchLabels", "a label name is empty");
        } else if (!match_labels.emplace(key, value).second) {
          FailAt(*selector, "matchLabels", fmt::format("duplicate label '{}'", key));
        }
      }
      if (match_labels.empty()) {
        FailAt(*selector, "matchLabels",
               "must name at least one label (leave out selector for the whole namespace)");
      }
      resource.match_labels = std::move(match_labels);
      spec->Fail(selector->Finish());
    }
    RejectUnsupported(*spec, "targetRef", "workloads are selected by selector.matchLabels");
    RejectUnsupported(*spec, "targetRefs", "workloads are selected by selector.matchLabels");
    for (YamlMap& entry : spec->MapList("tracing")) {
      resource.tracing.push_back(ReadTracingEntry(entry, prefix, state));
      spec->Fail(entry.Finish());
    }
    for (YamlMap& entry : spec->MapList("metrics")) {
      resource.metrics.push_back(ReadMetricsEntry(entry, prefix, state));
      spec->Fail(entry.Finish());
    }
    for (YamlMap& entry : spec->MapList("accessLogging")) {
      resource.access_logging.push_back(ReadAccessLoggingEntry(entry, prefix, state));
      spec->Fail(entry.Finish());
    }
    document.Fail(spec->Finish());
  }
  // Kubernetes' status block (kubectl get -o yaml) is ignored.
  document.Node("status");
  if (absl::Status status = document.Finish(); !status.ok()) return status;

  // The tag overrides of this resource must compile on their own.
  std::vector<MetricOverrideConfig> overrides;
  for (const MetricsEntry& entry : resource.metrics) {
    overrides.insert(overrides.end(), entry.overrides.begin(), entry.overrides.end());
  }
  if (absl::StatusOr<MetricLabelPlans> plans = CompileMetricLabelPlans(overrides, std::nullopt);
      !plans.ok()) {
    return plans.status();
  }
  return absl::OkStatus();
}

// MeshConfig accessLogFormat with JSON encoding: a JSON object of string values.
absl::Status ReadJsonAccessLogFormat(const std::string& path, const std::string& text,
                                     std::vector<AccessLogJsonField>& fields) {
  YAML::Node object;
  try {
    object = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(fmt::format("{}: not a JSON object ({})", path, e.msg));
  }
  if (!object.IsMap()) {
    return absl::InvalidArgumentError(
        fmt::format("{}: with accessLogEncoding JSON, must be a JSON object such as "
                    "'{{\"code\": \"%RESPONSE_CODE%\"}}'",
                    path));
  }
  std::set<std::string> keys;
  for (const auto& item : object) {
    const std::string key = item.first.IsScalar() ? item.first.Scalar() : "";
    if (key.empty()) return absl::InvalidArgumentError(fmt::format("{}: a key is empty", path));
    if (!keys.insert(key).second) {
      return absl::InvalidArgumentError(fmt::format("{}.{}: duplicate key", path, key));
    }
    // A JSON string is a quoted scalar (tag "!"); numbers, booleans and null are plain.
    if (!item.second.IsScalar() || item.second.Tag() != "!") {
      return absl::InvalidArgumentError(
          fmt::format("{}.{}: must be a string (an Envoy format string)", path, key));
    }
    fields.emplace_back(key, item.second.Scalar());
  }
  if (absl::StatusOr<AccessLogFormat> compiled = AccessLogFormat::CompileJson(fields);
      !compiled.ok()) {
    return absl::InvalidArgumentError(
        fmt::format("{}.{}", path, std::string(compiled.status().message())));
  }
  return absl::OkStatus();
}

absl::Status ReadMeshConfig(YamlMap& document, ParseState& state) {
  MeshDefaults& mesh = state.mesh;
  std::optional<YamlMap> spec = document.Map("spec");
  if (spec) {
    spec->Read("rootNamespace", mesh.root_namespace);
    if (mesh.root_namespace.empty()) FailAt(*spec, "rootNamespace", "must not be empty");
    const bool has_encoding = spec->Node("accessLogEncoding").IsDefined();
    const bool has_format = spec->Node("accessLogFormat").IsDefined();
    if (has_encoding || has_format) {
      AccessLogConfig config;
      std::string encoding;
      spec->Read("accessLogEncoding", encoding);
      if (encoding == "JSON") {
        config.encoding = AccessLogEncoding::kJson;
      } else if (!encoding.empty() && encoding != "TEXT") {
        FailAt(*spec, "accessLogEncoding", fmt::format("'{}' is not TEXT or JSON", encoding));
      }
      std::string format;
      spec->Read("accessLogFormat", format);
      const std::string format_path = spec->PathOf("accessLogFormat");
      if (config.encoding == AccessLogEncoding::kText) {
        // As Istio: a custom format gets a final newline when it has none.
        if (!format.empty() && format.back() != '\n') format += '\n';
        config.format = format;
        if (absl::StatusOr<AccessLogFormat> compiled =
                AccessLogFormat::Compile(config.format, config.encoding);
            !compiled.ok()) {
          FailAt(*spec, "accessLogFormat", std::string(compiled.status().message()));
        }
      } else if (!format.empty()) {
        spec->Fail(ReadJsonAccessLogFormat(format_path, format, config.json_format));
      }
      mesh.access_log = std::move(config);
    }
    if (auto default_config = spec->Map("defaultConfig")) {
      if (auto tracing = default_config->Map("tracing")) {
        mesh.default_sampling_percentage = ReadPercentage(*tracing, "sampling");
        default_config->Fail(tracing->Finish());
      }
      spec->Fail(default_config->Finish());
    }
    std::set<std::string> provider_names;
    for (YamlMap& entry : spec->MapList("extensionProviders")) {
      ExtensionProvider provider;
      entry.Read("name", provider.name);
      entry.Read("exporters", provider.exporters);
      if (provider.name.empty()) {
        FailAt(entry, "name", "required");
      } else if (provider.name == kPrometheusProvider) {
        FailAt(entry, "name", "'prometheus' is built in (the collector's metrics)");
      } else if (!provider_names.insert(provider.name).second) {
        FailAt(entry, "name", fmt::format("a second provider named '{}'", provider.name));
      }
      if (provider.exporters.empty()) {
        FailAt(entry, "exporters", "must name at least one of the collector's exporters");
      }
      for (const std::string& exporter : provider.exporters) {
        if (exporter.empty()) FailAt(entry, "exporters", "an exporter name is empty");
      }
      spec->Fail(entry.Finish());
      mesh.extension_providers.push_back(std::move(provider));
    }
    if (auto defaults = spec->Map("defaultProviders")) {
      const auto read = [&](std::string_view key, Signal signal, std::vector<std::string>& out) {
        defaults->Read(key, out);
        for (size_t i = 0; i < out.size(); ++i) {
          state.references.push_back({state.mesh_config_document + " (MeshConfig)",
                                      fmt::format("{}[{}]", defaults->PathOf(key), i), out[i],
                                      signal});
        }
      };
      read("tracing", Signal::kTracing, mesh.default_tracing_providers);
      read("metrics", Signal::kMetrics, mesh.default_metrics_providers);
      read("accessLogging", Signal::kAccessLogging, mesh.default_access_log_providers);
      spec->Fail(defaults->Finish());
    }
    document.Fail(spec->Finish());
  }
  std::string name;
  std::string namespace_name;
  ReadMetadata(document, name, namespace_name);
  return document.Finish();
}

// A scalar under `key` of `node`, or "".
std::string PeekScalar(const YAML::Node& node, const char* key) {
  if (!node.IsMap()) return "";
  const YAML::Node value = node[key];
  return value.IsDefined() && value.IsScalar() ? value.Scalar() : "";
}

absl::Status ReadDocument(const YAML::Node& node, const std::string& where, bool in_list,
                          ParseState& state) {
  if (node.IsNull()) return absl::OkStatus();  // an empty document
  if (!node.IsMap()) {
    return absl::InvalidArgumentError(
        fmt::format("{}: must be a mapping with apiVersion, kind, metadata and spec", where));
  }
  const std::string kind = PeekScalar(node, "kind");
  const std::string api_version = PeekScalar(node, "apiVersion");
  if (kind == "List" && !in_list) {
    YamlMap list(node, "");
    std::string ignored;
    list.Read("apiVersion", ignored);
    list.Read("kind", ignored);
    list.Node("metadata");  // kubectl's list metadata, ignored
    const YAML::Node items = list.Node("items");
    if (items.IsDefined() && !items.IsSequence()) {
      return absl::InvalidArgumentError(fmt::format("{}: items: must be a list", where));
    }
    if (absl::Status status = list.Finish(); !status.ok()) {
      return absl::InvalidArgumentError(
          fmt::format("{}: {}", where, std::string(status.message())));
    }
    if (api_version != "v1") {
      return absl::InvalidArgumentError(
          fmt::format("{}: apiVersion: '{}' is not v1 (kind List)", where, api_version));
    }
    if (items.IsDefined()) {
      for (size_t i = 0; i < items.size(); ++i) {
        if (absl::Status status =
                ReadDocument(items[i], fmt::format("{} items[{}]", where, i), true, state);
            !status.ok()) {
          return status;
        }
      }
    }
    return absl::OkStatus();
  }
  if (kind == "Telemetry") {
    TelemetryPolicy::Resource resource;
    YamlMap document(node, "");
    std::string ignored;
    document.Read("apiVersion", ignored);
    document.Read("kind", ignored);
    ReadMetadata(document, resource.name, resource.namespace_name);
    const std::string prefix =
        resource.name.empty() || resource.namespace_name.empty()
            ? fmt::format("{} (Telemetry)", where)
            : fmt::format("{} (Telemetry {}/{})", where, resource.namespace_name, resource.name);
    if (api_version != "telemetry.istio.io/v1" && api_version != "telemetry.istio.io/v1alpha1") {
      return absl::InvalidArgumentError(fmt::format(
          "{}: apiVersion: '{}' is not telemetry.istio.io/v1 or telemetry.istio.io/v1alpha1",
          prefix, api_version));
    }
    if (absl::Status status = ReadTelemetry(document, prefix, state, resource); !status.ok()) {
      return absl::InvalidArgumentError(
          fmt::format("{}: {}", prefix, std::string(status.message())));
    }
    for (size_t i = 0; i < state.resources.size(); ++i) {
      const TelemetryPolicy::Resource& other = state.resources[i];
      if (other.namespace_name != resource.namespace_name) continue;
      if (other.name == resource.name) {
        return absl::InvalidArgumentError(
            fmt::format("{}: a second Telemetry {}/{} (the first is {})", prefix,
                        resource.namespace_name, resource.name, state.resource_documents[i]));
      }
      if (!other.match_labels && !resource.match_labels) {
        return absl::InvalidArgumentError(fmt::format(
            "{}: a second Telemetry without selector in namespace {} (the first is {}/{}, {})",
            prefix, resource.namespace_name, other.namespace_name, other.name,
            state.resource_documents[i]));
      }
    }
    state.resources.push_back(std::move(resource));
    state.resource_documents.push_back(where);
    return absl::OkStatus();
  }
  if (kind == "MeshConfig") {
    const std::string prefix = fmt::format("{} (MeshConfig)", where);
    if (api_version != kMeshConfigApiVersion) {
      return absl::InvalidArgumentError(fmt::format("{}: apiVersion: '{}' is not {}", prefix,
                                                    api_version, kMeshConfigApiVersion));
    }
    if (state.have_mesh_config) {
      return absl::InvalidArgumentError(fmt::format("{}: a second MeshConfig (the first is {})",
                                                    prefix, state.mesh_config_document));
    }
    state.have_mesh_config = true;
    state.mesh_config_document = where;
    YamlMap document(node, "");
    std::string ignored;
    document.Read("apiVersion", ignored);
    document.Read("kind", ignored);
    if (absl::Status status = ReadMeshConfig(document, state); !status.ok()) {
      return absl::InvalidArgumentError(
          fmt::format("{}: {}", prefix, std::string(status.message())));
    }
    return absl::OkStatus();
  }
  if (kind.empty()) {
    return absl::InvalidArgumentError(
        fmt::format("{}: kind: required (Telemetry, MeshConfig or List)", where));
  }
  return absl::InvalidArgumentError(
      fmt::format("{}: kind: '{}' is not {}", where, kind,
                  in_list ? "Telemetry or MeshConfig" : "Telemetry, MeshConfig or List"));
}

absl::Status CheckProviders(const ParseState& state) {
  std::set<std::string_view> defined;
  for (const ExtensionProvider& provider : state.mesh.extension_providers) {
    defined.insert(provider.name);
  }
  for (const ProviderReference& reference : state.references) {
    const std::string where = reference.signal == Signal::kTracing   ? "spans"
                              : reference.signal == Signal::kMetrics ? "metrics"
                                                                     : "access logs";
    if (reference.name == kPrometheusProvider) {
      if (reference.signal == Signal::kMetrics) continue;
      return absl::InvalidArgumentError(
          fmt::format("{}: {}: 'prometheus' is a metrics provider, not one for {}",
                      reference.prefix, reference.path, where));
    }
    if (!defined.contains(reference.name)) {
      return absl::InvalidArgumentError(
          fmt::format("{}: {}: no provider named '{}' in the MeshConfig's extensionProviders",
                      reference.prefix, reference.path, reference.name));
    }
  }
  return absl::OkStatus();
}

bool Covers(WorkloadMode mode, PolicySide side) {
  return mode == WorkloadMode::kClientAndServer ||
         (mode == WorkloadMode::kClient && side == PolicySide::kClient) ||
         (mode == WorkloadMode::kServer && side == PolicySide::kServer);
}

bool Selects(const std::map<std::string, std::string>& match_labels,
             const std::map<std::string, std::string>& labels) {
  for (const auto& [key, value] : match_labels) {
    const auto it = labels.find(key);
    if (it == labels.end() || it->second != value) return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<TelemetryPolicy> TelemetryPolicy::Parse(std::string_view yaml_text,
                                                       std::string_view source) {
  ParseState state;
  std::vector<YAML::Node> documents;
  try {
    documents = YAML::LoadAll(std::string(yaml_text));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(fmt::format("{}: {}", source, e.what()));
  }
  for (size_t i = 0; i < documents.size(); ++i) {
    if (absl::Status status =
            ReadDocument(documents[i], fmt::format("document {}", i + 1), false, state);
        !status.ok()) {
      return absl::InvalidArgumentError(
          fmt::format("{}: {}", source, std::string(status.message())));
    }
  }
  if (absl::Status status = CheckProviders(state); !status.ok()) {
    return absl::InvalidArgumentError(fmt::format("{}: {}", source, std::string(status.message())));
  }

  TelemetryPolicy policy;
  policy.mesh_ = std::move(state.mesh);
  policy.resources_ = std::move(state.resources);
  // Name each override after its resource, for errors the enforcer meets when it combines them
  // with the collector's own keep_labels.
  for (Resource& resource : policy.resources_) {
    const std::string owner =
        fmt::format("Telemetry {}/{} ", resource.namespace_name, resource.name);
    for (MetricsEntry& entry : resource.metrics) {
      for (MetricOverrideConfig& override_config : entry.overrides) {
        override_config.path = owner + override_config.path;
        for (TagOverrideConfig& tag : override_config.tag_overrides) tag.path = owner + tag.path;
      }
    }
  }
  std::sort(policy.resources_.begin(), policy.resources_.end(),
            [](const Resource& a, const Resource& b) {
              return std::tie(a.namespace_name, a.name) < std::tie(b.namespace_name, b.name);
            });
  policy.digest_ = Fnv1a64Hex(yaml_text);
  return policy;
}

absl::StatusOr<TelemetryPolicy> TelemetryPolicy::Load(const std::string& path) {
  absl::StatusOr<std::string> text = common::ReadTextFile(path);
  if (!text.ok()) return text.status();
  return Parse(*text, path);
}

WorkloadPolicy TelemetryPolicy::Resolve(const PolicyWorkload& workload) const {
  // The resources that apply, in order: mesh, namespace, then the workload's (by name).
  std::vector<const Resource*> chain;
  const Resource* mesh_wide = nullptr;
  const Resource* namespace_wide = nullptr;
  std::vector<const Resource*> selected;
  for (const Resource& resource : resources_) {
    if (!resource.match_labels) {
      if (resource.namespace_name == mesh_.root_namespace) mesh_wide = &resource;
      if (resource.namespace_name == workload.namespace_name) namespace_wide = &resource;
    } else if (resource.namespace_name == workload.namespace_name &&
               Selects(*resource.match_labels, workload.labels)) {
      selected.push_back(&resource);
    }
  }
  if (mesh_wide != nullptr) chain.push_back(mesh_wide);
  if (namespace_wide != nullptr && namespace_wide != mesh_wide) chain.push_back(namespace_wide);
  chain.insert(chain.end(), selected.begin(), selected.end());

  WorkloadPolicy policy;
  for (const Resource* resource : chain) {
    policy.applied.push_back(fmt::format("{}/{}", resource->namespace_name, resource->name));
    for (size_t s = 0; s < kPolicySideCount; ++s) {
      const PolicySide side = static_cast<PolicySide>(s);
      TracingPolicy& tracing = policy.tracing[s];
      for (const TracingEntry& entry : resource->tracing) {
        if (!Covers(entry.mode, side)) continue;
        if (entry.random_sampling_percentage) {
          tracing.random_sampling_percentage = entry.random_sampling_percentage;
        }
        if (entry.disable_span_reporting) {
          tracing.disable_span_reporting = *entry.disable_span_reporting;
        }
        if (entry.custom_tags) tracing.custom_tags = *entry.custom_tags;
        if (entry.phase_spans) tracing.phase_spans = entry.phase_spans;
        if (entry.providers) tracing.providers = *entry.providers;
      }
      AccessLogPolicy& logging = policy.access_logging[s];
      for (const AccessLoggingEntry& entry : resource->access_logging) {
        if (!Covers(entry.mode, side)) continue;
        if (entry.disabled) logging.disabled = *entry.disabled;
        if (entry.filter) logging.filter = *entry.filter;
        if (entry.providers) logging.providers = *entry.providers;
        if (entry.format) logging.format = entry.format;
      }
    }
    for (const MetricsEntry& entry : resource->metrics) {
      policy.metrics.overrides.insert(policy.metrics.overrides.end(), entry.overrides.begin(),
                                      entry.overrides.end());
      if (entry.providers) policy.metrics.providers = *entry.providers;
    }
  }
  for (AccessLogPolicy& logging : policy.access_logging) {
    if (!logging.format) logging.format = mesh_.access_log;
  }
  return policy;
}

absl::Status TelemetryPolicy::CheckExporters(const std::vector<std::string>& exporter_names) const {
  for (const ExtensionProvider& provider : mesh_.extension_providers) {
    for (const std::string& exporter : provider.exporters) {
      if (std::find(exporter_names.begin(), exporter_names.end(), exporter) ==
          exporter_names.end()) {
        return absl::InvalidArgumentError(
            fmt::format("policy: extensionProviders[{}].exporters: no exporter named '{}' in the "
                        "collector's exporters",
                        provider.name, exporter));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace meshtel::collector
