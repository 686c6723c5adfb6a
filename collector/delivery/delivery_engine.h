#pragma once
// DeliveryEngine: delivers stored records to every configured exporter, each at its own pace.
//
// One delivery thread per exporter runs this loop:
//   1. read up to batch.max_records records after the exporter's persisted cursor (a partial
//      batch waits up to batch.max_wait, measured from its oldest record's storage time);
//   2. Measure() each record: a record the exporter refuses is set aside as a dead letter; the
//      batch is cut before it would pass batch.max_bytes;
//   3. Encode() and Send(); on a retryable verdict wait (exponential backoff with full jitter,
//      or the backend's Retry-After; a throttled verdict is a pause of the whole exporter, which
//      its single thread gives for free) and send the same payload again, until it is accepted or
//      the engine stops; on a permanent verdict split the payload in halves and deliver each,
//      down to the single records the backend refuses, which become dead letters — unless the
//      backend may have stored part of it (SendResult::partly_stored), in which case nothing of
//      it is sent again and its records become dead letters marked maybe_delivered, or the
//      backend refused the request itself (SendResult::request_refused: credentials,
//      permissions, path), in which case its records become dead letters at once;
//   4. move the cursor past the batch and persist it.
//
// A record the exporter does not deliver at all (Encoder::Delivers false: a received span read by
// a log exporter) is filtered: it joins no payload and the cursor moves past it with its batch.
//
// Accounting: each record is counted exactly once per exporter in
// meshtel_exporter_records_total{exporter, outcome="delivered"|"rejected"|"filtered"} when its
// batch is resolved; meshtel_exporter_records_retrying{exporter} holds the records of a payload
// being retried; meshtel_exporter_send_total{exporter, verdict} counts sends;
// meshtel_exporter_lag_records / meshtel_exporter_lag_seconds say how far behind the exporter
// is (records after the cursor, counted up to 10 million; storage age of the oldest of them),
// updated each second. The records are counted afresh at start and every 5 minutes; in between
// only the records stored since the last count are counted, and those resolved since are taken
// off (so records that retention deletes before delivery stay in the lag until the next fresh
// count). The store's retention counts what it drops before delivery
// (meshtel_store_dropped_total).
//
// Isolation: exporters share nothing but the store, so a dead or slow backend holds back only its
// own thread; ingest never waits for delivery. In flight: one payload per exporter. While it is
// on its way (its first send runs on the exporter's send thread), the delivery thread reads,
// measures and encodes the next batch, which is sent once the one in flight is resolved: payloads
// still reach the backend one at a time and in key order, and a payload that is not accepted at
// once is retried or split from the delivery thread as above, before the next one goes.
// At-least-once: a crash or stop between an accepted send and the cursor write sends that batch
// again; a stop in the middle of a split batch resends its halves.
//
// Threading: Start() and Stop() from one controlling thread; statuses() from any thread.
// Ownership: the engine owns the exporters; the store and registry must outlive it.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "collector/config/collector_config.h"
#include "collector/delivery/exporter.h"
#include "collector/store/record_store.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"

namespace meshtel::collector {

// An exporter with the engine's settings for it.
struct DeliveryTarget {
  Exporter exporter;
  ExporterBatchConfig batch;
  ExporterRetryConfig retry;
};

// A snapshot of one exporter's progress, for the admin API and tests.
struct DeliveryStatus {
  std::string name;
  std::string type;
  StoreKey cursor;
  uint64_t delivered = 0;
  uint64_t rejected = 0;
  uint64_t filtered = 0;  // records the exporter does not deliver (Encoder::Delivers)
  uint64_t retrying = 0;
  uint64_t lag_records = 0;
  double lag_seconds = 0;
  std::string last_error;  // the last failed send's detail, empty after a success
};

class DeliveryEngine {
 public:
  DeliveryEngine(RecordStore& store, prometheus::Registry& registry);
  ~DeliveryEngine();

  DeliveryEngine(const DeliveryEngine&) = delete;
  DeliveryEngine& operator=(const DeliveryEngine&) = delete;

  // Loads each target's cursor and starts its delivery thread. Fails (starting nothing) when a
  // cursor cannot be read or two targets share a name.
  absl::Status Start(std::vector<DeliveryTarget> targets);
  // Asks every thread to stop and joins them. A send in progress finishes (each sender bounds
  // its own time); a payload waiting for a retry is left for the next start.
  void Stop();

  std::vector<DeliveryStatus> statuses() const;

 private:
  struct Runner;
  // The delivery loop of one exporter (its thread).
  void Run(Runner& runner);
  // Delivers `records` (one measured batch); false when the engine stopped first. With
  // `payload` and `first`, the batch was already encoded into `payload` and sent once, with
  // `first` as the verdict: delivery goes on from there.
  bool Deliver(Runner& runner, std::span<const StoredRecord> records,
               const Payload* payload = nullptr, const SendResult* first = nullptr);
  // Moves the runner's cursor to `cursor` (persisted) after a resolved batch that had
  // `filtered` records the exporter does not deliver.
  void Advance(Runner& runner, const StoreKey& cursor, uint64_t filtered);
  // Sets records aside as dead letters of the runner's exporter and counts them rejected.
  void SetAside(Runner& runner, std::span<const StoredRecord> records, const std::string& reason,
                bool maybe_delivered);
  // Waits up to `duration`; false when the engine is stopping.
  bool Sleep(absl::Duration duration);
  void UpdateLag(Runner& runner);

  RecordStore& store_;
  prometheus::Family<prometheus::Counter>& records_total_;
  prometheus::Family<prometheus::Counter>& send_total_;
  prometheus::Family<prometheus::Gauge>& retrying_;
  prometheus::Family<prometheus::Gauge>& lag_records_;
  prometheus::Family<prometheus::Gauge>& lag_seconds_;
  prometheus::Family<prometheus::Counter>& repaired_total_;
  std::vector<std::unique_ptr<Runner>> runners_;

  std::atomic<bool> stopping_{false};
  std::mutex sleep_mutex_;
  std::condition_variable sleep_wakeup_;
};

}  // namespace meshtel::collector
