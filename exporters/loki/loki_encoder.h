#pragma once
// LokiEncoder: stored records -> one Loki push (logproto.PushRequest, snappy block compressed).
//
// Streams: each record's labels (LokiConfig.labels from the record, plus static_labels) make its
// stream; a field that is empty in the record takes the value "unknown" (as Istio's metric
// labels), so every stream carries every configured label. The labels string is LogQL selector
// syntax with names sorted: {job="meshtel", namespace="shop", reporter="destination"}.
// Entries: timestamp = the record's start_time_unix_nano (the store key's time when that is 0);
// line = the record rendered by the collector's access-log format, without a trailing newline;
// structured metadata (when enabled) = trace_id (lower-case hex) and request_id, each only when
// the record has it. Within a stream entries are in time order (ties keep key order); streams
// appear in labels-string order.
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
// Threading: one thread at a time (the exporter's delivery thread). Ownership: keeps copies of
// its config and format; reads records only during a call.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "collector/delivery/exporter.h"
#include "collector/logs/access_log_format.h"
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

// The entry time of a stored record, in ns since the Unix epoch.
uint64_t LokiEntryTimeNanos(const collector::StoredRecord& stored);

class LokiEncoder : public collector::Encoder {
 public:
  LokiEncoder(LokiConfig config, collector::AccessLogFormat line_format);

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

 private:
  LokiConfig config_;
  collector::AccessLogFormat line_format_;
  uint64_t repaired_entries_ = 0;
};

}  // namespace meshtel::exporters
