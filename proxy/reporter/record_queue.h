#pragma once
// RecordQueue: the bounded, lock-free hand-off of request records from the IO threads to the
// reporter's batcher.
//
// Records travel serialized (QueuedRecord): the IO thread encodes its record once, into one
// buffer, and the batcher splices those bytes into a RecordBatch without decoding them. The
// routing facts the batcher needs (trace id, sampled) travel beside the bytes.
//
// A multi-producer multi-consumer ring (Vyukov's bounded queue): TryPush and TryPop each claim a
// slot with one compare-and-swap on a position counter and publish it with a per-slot sequence
// number, so no thread ever takes a lock or waits for another; a full queue refuses the record
// (the caller counts the drop) and an empty one returns false.
// Threading: any number of threads may push and pop concurrently.
// Ownership: a pushed record is moved into the queue and moved out by the pop that takes it.

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "meshtel/v1/record.pb.h"

namespace meshtel::proxy {

// One serialized meshtel.v1.RequestRecord and what routing needs of it.
struct QueuedRecord {
  std::string bytes;
  std::array<char, 16> trace_id{};
  uint8_t trace_id_size = 0;
  bool sampled = false;

  std::string_view TraceId() const { return {trace_id.data(), trace_id_size}; }
  // Encodes `record` (reusing this object's buffer).
  void Encode(const meshtel::v1::RequestRecord& record);
};

class RecordQueue {
 public:
  // Holds at least `capacity` records (rounded up to a power of two, at least 2).
  explicit RecordQueue(size_t capacity);
  RecordQueue(const RecordQueue&) = delete;
  RecordQueue& operator=(const RecordQueue&) = delete;

  // Moves `record` in; false (record untouched) when the queue is full.
  bool TryPush(QueuedRecord&& record);
  // Moves the oldest record out into `record`; false when the queue is empty.
  bool TryPop(QueuedRecord& record);

  // Records in the queue now; exact only when no push or pop is under way.
  size_t ApproximateSize() const;
  size_t capacity() const { return mask_ + 1; }

 private:
  struct Slot {
    std::atomic<uint64_t> sequence;
    QueuedRecord record;
  };

  const size_t mask_;
  std::unique_ptr<Slot[]> slots_;
  alignas(64) std::atomic<uint64_t> push_position_{0};
  alignas(64) std::atomic<uint64_t> pop_position_{0};
};

}  // namespace meshtel::proxy
