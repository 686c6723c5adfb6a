#include "exporters/loki/loki_encoder.h"

#include <algorithm>
#include <map>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "collector/common/record_names.h"
#include "collector/logs/json_escape.h"
#include "collector/logs/received_log.h"
#include "fmt/format.h"
#include "loki/push.pb.h"
#include "snappy.h"

namespace meshtel::exporters {

namespace {

using collector::AttributeText;

std::string HexLower(const std::string& bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 0xf]);
  }
  return out;
}

// Appends ` name=value` to `line`, the value quoted (with \\, \" and \n escaped) when it is
// empty or holds a space, '=', '"' or a control character — logfmt as Loki's `| logfmt` reads it.
void AppendLogfmt(const std::string& name, const std::string& value, std::string& line) {
  line.push_back(' ');
  line.append(name);
  line.push_back('=');
  const bool quote =
      value.empty() || std::any_of(value.begin(), value.end(), [](char c) {
        return c == ' ' || c == '=' || c == '"' || static_cast<unsigned char>(c) < 0x20;
      });
  if (!quote) {
    line.append(value);
    return;
  }
  line.push_back('"');
  for (char c : value) {
    switch (c) {
      case '\\':
        line.append("\\\\");
        break;
      case '"':
        line.append("\\\"");
        break;
      case '\n':
        line.append("\\n");
        break;
      case '\t':
        line.append("\\t");
        break;
      case '\r':
        line.append("\\r");
        break;
      default:
        line.push_back(c);
    }
  }
  line.push_back('"');
}

// Bytes a (name, value) pair adds to the encoded message, roughly: the strings and a few tags.
size_t PairBytes(const std::string& name, const std::string& value) {
  return name.size() + value.size() + 6;
}

}  // namespace

std::string FormatLokiLabels(std::vector<std::pair<std::string, std::string>> labels) {
  std::sort(labels.begin(), labels.end());
  std::string out = "{";
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i > 0) out += ", ";
    out += labels[i].first;
    out += "=\"";
    for (char c : labels[i].second) {
      switch (c) {
        case '\\':
          out += "\\\\";
          break;
        case '"':
          out += "\\\"";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        default:
          out += c;
      }
    }
    out += '"';
  }
  out += '}';
  return out;
}

std::string LokiLabelValue(const meshtel::v1::RequestRecord& record, LokiLabelField field) {
  switch (field) {
    case LokiLabelField::kReporter:
      return std::string(common::ReporterName(record.reporter()));
    case LokiLabelField::kSourceWorkload:
      return record.source().workload();
    case LokiLabelField::kSourceNamespace:
      return record.source().namespace_();
    case LokiLabelField::kSourceApp:
      return record.source().app();
    case LokiLabelField::kSourceVersion:
      return record.source().version();
    case LokiLabelField::kSourceCanonicalService:
      return record.source().canonical_service();
    case LokiLabelField::kSourceCluster:
      return record.source().cluster();
    case LokiLabelField::kDestinationWorkload:
      return record.destination().workload();
    case LokiLabelField::kDestinationNamespace:
      return record.destination().namespace_();
    case LokiLabelField::kDestinationApp:
      return record.destination().app();
    case LokiLabelField::kDestinationVersion:
      return record.destination().version();
    case LokiLabelField::kDestinationCanonicalService:
      return record.destination().canonical_service();
    case LokiLabelField::kDestinationCluster:
      return record.destination().cluster();
    case LokiLabelField::kDestinationService:
      return record.destination_service().host();
    case LokiLabelField::kDestinationServiceName:
      return record.destination_service().name();
    case LokiLabelField::kDestinationServiceNamespace:
      return record.destination_service().namespace_();
    case LokiLabelField::kRequestProtocol:
      return std::string(common::RequestProtocolName(record.request_protocol()));
    case LokiLabelField::kMethod:
      return record.method();
    case LokiLabelField::kResponseCode:
      return std::to_string(record.response_code());
    case LokiLabelField::kResponseCodeClass:
      return fmt::format("{}xx", record.response_code() / 100);
  }
  return "";
}

uint64_t LokiEntryTimeNanos(const collector::StoredRecord& stored) {
  if (stored.record.has_received_log()) {
    return collector::LogEntryTimeNanos(stored.record.received_log(), stored.key.time_unix_nano);
  }
  const uint64_t start = stored.record.start_time_unix_nano();
  return start != 0 ? start : stored.key.time_unix_nano;
}

LokiEncoder::LokiEncoder(LokiConfig config, collector::AccessLogLines lines, std::string exporter)
    : config_(std::move(config)), lines_(std::move(lines)), exporter_(std::move(exporter)) {}

std::string LokiEncoder::StreamLabels(const meshtel::v1::RequestRecord& record,
                                      bool* repaired) const {
  std::vector<std::pair<std::string, std::string>> labels = config_.static_labels;
  for (const LokiLabel& label : config_.labels) {
    std::string value = LokiLabelValue(record, label.field);
    if (value.empty()) value = "unknown";
    if (collector::ReplaceInvalidUtf8(value) && repaired != nullptr) *repaired = true;
    labels.emplace_back(label.name, std::move(value));
  }
  return FormatLokiLabels(std::move(labels));
}

std::string LokiEncoder::Line(const meshtel::v1::RequestRecord& record, bool* repaired) const {
  std::string line;
  const collector::AccessLogRouting::Line routed = lines_.Route(record, exporter_);
  routed.format->Render(record, line);
  if (!line.empty() && line.back() == '\n') line.pop_back();
  if (collector::ReplaceInvalidUtf8(line) && repaired != nullptr) *repaired = true;
  return line;
}

std::vector<std::pair<std::string, std::string>> LokiEncoder::Metadata(
    const meshtel::v1::RequestRecord& record, bool* repaired) const {
  std::vector<std::pair<std::string, std::string>> metadata;
  if (!config_.structured_metadata) return metadata;
  const std::string& trace_id = record.trace_id();
  if (std::any_of(trace_id.begin(), trace_id.end(), [](char c) { return c != 0; })) {
    metadata.emplace_back("trace_id", HexLower(trace_id));
  }
  if (!record.request_id().empty()) {
    std::string request_id = record.request_id();
    if (collector::ReplaceInvalidUtf8(request_id) && repaired != nullptr) *repaired = true;
    metadata.emplace_back("request_id", std::move(request_id));
  }
  return metadata;
}

LokiEncoder::ReceivedEntry LokiEncoder::Received(const meshtel::v1::LogEntry& entry) const {
  ReceivedEntry out;
  std::vector<std::pair<std::string, std::string>> labels = config_.static_labels;
  std::vector<std::pair<std::string, std::string>> metadata;
  // The service: service_name, else a service.name resource attribute the sender left there.
  std::string service = entry.service_name();
  for (const meshtel::v1::SpanAttribute& attribute : entry.resource_attributes()) {
    if (service.empty() && attribute.key() == "service.name") service = AttributeText(attribute);
  }
  // Resource attributes made labels, in mapping order, up to Loki's limit.
  std::vector<std::string_view> labelled;
  for (const auto& [attribute_name, label] : config_.resource_labels) {
    std::string value;
    if (attribute_name == "service.name") {
      value = service.empty() ? std::string("unknown_service") : service;
    } else {
      for (const meshtel::v1::SpanAttribute& attribute : entry.resource_attributes()) {
        if (attribute.key() == attribute_name) {
          value = AttributeText(attribute);
          break;
        }
      }
    }
    if (value.empty() || labels.size() >= kLokiMaxLabels) continue;
    if (collector::ReplaceInvalidUtf8(value)) out.repaired = true;
    out.longest_label_value = std::max(out.longest_label_value, value.size());
    labels.emplace_back(label, std::move(value));
    labelled.push_back(attribute_name);
  }
  const auto is_labelled = [&labelled](std::string_view name) {
    return std::find(labelled.begin(), labelled.end(), name) != labelled.end();
  };
  // Everything else is structured metadata, as Loki's OTLP ingestion keeps it.
  const auto add = [&metadata](std::string name, std::string value) {
    if (!value.empty()) metadata.emplace_back(std::move(name), std::move(value));
  };
  if (!service.empty() && !is_labelled("service.name")) add("service_name", service);
  for (const meshtel::v1::SpanAttribute& attribute : entry.resource_attributes()) {
    if (attribute.key() == "service.name" || is_labelled(attribute.key())) continue;
    add(LokiAttributeName(attribute.key()), AttributeText(attribute));
  }
  add("scope_name", entry.scope_name());
  add("scope_version", entry.scope_version());
  for (const meshtel::v1::SpanAttribute& attribute : entry.attributes()) {
    add(LokiAttributeName(attribute.key()), AttributeText(attribute));
  }
  const auto non_zero = [](const std::string& id) {
    return std::any_of(id.begin(), id.end(), [](char c) { return c != 0; });
  };
  if (non_zero(entry.trace_id())) add("trace_id", HexLower(entry.trace_id()));
  if (non_zero(entry.span_id())) add("span_id", HexLower(entry.span_id()));
  add("severity_text", entry.severity_text());
  if (entry.severity_number() != 0) add("severity_number", std::to_string(entry.severity_number()));
  add("detected_level", std::string(collector::SeverityLevel(entry)));
  if (entry.flags() != 0) add("flags", std::to_string(entry.flags()));
  if (entry.observed_time_unix_nano() != 0) {
    add("observed_timestamp", std::to_string(entry.observed_time_unix_nano()));
  }
  add("event_name", entry.event_name());
  for (auto& [name, value] : metadata) {
    if (collector::ReplaceInvalidUtf8(value)) out.repaired = true;
  }

  out.labels = FormatLokiLabels(std::move(labels));
  out.line = entry.body();
  if (collector::ReplaceInvalidUtf8(out.line)) out.repaired = true;
  if (config_.structured_metadata) {
    out.metadata = std::move(metadata);
  } else {
    for (const auto& [name, value] : metadata) {
      AppendLogfmt(name == "detected_level" ? std::string("level") : name, value, out.line);
    }
  }
  return out;
}

absl::StatusOr<size_t> LokiEncoder::Measure(const collector::StoredRecord& stored) {
  const uint64_t time_ns = LokiEntryTimeNanos(stored);
  const absl::Time time = absl::FromUnixNanos(static_cast<int64_t>(time_ns));
  const absl::Time now = absl::Now();
  if (time < now - config_.reject_older_than) {
    return absl::InvalidArgumentError(
        absl::StrCat("entry time ", absl::FormatTime(time, absl::UTCTimeZone()),
                     " is older than reject_older_than (",
                     absl::FormatDuration(config_.reject_older_than), "): Loki would refuse it"));
  }
  if (time > now + config_.creation_grace_period) {
    return absl::InvalidArgumentError(
        absl::StrCat("entry time ", absl::FormatTime(time, absl::UTCTimeZone()),
                     " is more than creation_grace_period (",
                     absl::FormatDuration(config_.creation_grace_period),
                     ") in the future: Loki would refuse it (too_far_in_future)"));
  }
  if (stored.record.has_received_log()) {
    const ReceivedEntry entry = Received(stored.record.received_log());
    if (entry.longest_label_value > kLokiMaxLabelValueBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("a resource label would be ", entry.longest_label_value,
                       " bytes, over Loki's ", kLokiMaxLabelValueBytes));
    }
    if (entry.line.size() > config_.max_line_bytes) {
      return absl::InvalidArgumentError(absl::StrCat("line of ", entry.line.size(),
                                                     " bytes is over max_line_bytes (",
                                                     config_.max_line_bytes, ")"));
    }
    size_t bytes = entry.line.size() + 24;
    for (const auto& [name, value] : entry.metadata) bytes += PairBytes(name, value);
    return bytes;
  }
  for (const LokiLabel& label : config_.labels) {
    std::string value = LokiLabelValue(stored.record, label.field);
    collector::ReplaceInvalidUtf8(value);  // as StreamLabels() sends it
    if (value.size() > kLokiMaxLabelValueBytes) {
      return absl::InvalidArgumentError(absl::StrCat("label ", label.name, " would be ",
                                                     value.size(), " bytes, over Loki's ",
                                                     kLokiMaxLabelValueBytes));
    }
  }
  const std::string line = Line(stored.record);
  if (line.size() > config_.max_line_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "line of ", line.size(), " bytes is over max_line_bytes (", config_.max_line_bytes, ")"));
  }
  size_t bytes = line.size() + 24;  // the line, the timestamp and the entry's tags
  for (const auto& [name, value] : Metadata(stored.record)) bytes += PairBytes(name, value);
  return bytes;
}

absl::StatusOr<collector::Payload> LokiEncoder::Encode(
    std::span<const collector::StoredRecord> records) {
  struct Entry {
    uint64_t time_ns;
    size_t index;  // key order, to keep ties stable
  };
  std::map<std::string, std::vector<Entry>> streams;
  std::vector<bool> repaired(records.size(), false);
  // Received log records, built once: index in `records` -> entry.
  std::map<size_t, ReceivedEntry> received;
  for (size_t i = 0; i < records.size(); ++i) {
    if (records[i].record.has_received_log()) {
      ReceivedEntry entry = Received(records[i].record.received_log());
      streams[entry.labels].push_back({LokiEntryTimeNanos(records[i]), i});
      repaired[i] = entry.repaired;
      received.emplace(i, std::move(entry));
      continue;
    }
    bool labels_repaired = false;
    streams[StreamLabels(records[i].record, &labels_repaired)].push_back(
        {LokiEntryTimeNanos(records[i]), i});
    repaired[i] = labels_repaired;
  }
  logproto::PushRequest request;
  for (auto& [labels, entries] : streams) {
    std::stable_sort(entries.begin(), entries.end(),
                     [](const Entry& a, const Entry& b) { return a.time_ns < b.time_ns; });
    logproto::StreamAdapter* stream = request.add_streams();
    stream->set_labels(labels);
    for (const Entry& entry : entries) {
      const meshtel::v1::RequestRecord& record = records[entry.index].record;
      logproto::EntryAdapter* out = stream->add_entries();
      out->mutable_timestamp()->set_seconds(static_cast<int64_t>(entry.time_ns / 1000000000));
      out->mutable_timestamp()->set_nanos(static_cast<int32_t>(entry.time_ns % 1000000000));
      if (auto it = received.find(entry.index); it != received.end()) {
        out->set_line(std::move(it->second.line));
        for (auto& [name, value] : it->second.metadata) {
          logproto::LabelPairAdapter* pair = out->add_structuredmetadata();
          pair->set_name(std::move(name));
          pair->set_value(std::move(value));
        }
        if (repaired[entry.index]) ++repaired_entries_;
        continue;
      }
      bool entry_repaired = false;
      out->set_line(Line(record, &entry_repaired));
      for (auto& [name, value] : Metadata(record, &entry_repaired)) {
        logproto::LabelPairAdapter* pair = out->add_structuredmetadata();
        pair->set_name(std::move(name));
        pair->set_value(std::move(value));
      }
      if (entry_repaired || repaired[entry.index]) ++repaired_entries_;
    }
  }
  std::string serialized;
  if (!request.SerializeToString(&serialized)) {
    return absl::InternalError("the Loki push request did not serialize");
  }
  collector::Payload payload;
  snappy::Compress(serialized.data(), serialized.size(), &payload.body);
  payload.content_type = "application/x-protobuf";
  payload.entries = records.size();
  return payload;
}

}  // namespace meshtel::exporters
