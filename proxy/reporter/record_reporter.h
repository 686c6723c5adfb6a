#pragma once
// RecordReporter: batches request records and streams them to the collector over
// meshtel.v1.RecordService, keeping every batch until the collector acknowledges it.
//
//   Submit() ──► pending records ──(batcher thread: by count or flush_interval)──► unacked batches
//                                                                                   │ (sequence
//                                                                                   1,2,3…)
//   collector ◄──(stream thread: writes unsent batches in order)─────────────────────┘
//   collector ──(ack reader thread: RecordAck.highest_stored_sequence)──► drops acked batches
//
// Guarantees:
//   - Submit() never blocks on the network (a short mutex only); the request path never waits.
//   - Unacked batches are bounded by reporter.max_unacked_bytes: past it the oldest batches are
//     dropped and their records counted in dropped_records(); the cumulative count travels in
//     every RecordBatch so the collector sees it when the stream is back.
//   - On reconnect (with exponential backoff) every unacked batch is resent in sequence order;
//     the collector processes each (instance, sequence) once.
//   - A batch the collector rejects (INVALID_ARGUMENT, RESOURCE_EXHAUSTED) is dropped and counted
//     in rejected_records(): resending it can never succeed.
// Threading: Submit() and the accessors from any thread; Shutdown() once, from one thread.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/support/sync_stream.h"
#include "meshtel/v1/record.pb.h"
#include "proxy/config/proxy_config.h"
#include "proxy/reporter/record_sink.h"

namespace meshtel::proxy {

class RecordReporter : public RecordSink {
 public:
  // Starts the threads; connecting happens in the background (a collector that is down is not an
  // error, records are kept and sent when it comes back).
  RecordReporter(const ReporterConfig& config, std::string instance_id);
  ~RecordReporter() override;

  // RecordSink
  void Submit(meshtel::v1::RequestRecord&& record) override;

  // Sends what is pending, waits up to `deadline` for the acks, then stops the threads.
  // Returns the number of records still unacknowledged (lost) at the end.
  uint64_t Shutdown(absl::Duration deadline);

  const std::string& instance_id() const { return instance_id_; }
  uint64_t submitted_records() const { return submitted_records_.load(); }
  uint64_t acked_records() const { return acked_records_.load(); }
  uint64_t dropped_records() const { return dropped_records_.load(); }
  uint64_t rejected_records() const { return rejected_records_.load(); }
  uint64_t unacked_bytes() const;
  bool connected() const { return connected_.load(); }

 private:
  struct Batch {
    uint64_t sequence = 0;
    uint32_t record_count = 0;
    grpc::ByteBuffer bytes;
  };
  using Stream = grpc::ClientReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer>;

  void BatcherLoop();
  void StreamLoop();
  // Moves pending records into sequenced batches; returns false when there was nothing.
  bool CutBatches();
  // Writes unsent batches until the stream breaks or the reporter stops.
  void ServeStream(Stream& stream, std::atomic<bool>& broken);
  void ReadAcks(Stream& stream, std::atomic<bool>& broken);
  void DropOldestLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(batches_mutex_);
  // Waits for `delay` unless the reporter stops first; false when stopping.
  bool SleepUnlessStopping(absl::Duration delay);

  const ReporterConfig config_;
  const std::string instance_id_;
  std::shared_ptr<grpc::Channel> channel_;

  std::mutex pending_mutex_;
  std::condition_variable pending_cv_;
  std::vector<meshtel::v1::RequestRecord> pending_ ABSL_GUARDED_BY(pending_mutex_);

  mutable std::mutex batches_mutex_;
  std::condition_variable batches_cv_;
  std::deque<Batch> unacked_ ABSL_GUARDED_BY(batches_mutex_);
  uint64_t unacked_bytes_ ABSL_GUARDED_BY(batches_mutex_) = 0;
  // Sequence of the next batch to write on the current stream.
  uint64_t next_to_send_ ABSL_GUARDED_BY(batches_mutex_) = 1;
  // Sequences written on the current stream and not yet answered, in order: the collector
  // answers each batch once, in order, so the front is what the next ack answers.
  std::deque<uint64_t> in_flight_ ABSL_GUARDED_BY(batches_mutex_);
  uint64_t next_sequence_ ABSL_GUARDED_BY(batches_mutex_) = 1;

  std::atomic<bool> batcher_stopping_{false};
  std::atomic<bool> stopping_{false};
  std::atomic<bool> shut_down_{false};
  std::atomic<bool> connected_{false};
  std::atomic<uint64_t> submitted_records_{0};
  std::atomic<uint64_t> acked_records_{0};
  std::atomic<uint64_t> dropped_records_{0};
  std::atomic<uint64_t> rejected_records_{0};

  std::mutex context_mutex_;
  grpc::ClientContext* active_context_ ABSL_GUARDED_BY(context_mutex_) = nullptr;

  std::thread batcher_thread_;
  std::thread stream_thread_;
};

}  // namespace meshtel::proxy
