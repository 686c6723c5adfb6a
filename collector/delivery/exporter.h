#pragma once
// The contract between the delivery engine and one exporter: an Encoder and a Sender.
//
// The delivery engine (delivery_engine.h) does everything that is the same for every backend:
// it reads the store after the exporter's persisted cursor, cuts batches within the exporter's
// caps, retries with exponential backoff and jitter, honours Retry-After, pauses the whole
// exporter on throttling, splits a rejected batch to find the entries the backend refuses, sets
// those aside as dead letters, passes over the records the exporter does not deliver at all
// (Encoder::Delivers), moves the cursor only after the backend accepted, and counts every record
// once per exporter. An exporter supplies only:
//   - an Encoder: stored records -> one payload in the backend's wire form;
//   - a Sender:   one payload    -> the backend's verdict.
// Exporters keep no cursor, no retry loop and no batch of their own.
//
// Threading: each exporter has one delivery thread; its Encoder and Sender are called from that
// thread only, one call at a time, and may keep state between calls (a connection, buffers).
// Errors: an Encoder refuses a record the backend could never take (Measure); a Sender never
// throws and never blocks past its own configured timeout.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "collector/store/record_store.h"

namespace meshtel::collector {

// One batch in the backend's wire form, ready to send.
struct Payload {
  std::string body;              // the bytes to send, already compressed as the backend expects
  std::string content_type;      // for HTTP backends, e.g. "application/x-protobuf"
  std::string content_encoding;  // for HTTP backends: "" or "gzip"
  // What the backend must echo back to acknowledge this payload (Fluentd's chunk id), or empty.
  // (Several, separated by spaces, for a payload of several messages, acknowledged in order.)
  std::string ack_token;
  size_t entries = 0;  // records in the payload
};

class Encoder {
 public:
  virtual ~Encoder() = default;
  // Whether the exporter delivers `record` at all: false for a record that is not of the kind
  // its backend takes (a received span for a log exporter). Such a record is resolved as
  // filtered: never measured, encoded or sent, counted once in
  // meshtel_exporter_records_total{outcome="filtered"}, and the cursor moves past it as past a
  // delivered one. Default: every record of the exporter's family.
  virtual bool Delivers(const StoredRecord& record) const {
    (void)record;
    return true;
  }
  // Checks one record before it joins a batch. Returns the bytes it adds to a payload (before
  // compression; the engine keeps a batch under the exporter's byte cap with it), or an error
  // when the backend could never take the record (a line over the backend's line limit, a
  // timestamp the backend refuses): the engine then sets it aside as a dead letter with the
  // error's message and never sends it.
  virtual absl::StatusOr<size_t> Measure(const StoredRecord& record) = 0;
  // Encodes `records` (in key order, each accepted by Measure) into one payload.
  virtual absl::StatusOr<Payload> Encode(std::span<const StoredRecord> records) = 0;
  // Entries Encode() changed so that the backend takes them instead of refusing them (e.g.
  // invalid UTF-8 replaced by U+FFFD), since the encoder was made; the engine exports it.
  virtual uint64_t repaired_entries() const { return 0; }
};

enum class SendVerdict {
  kOk,         // the backend accepted the payload: the cursor may move past it
  kRetryable,  // not accepted, and sending the same payload again may succeed (network error,
               // timeout, HTTP 5xx/429, gRPC UNAVAILABLE...)
  kPermanent,  // the backend refused the payload and will refuse it again
};

struct SendResult {
  SendVerdict verdict = SendVerdict::kOk;
  // kRetryable: the backend asked to wait this long (Retry-After, or the protocol's equivalent).
  std::optional<absl::Duration> retry_after;
  // kRetryable: the backend says it is overloaded (HTTP 429): the whole exporter pauses for
  // retry_after (or its current backoff), not only this payload.
  bool throttled = false;
  // kPermanent: the backend may have stored part of the payload before refusing the rest (Loki
  // answers 400 after storing the valid streams). The engine then does not resend any part of it;
  // without this flag it splits the payload to deliver the good records.
  bool partly_stored = false;
  // kPermanent: the backend refused the request itself, whatever records it held (credentials,
  // permissions, an unknown path or method): every part of it would be refused alike, so the
  // engine sets the whole payload aside at once instead of splitting it down to single records.
  bool request_refused = false;
  // Status and message for logs and dead letters, e.g. "HTTP 400: entry too far behind".
  std::string detail;
};

class Sender {
 public:
  virtual ~Sender() = default;
  // Sends one payload and waits for the backend's verdict, at most the sender's own timeout.
  virtual SendResult Send(const Payload& payload) = 0;
};

// What the delivery engine runs for one configured exporter.
struct Exporter {
  std::string name;  // unique among the collector's exporters; names its cursor and counters
  std::string type;  // "loki", "fluentd", ...
  RecordFamily family = RecordFamily::kLogs;  // which records it delivers
  std::unique_ptr<Encoder> encoder;
  std::unique_ptr<Sender> sender;
};

}  // namespace meshtel::collector
