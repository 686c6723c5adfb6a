#pragma once
// LokiEncoder: stored records -> one Loki push (logproto.PushRequest, snappy block compressed).
// Request records become access-log lines (below); received log records are sent as the log
// records they are (further below).
//
// Streams: each record's labels (LokiConfig.labels from the record, plus static_labels) make its
// stream; a field that is empty in the record takes the value "unknown" (as Istio's metric
// labels), so every stream carries every configured label. The labels string is LogQL selector
// syntax with names sorted: {job="meshtel", namespace="shop", reporter="destination"}.
// Entries: timestamp = the record's start_time_unix_nano (the store key's time when that is 0);
// line = the record rendered by its access-log format (AccessLogLines: the workload's policy, or
// the collector's access_log format), without a trailing newline;
// structured metadata (when enabled) = trace_id (lower-case hex) and request_id, each only when
// the record has it. Within a stream entries are in time order (ties keep key order); streams
// appear in labels-string order.
//
// Received log records (entries with only received_log, from OTLP) are sent as the log records
// they are, as Loki's own OTLP ingestion stores them: line = the body (a non-string body as its
// JSON); time = time_unix_nano, else observed_time_unix_nano, else the store key's time; stream
// labels = static_labels plus LokiConfig.resource_labels (resource attribute -> label; an
// attribute the record lacks gives no label, service.name gives "unknown_service"; at most
// kLokiMaxLabels labels, mapped attributes past that stay structured metadata). Structured
// metadata (when enabled), names as LokiAttributeName() makes them: the other resource
// attributes, scope_name, scope_version, the log attributes, trace_id, span_id (hex, when set),
// severity_text, severity_number, detected_level (collector::SeverityLevel), flags,
// observed_timestamp (ns) and event_name when set. With structured_metadata off the same pairs are
// appended to the line in logfmt (detected_level as `level`), so `| logfmt` extracts them and
// Loki's level detection reads them. Received spans are not log records: Delivers() is false
// for them (the delivery engine counts them as filtered).
//
// Measure() refuses (InvalidArgument) a record Loki would answer 400 for, for good (wire-facts
// §4.6): a line over max_line_bytes (line_too_long), a time older than reject_older_than
// (greater_than_max_sample_age), a time more than creation_grace_period ahead of the
// collector's clock (too_far_in_future), a label value over Loki's 2048 bytes. The delivery
// engine sets a refused record aside as a dead letter. Otherwise Measure() returns the entry's
// size before compression: the line, the structured metadata and a few bytes of framing (the
// stream's labels string, shared by the stream's entries, is not counted).
// Invalid UTF-8 is repaired, not refused: every byte of a line, a structured-metadata value or
// a label value that is not valid UTF-8 becomes U+FFFD (see Line()); repaired_entries() counts
// the entries so changed.
// Not checked (Loki may still answer 400 for them): an entry more than Loki's out-of-order window
// (1 h) behind the newest one Loki already has for its stream (that depends on what Loki holds).
//
// Encode() writes the protobuf wire form itself (the same bytes logproto::PushRequest would
// serialize to). Each entry Measure() accepted is kept, already serialized, until the next
// batch is measured (MeasuredEntries), so that Encode() does not render its line again.
//
// Threading: one thread at a time (the exporter's delivery thread). Ownership: keeps copies of
// its config and format; reads records only during a call; keeps scratch buffers and the entries
// of the batch being measured between calls.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "collector/delivery/exporter.h"
#include "collector/logs/access_log_format.h"
#include "collector/logs/access_log_routing.h"
#include "exporters/common/measured_entries.h"
#include "exporters/loki/loki_exporter.h"
#include "meshtel/v1/record.pb.h"

namespace meshtel::exporters {

// Loki's default limit on a label value's length (validation.max_label_value_length).
inline constexpr size_t kLokiMaxLabelValueBytes = 2048;

// `labels` (name, value) in Loki's selector syntax, names sorted; values escaped (backslash,
// double quote, newline, carriage return, tab).
std::string FormatLokiLabels(std::vector<std::pair<std::string, std::string>> labels);

// The value the record gives `field` ("" when the record does not have it).
std::string LokiLabelValue(const meshtel::v1::RequestRecord& record, LokiLabelField field);

// The entry time of a stored record, in ns since the Unix epoch (of a received log record: its
// time, else its observed time, else the store key's time).
uint64_t LokiEntryTimeNanos(const collector::StoredRecord& stored);

class LokiEncoder : public collector::Encoder {
 public:
  // `exporter` is the exporter's name, as `lines` routes records to it.
  LokiEncoder(LokiConfig config, collector::AccessLogLines lines, std::string exporter = "");

  // Received spans are not log records; request records only when their access-log line is
  // routed to this exporter (the telemetry policy: side enabled, filter, providers).
  bool Delivers(const collector::StoredRecord& record) const override {
    if (record.record.has_received_span()) return false;
    if (record.record.has_received_log()) return true;
    return lines_.Route(record.record, exporter_).deliver;
  }
  absl::StatusOr<size_t> Measure(const collector::StoredRecord& record) override;
  absl::StatusOr<collector::Payload> Encode(
      std::span<const collector::StoredRecord> records) override;
  // Entries whose line, metadata or labels had invalid UTF-8 replaced, over all Encode() calls
  // (an entry encoded again, after a split of a refused batch, counts again).
  uint64_t repaired_entries() const override { return repaired_entries_; }

  // The labels string of `record`'s stream. Sets *repaired when a value had invalid UTF-8.
  std::string StreamLabels(const meshtel::v1::RequestRecord& record,
                           bool* repaired = nullptr) const;
  // The line of `record`: the access-log line without its trailing newline, invalid UTF-8
  // replaced by U+FFFD (*repaired set when that happened).
  //
  // Why repair rather than refuse: the line is protobuf `string`, which must be UTF-8. Loki's own
  // parser (gogo protobuf) does not check it and stores the bytes, but every strict parser on
  // the way (protobuf-C++/Java/Go-v2 in gateways and test receivers) refuses the whole push,
  // and Loki's query API hands lines out as JSON, where the bytes come back as U+FFFD anyway.
  // A stray byte in a user agent or path must not turn a whole access line into a dead letter:
  // a Loki user expects the line, with the bad bytes shown as U+FFFD — which is what this gives.
  std::string Line(const meshtel::v1::RequestRecord& record, bool* repaired = nullptr) const;
  // The structured metadata of `record` (empty when disabled or absent), values repaired as
  // the line (*repaired set when that happened).
  std::vector<std::pair<std::string, std::string>> Metadata(
      const meshtel::v1::RequestRecord& record, bool* repaired = nullptr) const;

  // A received log record as Loki gets it: its stream's labels string, its line and its
  // structured metadata (empty when disabled: then the pairs are in the line), invalid UTF-8
  // repaired (`repaired` set when that happened).
  struct ReceivedEntry {
    std::string labels;
    std::string line;
    std::vector<std::pair<std::string, std::string>> metadata;
    bool repaired = false;
    size_t longest_label_value = 0;
  };
  ReceivedEntry Received(const meshtel::v1::LogEntry& entry) const;

 private:
  struct EntryText {
    bool repaired = false;  // the line or a metadata value had invalid UTF-8
    size_t line_size = 0;
    size_t estimate = 0;  // what Measure() returns for it
  };
  // Appends the serialized EntryAdapter of request record `record` (time `time_ns`) to `out`.
  EntryText AppendRequestEntry(const meshtel::v1::RequestRecord& record, uint64_t time_ns,
                               std::string& out);
  // The stream (index in streams_) of request record `record`; sets *repaired when a label
  // value had invalid UTF-8.
  uint32_t RequestStream(const meshtel::v1::RequestRecord& record, bool* repaired);
  // The stream with this labels string (added when new).
  uint32_t StreamOf(std::string labels);

  LokiConfig config_;
  collector::AccessLogLines lines_;
  std::string exporter_;
  uint64_t repaired_entries_ = 0;

  // The serialized entries of the batch being measured (flag kRepaired: the line or metadata
  // had invalid UTF-8).
  MeasuredEntries measured_;

  // Scratch, reused between calls.
  struct KeyedStream {
    uint32_t stream = 0;
    bool repaired = false;  // a label value had invalid UTF-8
  };
  std::vector<std::string> streams_;                         // labels strings
  absl::flat_hash_map<std::string, uint32_t> labels_index_;  // labels string -> streams_ index
  absl::flat_hash_map<std::string, KeyedStream> key_index_;  // request label values -> stream
  std::string stream_key_;
  std::string line_;
  std::string metadata_value_;
  std::string entry_bytes_;
  std::string serialized_;
};

}  // namespace meshtel::exporters
