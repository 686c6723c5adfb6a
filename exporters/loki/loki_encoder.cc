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
#include "fmt/format.h"
#include "loki/push.pb.h"
#include "snappy.h"

namespace meshtel::exporters {

namespace {

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
  const uint64_t start = stored.record.start_time_unix_nano();
  return start != 0 ? start : stored.key.time_unix_nano;
}

LokiEncoder::LokiEncoder(LokiConfig config, collector::AccessLogFormat line_format)
    : config_(std::move(config)), line_format_(std::move(line_format)) {}

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
  line_format_.Render(record, line);
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
  for (size_t i = 0; i < records.size(); ++i) {
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
