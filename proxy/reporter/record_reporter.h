#pragma once
// RecordReporter: takes request records from the IO threads and streams them to one or more
// collectors over meshtel.v1.RecordService.
//
//   Submit() ──(encode once)──► RecordQueue (lock-free, bounded) ──(batcher thread: by count or
//                                flush_interval)
//            ──► route each record to a collector ──► CollectorStream per collector (unacked
//                batches, resend after reconnect, acks; see collector_stream.h)
//
// Routing (several `reporter.collectors`): a sampled record goes to the live collector with the
// highest rendezvous hash of (trace id, collector address), so every record of one trace — from
// every proxy configured with the same addresses — reaches the same collector and the trace can
// be assembled there; other records are spread round robin over the live collectors. A collector
// is live while its stream is open or has been down less than `failover_after`; when it has been
// down longer, its unacknowledged records are routed again among the live ones (its share fails
// over) and it takes new records again once its stream is back. With no live collector records
// stay with the collector they hash to.
//
// Guarantees:
//   - Submit() never blocks and takes no lock: a full queue drops the record and counts it.
//   - Unacked batches are bounded by reporter.max_unacked_bytes (split evenly among collectors):
//     past it the oldest are dropped and counted; the count travels to the collector.
//   - On reconnect every unacked batch is resent; the collector processes each (instance,
//     sequence) once. With several collectors each stream has its own sequence space and
//     instance id "<instance_id>@<collector address>".
//   - With an access log (proxy/access_log/access_log_writer.h), the batcher thread renders
//     every record it takes from the queue into it, and counts the records the queue refused
//     as dropped lines: the IO threads do no access-log work at all.
// Threading: Submit() and the accessors from any thread; Shutdown() once, from one thread.
// Ownership: `access_log`, when given, must outlive the reporter's Shutdown().

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "meshtel/v1/record.pb.h"
#include "proxy/access_log/access_log_writer.h"
#include "proxy/config/proxy_config.h"
#include "proxy/reporter/collector_stream.h"
#include "proxy/reporter/record_queue.h"
#include "proxy/reporter/record_sink.h"

namespace meshtel::proxy {

// The rendezvous weight of `collector` for `trace_id`: the same on every proxy and every run.
uint64_t RendezvousWeight(std::string_view trace_id, std::string_view collector);

class RecordReporter : public RecordSink {
 public:
  // Starts the threads; connecting happens in the background (a collector that is down is not an
  // error: records are kept and sent when it comes back).
  // `access_log` (optional) receives every record the batcher takes from the queue.
  RecordReporter(const ReporterConfig& config, std::string instance_id,
                 AccessLogWriter* access_log = nullptr);
  ~RecordReporter() override;

  // RecordSink
  void Submit(const meshtel::v1::RequestRecord& record) override;

  // Sends what is pending, waits up to `deadline` for the acks, then stops the threads.
  // Returns the number of records still unacknowledged (lost) at the end.
  uint64_t Shutdown(absl::Duration deadline);

  struct CollectorStatus {
    std::string address;
    bool connected = false;
    uint64_t unacked_bytes = 0;
  };

  const std::string& instance_id() const { return instance_id_; }
  uint64_t submitted_records() const { return submitted_records_.load(); }
  uint64_t acked_records() const { return counters_.acked.load(); }
  uint64_t dropped_records() const { return counters_.dropped.load(); }
  uint64_t rejected_records() const { return counters_.rejected.load(); }
  // Records moved from a collector that was down past failover_after to the others.
  uint64_t failed_over_records() const { return failed_over_records_.load(); }
  uint64_t unacked_bytes() const;
  // True while at least one collector stream is open.
  bool connected() const;
  std::vector<CollectorStatus> collectors() const;

 private:
  void BatcherLoop();
  // Moves queued records into batches of the streams they are routed to.
  void CutBatches();
  // Hands the records of streams that are down past failover_after to the live ones.
  void FailOver();
  // The streams records may go to now (all of them when none is live).
  std::vector<size_t> LiveStreams() const;
  size_t Route(const QueuedRecord& record, const std::vector<size_t>& live);
  // Routes `records` among `live` and enqueues them in batches of max_batch_records.
  void Distribute(std::vector<QueuedRecord>& records, const std::vector<size_t>& live);

  const ReporterConfig config_;
  const std::string instance_id_;
  AccessLogWriter* const access_log_;
  ReporterCounters counters_;
  RecordQueue queue_;
  std::vector<std::unique_ptr<CollectorStream>> streams_;
  size_t next_spread_ = 0;  // batcher thread only

  std::mutex wake_mutex_;
  std::condition_variable wake_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> shut_down_{false};
  std::atomic<uint64_t> submitted_records_{0};
  std::atomic<uint64_t> queue_drops_{0};
  uint64_t queue_drops_reported_ = 0;  // batcher thread only
  std::atomic<uint64_t> failed_over_records_{0};
  std::thread batcher_thread_;
};

}  // namespace meshtel::proxy
