#pragma once
// Test support: a scripted in-process backend for the delivery engine and replays — an encoder
// that writes each record's path on a line (refusing paths starting with "/huge", and counting
// paths starting with "/fix" as repaired entries), and a
// sender whose verdicts the test sets, recording what it accepted. Used only by tests.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_split.h"
#include "collector/delivery/exporter.h"

namespace meshtel::testing {

// What the scripted backend saw and how it answers.
struct Backend {
  std::mutex mutex;
  std::vector<std::vector<std::string>> accepted;  // payloads taken, as lists of paths
  std::vector<size_t> payload_sizes;               // entries of every payload sent
  int fail_next = 0;                               // answer this many sends kRetryable
  std::optional<absl::Duration> retry_after;       // ...with this Retry-After
  bool refuse_bad = false;                         // payloads holding "/bad..." are refused
  bool partly_stored = false;                      // ...with partly_stored
  bool refuse_requests = false;       // every payload is refused with request_refused (HTTP 401)
  std::atomic<bool> down{false};      // every send is kRetryable
  std::atomic<bool> hold{false};      // a send waits (up to 10 s) before answering while set
  std::atomic<int> sends_started{0};  // sends that reached the backend (held ones included)

  std::vector<std::string> AllAccepted() {
    std::lock_guard<std::mutex> lock(mutex);
    std::vector<std::string> all;
    for (const auto& payload : accepted) all.insert(all.end(), payload.begin(), payload.end());
    return all;
  }
};

class LineEncoder : public collector::Encoder {
 public:
  // A record's line is its path; a span's, its name.
  static const std::string& Line(const collector::StoredRecord& stored) {
    return stored.family == collector::RecordFamily::kSpans ? stored.span.name()
                                                            : stored.record.path();
  }
  // As a log exporter: a received span in the logs family is not for it.
  bool Delivers(const collector::StoredRecord& stored) const override {
    return stored.family == collector::RecordFamily::kSpans || !stored.record.has_received_span();
  }
  absl::StatusOr<size_t> Measure(const collector::StoredRecord& stored) override {
    if (Line(stored).starts_with("/huge")) {
      return absl::InvalidArgumentError("line over the backend's limit");
    }
    return Line(stored).size() + 1;
  }
  absl::StatusOr<collector::Payload> Encode(
      std::span<const collector::StoredRecord> records) override {
    collector::Payload payload;
    for (const collector::StoredRecord& stored : records) {
      payload.body += Line(stored) + "\n";
      if (Line(stored).starts_with("/fix")) ++repaired_;
    }
    payload.entries = records.size();
    ++encoded_payloads_;
    return payload;
  }
  // Payloads encoded so far (read from any thread).
  int encoded_payloads() const { return encoded_payloads_.load(); }
  uint64_t repaired_entries() const override { return repaired_; }

 private:
  uint64_t repaired_ = 0;
  std::atomic<int> encoded_payloads_{0};
};

class ScriptedSender : public collector::Sender {
 public:
  explicit ScriptedSender(Backend& backend) : backend_(backend) {}
  collector::SendResult Send(const collector::Payload& payload) override {
    std::vector<std::string> paths = absl::StrSplit(payload.body, '\n', absl::SkipEmpty());
    ++backend_.sends_started;
    for (int waited_ms = 0; backend_.hold.load() && waited_ms < 10'000; ++waited_ms) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    std::lock_guard<std::mutex> lock(backend_.mutex);
    backend_.payload_sizes.push_back(paths.size());
    if (backend_.down.load())
      return {.verdict = collector::SendVerdict::kRetryable, .detail = "down"};
    if (backend_.fail_next > 0) {
      --backend_.fail_next;
      return {.verdict = collector::SendVerdict::kRetryable,
              .retry_after = backend_.retry_after,
              .throttled = backend_.retry_after.has_value(),
              .detail = "HTTP 503"};
    }
    if (backend_.refuse_requests) {
      return {.verdict = collector::SendVerdict::kPermanent,
              .request_refused = true,
              .detail = "HTTP 401: unauthorized"};
    }
    const bool bad = std::any_of(paths.begin(), paths.end(),
                                 [](const std::string& path) { return path.starts_with("/bad"); });
    if (backend_.refuse_bad && bad) {
      return {.verdict = collector::SendVerdict::kPermanent,
              .partly_stored = backend_.partly_stored,
              .detail = "HTTP 400: bad entry"};
    }
    backend_.accepted.push_back(std::move(paths));
    return {};
  }

 private:
  Backend& backend_;
};

}  // namespace meshtel::testing
