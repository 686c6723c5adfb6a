#pragma once
// FluentdEncoder: stored records -> one Fluentd forward-protocol message (wire-facts §6).
//
// A payload is one PackedForward message, or CompressedPackedForward with `compression: gzip`:
//   [tag, bin(entries), {"size": n, "chunk": id, "compressed": "gzip"}]
// where entries is the concatenation of n msgpack arrays [EventTime, record] (gzip-compressed as
// one gzip member for CompressedPackedForward). "chunk" is present only with require_ack: a
// fresh random 128-bit id, base64, also returned as Payload::ack_token for the sender to match
// against the server's {"ack": id}; "compressed" only with gzip.
//
// EventTime is the record's start_time_unix_nano, or the store key's time when the record has
// none. The record is a map: with record_format `fields` one typed key per record field
// (Istio/Envoy access-log names; numbers as integers, unset strings as nil), with `line` a single
// key (line_key) holding the line AccessLogFormat renders, without its trailing newline.
//
// Measure() returns the size of a record's [EventTime, record] entry before compression; it
// refuses a record whose time does not fit EventTime's 32-bit seconds (after 2106).
// Threading: one thread at a time (the exporter's delivery thread); the encoder keeps scratch
// buffers between calls.

#include <span>
#include <string>

#include "absl/status/statusor.h"
#include "collector/delivery/exporter.h"
#include "collector/logs/access_log_format.h"
#include "exporters/fluentd/fluentd_config.h"

namespace meshtel::exporters::fluentd {

class FluentdEncoder : public collector::Encoder {
 public:
  FluentdEncoder(FluentdConfig config, collector::AccessLogFormat line_format);

  absl::StatusOr<size_t> Measure(const collector::StoredRecord& record) override;
  absl::StatusOr<collector::Payload> Encode(
      std::span<const collector::StoredRecord> records) override;

  // Appends the msgpack entry [EventTime, record] of `record` to `out`.
  absl::Status AppendEntry(const collector::StoredRecord& record, std::string& out);

 private:
  void AppendFields(const meshtel::v1::RequestRecord& record, std::string& out);
  void AppendLine(const meshtel::v1::RequestRecord& record, std::string& out);

  const FluentdConfig config_;
  const collector::AccessLogFormat line_format_;
  std::string entries_;  // scratch: the concatenated entries
  std::string line_;     // scratch: one rendered line
};

// A fresh random 128-bit chunk id, base64 (24 characters, padded).
std::string NewChunkId();

}  // namespace meshtel::exporters::fluentd
