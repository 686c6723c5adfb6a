#include "proxy/reporter/record_queue.h"

#include <algorithm>
#include <bit>
#include <utility>

namespace meshtel::proxy {

void QueuedRecord::Encode(const meshtel::v1::RequestRecord& record) {
  bytes.clear();
  record.AppendToString(&bytes);
  const std::string& id = record.trace_id();
  trace_id_size = static_cast<uint8_t>(std::min(id.size(), trace_id.size()));
  std::copy_n(id.data(), trace_id_size, trace_id.data());
  sampled = record.sampled();
}

RecordQueue::RecordQueue(size_t capacity)
    : mask_(std::bit_ceil(std::max<size_t>(capacity, 2)) - 1),
      slots_(std::make_unique<Slot[]>(mask_ + 1)) {
  for (size_t i = 0; i <= mask_; ++i) slots_[i].sequence.store(i, std::memory_order_relaxed);
}

bool RecordQueue::TryPush(QueuedRecord&& record) {
  uint64_t position = push_position_.load(std::memory_order_relaxed);
  for (;;) {
    Slot& slot = slots_[position & mask_];
    const uint64_t sequence = slot.sequence.load(std::memory_order_acquire);
    const int64_t difference = static_cast<int64_t>(sequence) - static_cast<int64_t>(position);
    if (difference == 0) {
      // The slot is free for this position: claim the position, then fill and publish the slot.
      if (push_position_.compare_exchange_weak(position, position + 1, std::memory_order_relaxed)) {
        std::swap(slot.record, record);
        slot.sequence.store(position + 1, std::memory_order_release);
        return true;
      }
    } else if (difference < 0) {
      return false;  // the slot still holds a record a full lap behind: the queue is full
    } else {
      position = push_position_.load(std::memory_order_relaxed);
    }
  }
}

bool RecordQueue::TryPop(QueuedRecord& record) {
  uint64_t position = pop_position_.load(std::memory_order_relaxed);
  for (;;) {
    Slot& slot = slots_[position & mask_];
    const uint64_t sequence = slot.sequence.load(std::memory_order_acquire);
    const int64_t difference = static_cast<int64_t>(sequence) - static_cast<int64_t>(position + 1);
    if (difference == 0) {
      if (pop_position_.compare_exchange_weak(position, position + 1, std::memory_order_relaxed)) {
        // Swap, so that the slot keeps a buffer for the next push to reuse.
        std::swap(record, slot.record);
        // Free the slot for the push one lap ahead.
        slot.sequence.store(position + mask_ + 1, std::memory_order_release);
        return true;
      }
    } else if (difference < 0) {
      return false;  // nothing published at this position yet: empty
    } else {
      position = pop_position_.load(std::memory_order_relaxed);
    }
  }
}

size_t RecordQueue::ApproximateSize() const {
  const uint64_t pushed = push_position_.load(std::memory_order_relaxed);
  const uint64_t popped = pop_position_.load(std::memory_order_relaxed);
  return pushed > popped ? static_cast<size_t>(pushed - popped) : 0;
}

}  // namespace meshtel::proxy
