#include "collector/delivery/batch_delivery.h"

// Tested by: tests/collector/delivery/delivery_engine_test.cc

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace meshtel::collector {

namespace {

// Delivers each half of `records` (a refused or unencodable payload, to find the records at
// fault).
bool DeliverHalves(Encoder& encoder, Sender& sender, const ExporterRetryConfig& retry,
                   std::mt19937_64& random, std::span<const StoredRecord> records,
                   const DeliveryHooks& hooks) {
  const size_t half = records.size() / 2;
  return DeliverBatch(encoder, sender, retry, random, records.subspan(0, half), hooks) &&
         DeliverBatch(encoder, sender, retry, random, records.subspan(half), hooks);
}

// Sends `payload` (of `records`) until it is resolved; `first`, when set, is the verdict of a
// send the caller already made, taken as this loop's first.
bool SendUntilResolved(Encoder& encoder, Sender& sender, const ExporterRetryConfig& retry,
                       std::mt19937_64& random, std::span<const StoredRecord> records,
                       const DeliveryHooks& hooks, const Payload& payload,
                       const SendResult* first) {
  absl::Duration backoff = retry.initial_backoff;
  bool retrying = false;
  const auto stop_retrying = [&](const std::string& detail) {
    if (retrying) hooks.retrying(records.size(), false, detail);
    retrying = false;
  };
  for (;;) {
    const SendResult result = first != nullptr ? *first : sender.Send(payload);
    first = nullptr;
    if (hooks.sent) hooks.sent(result.verdict);
    switch (result.verdict) {
      case SendVerdict::kOk:
        stop_retrying("");
        hooks.delivered(records.size());
        return true;
      case SendVerdict::kRetryable: {
        if (!retrying) hooks.retrying(records.size(), true, result.detail);
        retrying = true;
        // Full jitter: a uniform wait in [0, backoff], unless the backend named its delay.
        absl::Duration wait = result.retry_after.value_or(absl::ZeroDuration());
        if (!result.retry_after) {
          std::uniform_int_distribution<int64_t> jitter(0, absl::ToInt64Microseconds(backoff));
          wait = absl::Microseconds(jitter(random));
        }
        spdlog::debug("{}{}; retry in {}", result.detail,
                      result.throttled ? " (throttled: exporter paused)" : "",
                      absl::FormatDuration(wait));
        backoff = std::min(backoff * 2, retry.max_backoff);
        if (!hooks.sleep(wait)) {
          stop_retrying(result.detail);
          return false;
        }
        continue;
      }
      case SendVerdict::kPermanent:
        stop_retrying(result.detail);
        if (result.partly_stored || result.request_refused || records.size() == 1) {
          hooks.rejected(records, result.detail, result.partly_stored);
          return true;
        }
        return DeliverHalves(encoder, sender, retry, random, records, hooks);
    }
  }
}

}  // namespace

bool DeliverBatch(Encoder& encoder, Sender& sender, const ExporterRetryConfig& retry,
                  std::mt19937_64& random, std::span<const StoredRecord> records,
                  const DeliveryHooks& hooks) {
  if (records.empty()) return true;
  absl::StatusOr<Payload> payload = encoder.Encode(records);
  if (!payload.ok()) {
    if (records.size() > 1) return DeliverHalves(encoder, sender, retry, random, records, hooks);
    hooks.rejected(records, absl::StrCat("encoding failed: ", payload.status().message()), false);
    return true;
  }
  return SendUntilResolved(encoder, sender, retry, random, records, hooks, *payload, nullptr);
}

bool ContinueDelivery(Encoder& encoder, Sender& sender, const ExporterRetryConfig& retry,
                      std::mt19937_64& random, std::span<const StoredRecord> records,
                      const DeliveryHooks& hooks, const Payload& payload, const SendResult& first) {
  return SendUntilResolved(encoder, sender, retry, random, records, hooks, payload, &first);
}

}  // namespace meshtel::collector
