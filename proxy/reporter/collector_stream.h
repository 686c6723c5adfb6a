#pragma once
// CollectorStream: one collector's share of the reporter — its gRPC channel, its record stream,
// and the batches it has not acknowledged yet.
//
//   Enqueue() ──► unacked batches (sequence 1,2,3… of this stream) ──(stream thread)──► collector
//   collector ──(ack reader thread: RecordAck.highest_stored_sequence)──► drops acked batches
//
// Guarantees:
//   - Enqueue() never waits on the network.
//   - Unacked batches are bounded by `max_unacked_bytes`: past it the oldest batches are dropped
//     and their records counted (dropped_records()); the stream's cumulative drop count travels
//     in every RecordBatch so the collector sees it when the stream is back.
//   - On reconnect (with exponential backoff) every unacked batch is resent in sequence order;
//     the collector processes each (instance, sequence) once.
//   - A batch the collector rejects (INVALID_ARGUMENT, RESOURCE_EXHAUSTED) is dropped and counted
//     as rejected: resending it can never succeed.
//   - TakeUnacked() hands every unacknowledged record back (failover to another collector); the
//     collector may have stored some of them already, so after a failover a record can arrive
//     twice (at-least-once).
// Threading: every method may be called from any thread; Stop() once.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "collector/common/host_port.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/support/sync_stream.h"
#include "meshtel/v1/record.pb.h"
#include "proxy/config/proxy_config.h"
#include "proxy/reporter/record_queue.h"

namespace meshtel::proxy {

// Counters shared by all of a reporter's streams.
struct ReporterCounters {
  std::atomic<uint64_t> acked{0};
  std::atomic<uint64_t> dropped{0};
  std::atomic<uint64_t> rejected{0};
};

class CollectorStream {
 public:
  // Starts the stream thread; connecting happens in the background (a collector that is down is
  // not an error). `instance_id` names this stream's sequence space to the collector.
  CollectorStream(const ReporterConfig& config, const common::HostPort& address,
                  std::string instance_id, uint64_t max_unacked_bytes, ReporterCounters& counters);
  ~CollectorStream();
  CollectorStream(const CollectorStream&) = delete;
  CollectorStream& operator=(const CollectorStream&) = delete;

  // Puts `records` (each a serialized meshtel.v1.RequestRecord) into one batch with the next
  // sequence and queues it for sending. The records are spliced in without being decoded.
  void Enqueue(std::vector<std::string>&& records);
  // Counts records dropped before they reached this stream (reported with its batches).
  void AddDropped(uint64_t records);
  // Removes every unacknowledged batch and returns its records, oldest first.
  std::vector<QueuedRecord> TakeUnacked();
  // Waits until everything enqueued is acknowledged or `deadline` passes; returns the records
  // still unacknowledged.
  uint64_t WaitForAcks(absl::Duration deadline);
  // Stops the threads (cancelling an open stream). Unacked batches stay countable.
  void Stop();

  const std::string& address() const { return address_text_; }
  bool connected() const { return connected_.load(); }
  // When the stream was last open (creation time if never): how long it has been down.
  std::chrono::steady_clock::time_point last_connected() const;
  uint64_t unacked_bytes() const;
  uint64_t unacked_records() const;

 private:
  struct Batch {
    uint64_t sequence = 0;
    uint32_t record_count = 0;
    grpc::ByteBuffer bytes;
  };
  using Stream = grpc::ClientReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer>;

  void StreamLoop();
  // Writes unsent batches until the stream breaks or the reporter stops.
  void ServeStream(Stream& stream, std::atomic<bool>& broken);
  void ReadAcks(Stream& stream, std::atomic<bool>& broken);
  void DropOldestLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void RemoveLocked(std::deque<Batch>::iterator batch, std::atomic<uint64_t>& counter)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Waits for `delay` unless stopping first; false when stopping.
  bool SleepUnlessStopping(absl::Duration delay);

  const ReporterConfig config_;
  const std::string address_text_;
  const std::string instance_id_;
  const uint64_t max_unacked_bytes_;
  ReporterCounters& counters_;
  std::shared_ptr<grpc::Channel> channel_;

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<Batch> unacked_ ABSL_GUARDED_BY(mutex_);
  uint64_t unacked_bytes_ ABSL_GUARDED_BY(mutex_) = 0;
  uint64_t unacked_records_ ABSL_GUARDED_BY(mutex_) = 0;
  uint64_t next_sequence_ ABSL_GUARDED_BY(mutex_) = 1;
  // Sequence of the next batch to write on the current stream.
  uint64_t next_to_send_ ABSL_GUARDED_BY(mutex_) = 1;
  // Sequences written on the current stream and not yet answered, in order: the collector
  // answers each batch once, in order, so the front is what the next ack answers.
  std::deque<uint64_t> in_flight_ ABSL_GUARDED_BY(mutex_);
  // Records of this stream dropped so far (reported in every batch).
  uint64_t dropped_total_ ABSL_GUARDED_BY(mutex_) = 0;
  std::chrono::steady_clock::time_point last_connected_ ABSL_GUARDED_BY(mutex_);

  std::atomic<bool> stopping_{false};
  std::atomic<bool> connected_{false};
  std::mutex context_mutex_;
  grpc::ClientContext* active_context_ ABSL_GUARDED_BY(context_mutex_) = nullptr;
  std::thread stream_thread_;
};

}  // namespace meshtel::proxy
