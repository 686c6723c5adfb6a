#pragma once
// DeliverBatch: the one place where a measured batch of records becomes accepted payloads — used
// by the delivery engine's live exporters and by replays alike.
//
// Encode and send; on a retryable verdict wait (exponential backoff with full jitter, or the
// backend's Retry-After) and send the same payload again until it is accepted or `sleep` says to
// stop; on a permanent verdict split the payload in halves and deliver each, down to the single
// records the backend refuses — unless the backend may have stored part of it
// (SendResult::partly_stored): then nothing of it is sent again. Refused records go to
// `hooks.rejected`; the caller decides what that means (dead letters, a replay's count).
//
// Threading: runs on the caller's thread; calls the encoder, sender and hooks from it only.

#include <cstddef>
#include <functional>
#include <random>
#include <span>
#include <string>

#include "absl/time/time.h"
#include "collector/config/collector_config.h"
#include "collector/delivery/exporter.h"

namespace meshtel::collector {

struct DeliveryHooks {
  // `records` were accepted by the backend.
  std::function<void(size_t records)> delivered;
  // `records` were refused for good, with why; maybe_delivered: the backend may have kept them.
  std::function<void(std::span<const StoredRecord> records, const std::string& reason,
                     bool maybe_delivered)>
      rejected;
  // A payload of `records` starts (true) or stops (false) being retried; `detail` says why.
  std::function<void(size_t records, bool retrying, const std::string& detail)> retrying;
  // Waits; false when the delivery must stop now.
  std::function<bool(absl::Duration)> sleep;
  // One send got this verdict (called after every send, retries included). May be empty.
  std::function<void(SendVerdict verdict)> sent;
};

// Delivers `records` (in key order, each accepted by the encoder's Measure). True when every
// record was delivered or refused; false when `hooks.sleep` asked to stop first (the caller must
// not move past the batch).
bool DeliverBatch(Encoder& encoder, Sender& sender, const ExporterRetryConfig& retry,
                  std::mt19937_64& random, std::span<const StoredRecord> records,
                  const DeliveryHooks& hooks);

// DeliverBatch for records whose payload the caller already encoded (`payload`, what
// encoder.Encode(records) gave) and sent once, with `first` as the verdict: goes on exactly as
// DeliverBatch would after that first send (hooks.sent is called for it here).
bool ContinueDelivery(Encoder& encoder, Sender& sender, const ExporterRetryConfig& retry,
                      std::mt19937_64& random, std::span<const StoredRecord> records,
                      const DeliveryHooks& hooks, const Payload& payload, const SendResult& first);

}  // namespace meshtel::collector
