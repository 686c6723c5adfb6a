#pragma once
// ReplayManager: sends a stored time range again, to a configured exporter's backend or to a
// one-off target, without touching any exporter's live cursor.
//
// A replay gets an exporter of its own (a new encoder and sender built from the exporter's
// config), reads the range [from, to) of storage time in key order, and runs in two passes:
//   1. checking: a record the exporter does not deliver at all (Encoder::Delivers: a received
//      span for a log exporter) is counted as filtered and left out; every other record goes
//      through the encoder's Measure(); what the backend is known to
//      refuse (a line over its limit, a timestamp outside its accepted window) is counted and its
//      first reasons are kept, before anything is sent;
//   2. sending: the accepted records go out in batches through DeliverBatch — the same retry,
//      backoff and splitting as live delivery. Refusals are counted in the replay's status, not
//      set aside as dead letters (the live exporter keeps its own).
// Progress (checked, sent, rejected of total) is in its status; Cancel() stops it between two
// sends (a send in progress ends within the sender's own timeout). One replay per exporter name
// runs at a time.
//
// Threading: all methods are safe from any thread; each replay runs on a thread of its own.
// Ownership: the store must outlive the manager; StopAll() (or the destructor) joins the threads.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "collector/delivery/delivery_engine.h"
#include "collector/store/record_store.h"

namespace meshtel::collector {

struct ReplayRequest {
  // Which exporter's backend (and encoding) receives the records; with `target` set, the name
  // the one-off target goes by.
  std::string exporter;
  RecordFamily family = RecordFamily::kLogs;
  uint64_t from_unix_nano = 0;  // storage time, inclusive
  uint64_t to_unix_nano = 0;    // storage time, exclusive
  // A one-off target of a known exporter type instead of the configured exporter `exporter`.
  std::optional<ExporterConfig> one_off;
};

struct ReplayStatus {
  std::string exporter;
  std::string family;
  uint64_t from_unix_nano = 0;
  uint64_t to_unix_nano = 0;
  std::string state;                 // checking, sending, done, cancelled, failed
  uint64_t total = 0;                // records in the range
  uint64_t checked = 0;              // records looked at in the first pass
  uint64_t filtered = 0;             // records not of a kind the exporter delivers (never sent)
  uint64_t refused_before_send = 0;  // records the encoder said the backend would refuse
  std::vector<std::string> refusal_reasons;  // the first few distinct reasons
  uint64_t sent = 0;                         // records the backend accepted
  uint64_t rejected = 0;                     // records the backend refused
  std::string error;  // why it failed, or the last retryable failure while it retries
};

class ReplayManager {
 public:
  // Builds a fresh delivery target for the exporter named by a request.
  using TargetFactory = std::function<absl::StatusOr<DeliveryTarget>(const ReplayRequest&)>;

  ReplayManager(RecordStore& store, TargetFactory factory);
  ~ReplayManager();

  ReplayManager(const ReplayManager&) = delete;
  ReplayManager& operator=(const ReplayManager&) = delete;

  // Starts a replay. InvalidArgument for an empty range, FailedPrecondition while another replay
  // for the same exporter runs, and the factory's error for an exporter it cannot build.
  absl::StatusOr<ReplayStatus> Start(const ReplayRequest& request);
  // Asks the running replay of `exporter` to stop; NotFound when none runs.
  absl::Status Cancel(const std::string& exporter);
  // Every replay since the start, the running ones included.
  std::vector<ReplayStatus> List() const;
  void StopAll();

 private:
  struct Job;
  void Run(Job& job);

  RecordStore& store_;
  const TargetFactory factory_;
  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<Job>> jobs_;  // guarded by mutex_
};

}  // namespace meshtel::collector
