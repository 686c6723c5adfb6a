#pragma once
// RecordBatchSink: where the ingest server hands each new, decoded RecordBatch.
//
// Threading: Consume() is called from many gRPC threads at once, but never concurrently for the
// same proxy instance. Errors: a non-OK status means "not stored, ask the proxy to resend"
// (the stream ends with UNAVAILABLE); OK means the batch is processed and, once the store holds
// records, durable.

#include "absl/status/status.h"
#include "meshtel/v1/record.pb.h"

namespace meshtel::collector {

class RecordBatchSink {
 public:
  virtual ~RecordBatchSink() = default;
  virtual absl::Status Consume(const meshtel::v1::RecordBatch& batch) = 0;
};

}  // namespace meshtel::collector
