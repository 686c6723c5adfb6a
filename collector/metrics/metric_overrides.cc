#include "collector/metrics/metric_overrides.h"

// Tested by: tests/collector/metrics/metric_overrides_test.cc

#include <algorithm>
#include <cctype>
#include <deque>
#include <map>
#include <mutex>
#include <utility>

#include "fmt/format.h"

namespace meshtel::collector {
namespace {

constexpr std::string_view kUnknown = "unknown";

struct NamedMetric {
  std::string_view name;
  IstioMetric metric;
};
constexpr NamedMetric kMetricNames[] = {
    {"REQUEST_COUNT", IstioMetric::kRequestCount},
    {"REQUEST_DURATION", IstioMetric::kRequestDuration},
    {"REQUEST_SIZE", IstioMetric::kRequestSize},
    {"RESPONSE_SIZE", IstioMetric::kResponseSize},
    {"GRPC_REQUEST_MESSAGES", IstioMetric::kGrpcRequestMessages},
    {"GRPC_RESPONSE_MESSAGES", IstioMetric::kGrpcResponseMessages},
    {"TCP_SENT_BYTES", IstioMetric::kTcpSentBytes},
    {"TCP_RECEIVED_BYTES", IstioMetric::kTcpReceivedBytes},
    {"TCP_OPENED_CONNECTIONS", IstioMetric::kTcpOpenedConnections},
    {"TCP_CLOSED_CONNECTIONS", IstioMetric::kTcpClosedConnections},
};

bool IsMessageMetric(IstioMetric metric) {
  return metric == IstioMetric::kGrpcRequestMessages ||
         metric == IstioMetric::kGrpcResponseMessages;
}

bool IsTcpMetric(IstioMetric metric) {
  return metric == IstioMetric::kTcpSentBytes || metric == IstioMetric::kTcpReceivedBytes ||
         metric == IstioMetric::kTcpOpenedConnections ||
         metric == IstioMetric::kTcpClosedConnections;
}

LabelPlan StandardPlan(IstioMetric metric) {
  LabelPlan plan;
  if (IsTcpMetric(metric)) {
    // The request labels without response_code and grpc_response_status (wire-facts §8.2).
    for (size_t index = 0; index < kIstioRequestLabelCount; ++index) {
      const std::string_view name = kIstioRequestLabelNames[index];
      if (name == "response_code" || name == "grpc_response_status") continue;
      plan.names.emplace_back(name);
      plan.sources.push_back({.kind = LabelSource::Kind::kStandard, .standard_index = index});
    }
    return plan;
  }
  const size_t count = IsMessageMetric(metric) ? kIstioMessageLabelCount : kIstioRequestLabelCount;
  for (size_t i = 0; i < count; ++i) {
    // kIstioMessageLabelIndexes is the prefix 0..19 of the request labels.
    const size_t index = IsMessageMetric(metric) ? kIstioMessageLabelIndexes[i] : i;
    plan.names.emplace_back(kIstioRequestLabelNames[index]);
    plan.sources.push_back({.kind = LabelSource::Kind::kStandard, .standard_index = index});
  }
  return plan;
}

bool ModeMatches(WorkloadMode mode, RecordMode record_mode) {
  switch (mode) {
    case WorkloadMode::kClient:
      return record_mode == RecordMode::kClient;
    case WorkloadMode::kServer:
      return record_mode == RecordMode::kServer;
    case WorkloadMode::kClientAndServer:
      return true;
  }
  return true;
}

bool IsLabelName(std::string_view name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

bool IsHeaderToken(std::string_view name) {
  if (name.empty()) return false;
  return std::all_of(name.begin(), name.end(), [](unsigned char c) {
    return std::isalnum(c) ||
           std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
  });
}

std::string_view Trim(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) {
    text.remove_prefix(1);
  }
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) {
    text.remove_suffix(1);
  }
  return text;
}

std::string KnownFields() {
  std::string text;
  for (const RecordFieldName& field : kRecordFields) {
    if (!text.empty()) text += ", ";
    text += field.expression;
  }
  return text + ", request.headers['<name>'], '<literal>'";
}

// Parses a value expression; the error is the message after "<path>.value: ".
absl::StatusOr<LabelSource> ParseValue(std::string_view expression) {
  const std::string_view text = Trim(expression);
  LabelSource source;
  if (text.size() >= 2 && (text.front() == '\'' || text.front() == '"') &&
      text.back() == text.front()) {
    source.kind = LabelSource::Kind::kLiteral;
    source.text = std::string(text.substr(1, text.size() - 2));
    if (source.text.empty()) {
      return absl::InvalidArgumentError(
          "an empty literal would drop the label (Prometheus reads an empty value as no label); "
          "use operation: REMOVE");
    }
    if (source.text.find(text.front()) != std::string::npos) {
      return absl::InvalidArgumentError(
          fmt::format("'{}' is not one literal (no escapes inside quotes)", text));
    }
    return source;
  }
  constexpr std::string_view kHeaders = "request.headers[";
  if (text.starts_with(kHeaders)) {
    std::string_view inner = text.substr(kHeaders.size());
    if (inner.size() < 3 || inner.back() != ']') {
      return absl::InvalidArgumentError(
          fmt::format("'{}' is not a header lookup such as request.headers['x-user-tier']", text));
    }
    inner = Trim(inner.substr(0, inner.size() - 1));
    if (inner.size() < 3 || (inner.front() != '\'' && inner.front() != '"') ||
        inner.back() != inner.front() || !IsHeaderToken(inner.substr(1, inner.size() - 2))) {
      return absl::InvalidArgumentError(
          fmt::format("'{}' is not a header lookup such as request.headers['x-user-tier']", text));
    }
    source.kind = LabelSource::Kind::kHeader;
    source.text = std::string(inner.substr(1, inner.size() - 2));
    std::transform(source.text.begin(), source.text.end(), source.text.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return source;
  }
  for (const RecordFieldName& field : kRecordFields) {
    if (field.expression == text) {
      source.kind = LabelSource::Kind::kField;
      source.field = field.field;
      return source;
    }
  }
  return absl::InvalidArgumentError(
      fmt::format("unknown record field '{}' (known: {})", text, KnownFields()));
}

std::string_view OrUnknown(std::string_view value) { return value.empty() ? kUnknown : value; }

std::string_view FieldText(RecordField field, const meshtel::v1::RequestRecord& record,
                           const IstioLabelScratch& scratch) {
  switch (field) {
    case RecordField::kResponseCode:
      return scratch.response_code;
    case RecordField::kResponseGrpcStatus:
      return scratch.grpc_status;
    case RecordField::kResponseFlags:
      return scratch.response_flags;
    default:
      return RecordFieldText(field, record).value_or(std::string_view());
  }
}

// Every label name list any plan of the process has, numbered once.
struct NameSets {
  std::mutex mutex;
  std::deque<std::vector<std::string>> by_id;  // a deque: references stay valid as it grows
  std::map<std::vector<std::string>, uint32_t> ids;
};

NameSets& TheNameSets() {
  static NameSets* sets = new NameSets();  // never destroyed: series refer to it until exit
  return *sets;
}

uint32_t InternLabelNames(const std::vector<std::string>& names) {
  NameSets& sets = TheNameSets();
  std::lock_guard<std::mutex> lock(sets.mutex);
  auto [it, added] = sets.ids.emplace(names, static_cast<uint32_t>(sets.by_id.size()));
  if (added) sets.by_id.push_back(names);
  return it->second;
}

}  // namespace

const std::vector<std::string>& LabelNameSet(uint32_t id) {
  NameSets& sets = TheNameSets();
  std::lock_guard<std::mutex> lock(sets.mutex);
  return sets.by_id.at(id);
}

MetricFamily FamilyOf(IstioMetric metric) {
  if (IsTcpMetric(metric)) return MetricFamily::kTcp;
  if (IsMessageMetric(metric)) return MetricFamily::kMessage;
  return MetricFamily::kRequest;
}

RecordMode RecordModeOf(const meshtel::v1::RequestRecord& record) {
  switch (record.reporter()) {
    case meshtel::v1::REPORTER_SOURCE:
      return RecordMode::kClient;
    case meshtel::v1::REPORTER_DESTINATION:
      return RecordMode::kServer;
    default:
      return RecordMode::kUnspecified;
  }
}

void ReadMetricOverrides(common::YamlMap& metrics, std::vector<MetricOverrideConfig>& overrides,
                         std::optional<std::vector<std::string>>& keep_labels) {
  if (metrics.Has("keep_labels")) {
    std::vector<std::string> keep;
    metrics.Read("keep_labels", keep);
    keep_labels = std::move(keep);
  }
  for (common::YamlMap& entry : metrics.MapList("overrides")) {
    MetricOverrideConfig override_config;
    const std::string path = entry.PathOf("");
    override_config.path = path.substr(0, path.size() - 1);
    if (auto match = entry.Map("match")) {
      std::string metric;
      match->Read("metric", metric);
      if (!metric.empty() && metric != "ALL_METRICS") {
        const auto* found =
            std::find_if(std::begin(kMetricNames), std::end(kMetricNames),
                         [&](const NamedMetric& named) { return named.name == metric; });
        if (found == std::end(kMetricNames)) {
          match->Fail(absl::InvalidArgumentError(fmt::format(
              "{}: '{}' is not one of REQUEST_COUNT, REQUEST_DURATION, REQUEST_SIZE, "
              "RESPONSE_SIZE, GRPC_REQUEST_MESSAGES, GRPC_RESPONSE_MESSAGES, TCP_SENT_BYTES, "
              "TCP_RECEIVED_BYTES, TCP_OPENED_CONNECTIONS, TCP_CLOSED_CONNECTIONS, ALL_METRICS",
              match->PathOf("metric"), metric)));
        } else {
          override_config.metric = found->metric;
        }
      }
      std::string mode;
      match->Read("mode", mode);
      if (mode == "CLIENT") {
        override_config.mode = WorkloadMode::kClient;
      } else if (mode == "SERVER") {
        override_config.mode = WorkloadMode::kServer;
      } else if (!mode.empty() && mode != "CLIENT_AND_SERVER") {
        match->Fail(absl::InvalidArgumentError(
            fmt::format("{}: '{}' is not one of CLIENT, SERVER, CLIENT_AND_SERVER",
                        match->PathOf("mode"), mode)));
      }
      entry.Fail(match->Finish());
    }
    if (entry.Has("disabled")) {
      bool disabled = false;
      entry.Read("disabled", disabled);
      override_config.disabled = disabled;
    }
    const YAML::Node tags = entry.Node("tagOverrides");
    if (tags.IsDefined() && !tags.IsNull()) {
      if (!tags.IsMap()) {
        entry.Fail(absl::InvalidArgumentError(
            fmt::format("{}: must be a mapping of label names to {{operation, value}}",
                        entry.PathOf("tagOverrides"))));
      } else {
        for (const auto& tag : tags) {
          TagOverrideConfig tag_override;
          tag_override.label = tag.first.IsScalar() ? tag.first.Scalar() : "";
          tag_override.path =
              fmt::format("{}.{}", entry.PathOf("tagOverrides"), tag_override.label);
          common::YamlMap fields(tag.second, tag_override.path);
          std::string operation;
          fields.Read("operation", operation);
          fields.Read("value", tag_override.value);
          const bool has_value = fields.Has("value");
          if (operation == "REMOVE") {
            tag_override.remove = true;
            if (has_value) {
              fields.Fail(absl::InvalidArgumentError(
                  fmt::format("{}.value: not allowed with operation REMOVE", tag_override.path)));
            }
          } else if (operation.empty() || operation == "UPSERT") {
            if (tag_override.value.empty()) {
              fields.Fail(absl::InvalidArgumentError(
                  fmt::format("{}.value: required for operation UPSERT", tag_override.path)));
            }
          } else {
            fields.Fail(absl::InvalidArgumentError(fmt::format(
                "{}: unknown operation '{}' (UPSERT or REMOVE)", tag_override.path, operation)));
          }
          entry.Fail(fields.Finish());
          override_config.tag_overrides.push_back(std::move(tag_override));
        }
      }
    }
    metrics.Fail(entry.Finish());
    overrides.push_back(std::move(override_config));
  }
}

MetricLabelPlans::MetricLabelPlans() {
  for (size_t metric = 0; metric < kIstioMetricCount; ++metric) {
    for (LabelPlan& plan : plans_[metric]) plan = StandardPlan(static_cast<IstioMetric>(metric));
  }
  Finish();
}

void MetricLabelPlans::Finish() {
  std::vector<std::string> headers;
  max_labels_ = 0;
  for (auto& modes : plans_) {
    for (LabelPlan& plan : modes) {
      plan.standard_prefix = true;
      for (size_t i = 0; i < plan.sources.size(); ++i) {
        const LabelSource& source = plan.sources[i];
        if (source.kind != LabelSource::Kind::kStandard || source.standard_index != i) {
          plan.standard_prefix = false;
        }
        if (source.kind == LabelSource::Kind::kHeader && !plan.disabled) {
          headers.push_back(source.text);
        }
      }
      plan.name_set_id = InternLabelNames(plan.names);
      max_labels_ = std::max(max_labels_, plan.names.size());
    }
  }
  std::sort(headers.begin(), headers.end());
  headers.erase(std::unique(headers.begin(), headers.end()), headers.end());
  captured_headers_ = std::move(headers);
  for (auto& modes : groups_) {
    for (auto& groups : modes) groups.clear();
  }
  for (size_t metric = 0; metric < kIstioMetricCount; ++metric) {
    const auto istio_metric = static_cast<IstioMetric>(metric);
    for (size_t mode = 0; mode < kRecordModeCount; ++mode) {
      const LabelPlan& plan = plans_[metric][mode];
      if (plan.disabled) continue;
      std::vector<PlanGroup>& groups = groups_[static_cast<size_t>(FamilyOf(istio_metric))][mode];
      auto group = std::find_if(groups.begin(), groups.end(), [&](const PlanGroup& g) {
        return plans_[static_cast<size_t>(g.metric)][mode].SameLabels(plan);
      });
      if (group == groups.end()) {
        groups.push_back({.metrics = MetricBit(istio_metric), .metric = istio_metric});
      } else {
        group->metrics |= MetricBit(istio_metric);
      }
    }
  }
}

absl::StatusOr<MetricLabelPlans> CompileMetricLabelPlans(
    const std::vector<MetricOverrideConfig>& overrides,
    const std::optional<std::vector<std::string>>& keep_labels) {
  // Every expression once, in document order, so the first error is the first in the file.
  std::vector<std::vector<LabelSource>> sources(overrides.size());
  std::vector<std::string> upserted;
  for (size_t i = 0; i < overrides.size(); ++i) {
    for (const TagOverrideConfig& tag : overrides[i].tag_overrides) {
      if (!IsLabelName(tag.label)) {
        return absl::InvalidArgumentError(fmt::format(
            "{}: '{}' is not a label name ([a-zA-Z_][a-zA-Z0-9_]*)", tag.path, tag.label));
      }
      if (tag.label.starts_with("__") || tag.label == "le") {
        return absl::InvalidArgumentError(fmt::format(
            "{}: '{}' is reserved (names starting with __, and le of histogram buckets)", tag.path,
            tag.label));
      }
      if (tag.remove) {
        sources[i].emplace_back();
        continue;
      }
      absl::StatusOr<LabelSource> source = ParseValue(tag.value);
      if (!source.ok()) {
        return absl::InvalidArgumentError(
            fmt::format("{}.value: {}", tag.path, std::string(source.status().message())));
      }
      sources[i].push_back(*std::move(source));
      upserted.push_back(tag.label);
    }
  }
  if (keep_labels) {
    for (size_t i = 0; i < keep_labels->size(); ++i) {
      const std::string& name = (*keep_labels)[i];
      const bool standard =
          std::find(kIstioRequestLabelNames.begin(), kIstioRequestLabelNames.end(), name) !=
          kIstioRequestLabelNames.end();
      if (!standard && std::find(upserted.begin(), upserted.end(), name) == upserted.end()) {
        return absl::InvalidArgumentError(fmt::format(
            "metrics.keep_labels[{}]: '{}' is neither a standard Istio label nor added by "
            "metrics.overrides",
            i, name));
      }
    }
    for (const MetricOverrideConfig& override_config : overrides) {
      for (const TagOverrideConfig& tag : override_config.tag_overrides) {
        if (!tag.remove &&
            std::find(keep_labels->begin(), keep_labels->end(), tag.label) == keep_labels->end()) {
          return absl::InvalidArgumentError(fmt::format(
              "{}: '{}' is not in metrics.keep_labels, which would drop it", tag.path, tag.label));
        }
      }
    }
  }

  MetricLabelPlans plans;
  for (size_t metric = 0; metric < kIstioMetricCount; ++metric) {
    for (size_t mode = 0; mode < kRecordModeCount; ++mode) {
      LabelPlan plan = StandardPlan(static_cast<IstioMetric>(metric));
      for (size_t i = 0; i < overrides.size(); ++i) {
        const MetricOverrideConfig& override_config = overrides[i];
        if (override_config.metric && static_cast<size_t>(*override_config.metric) != metric) {
          continue;
        }
        if (!ModeMatches(override_config.mode, static_cast<RecordMode>(mode))) continue;
        if (override_config.disabled) plan.disabled = *override_config.disabled;
        for (size_t t = 0; t < override_config.tag_overrides.size(); ++t) {
          const TagOverrideConfig& tag = override_config.tag_overrides[t];
          const auto at = std::find(plan.names.begin(), plan.names.end(), tag.label);
          const size_t index = static_cast<size_t>(at - plan.names.begin());
          if (tag.remove) {
            if (at != plan.names.end()) {
              plan.names.erase(at);
              plan.sources.erase(plan.sources.begin() + static_cast<ptrdiff_t>(index));
            }
          } else if (at != plan.names.end()) {
            plan.sources[index] = sources[i][t];
          } else {
            plan.names.push_back(tag.label);
            plan.sources.push_back(sources[i][t]);
          }
        }
      }
      if (keep_labels) {
        for (size_t i = plan.names.size(); i-- > 0;) {
          if (std::find(keep_labels->begin(), keep_labels->end(), plan.names[i]) ==
              keep_labels->end()) {
            plan.names.erase(plan.names.begin() + static_cast<ptrdiff_t>(i));
            plan.sources.erase(plan.sources.begin() + static_cast<ptrdiff_t>(i));
          }
        }
      }
      plans.plans_[metric][mode] = std::move(plan);
    }
  }
  plans.Finish();
  return plans;
}

std::string_view EvaluateLabel(const LabelSource& source, const meshtel::v1::RequestRecord& record,
                               std::span<const std::string_view> standard,
                               const IstioLabelScratch& scratch) {
  switch (source.kind) {
    case LabelSource::Kind::kStandard:
      return standard[source.standard_index];
    case LabelSource::Kind::kLiteral:
      return source.text;
    case LabelSource::Kind::kHeader:
      for (const meshtel::v1::CapturedHeader& header : record.captured_headers()) {
        if (header.name() == source.text) return OrUnknown(header.value());
      }
      return kUnknown;
    case LabelSource::Kind::kField:
      return OrUnknown(FieldText(source.field, record, scratch));
  }
  return kUnknown;
}

}  // namespace meshtel::collector
