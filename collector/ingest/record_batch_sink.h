#pragma once
// RecordBatchSink: where the ingest server hands each new, decoded RecordBatch.
//
// Threading: Consume() and LoadProgress() are called from many gRPC threads at once, but never
// concurrently for the same proxy instance; CountStored() from many threads at once, for any
// instances. Errors: a non-OK status from Consume() means "not stored, ask the proxy to resend"
// (the stream ends with UNAVAILABLE); OK means the batch and `progress` are durable (the ack may
// go out). A non-OK LoadProgress() also ends the stream with UNAVAILABLE.
// Order per batch: Consume() (or ConsumeReceived()), the ack written, then CountStored(): what
// only counts a stored batch (request metrics) does not delay the proxy's next batch.

#include <span>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "collector/store/instance_progress.h"
#include "meshtel/v1/record.pb.h"

namespace meshtel::collector {

class RecordBatchSink {
 public:
  virtual ~RecordBatchSink() = default;
  // Stores `batch` together with `progress`, the instance's progress once the batch is stored.
  virtual absl::Status Consume(const meshtel::v1::RecordBatch& batch,
                               const InstanceProgress& progress) = 0;
  // Consume() with each record's serialized bytes as received (`record_bytes[i]` is
  // batch.records(i), a view into the received message, valid during the call): a sink may
  // store those bytes as they are instead of serializing the decoded records again. The default
  // ignores them.
  virtual absl::Status ConsumeReceived(const meshtel::v1::RecordBatch& batch,
                                       std::span<const std::string_view> record_bytes,
                                       const InstanceProgress& progress) {
    (void)record_bytes;
    return Consume(batch, progress);
  }
  // Counts a batch that Consume() stored, after its ack was written (or the stream broke).
  virtual void CountStored(const meshtel::v1::RecordBatch& batch) = 0;
  // The instance's stored progress (zeros for an instance never seen).
  virtual absl::StatusOr<InstanceProgress> LoadProgress(std::string_view instance_id) = 0;
};

}  // namespace meshtel::collector
