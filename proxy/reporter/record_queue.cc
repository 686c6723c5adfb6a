#include "proxy/reporter/record_queue.h"

#include <bit>

namespace meshtel::proxy {

RecordQueue::RecordQueue(size_t capacity)
    : mask_(std::bit_ceil(std::max<size_t>(capacity, 2)) - 1),
      slots_(std::make_unique<Slot[]>(mask_ + 1)) {
  for (size_t i = 0; i <= mask_; ++i) slots_[i].sequence.store(i, std::memory_order_relaxed);
}

bool RecordQueue::TryPush(meshtel::v1::RequestRecord&& record) {
  uint64_t position = push_position_.load(std::memory_order_relaxed);
  for (;;) {
    Slot& slot = slots_[position & mask_];
    const uint64_t sequence = slot.sequence.load(std::memory_order_acquire);
    const int64_t difference = static_cast<int64_t>(sequence) - static_cast<int64_t>(position);
    if (difference == 0) {
      // The slot is free for this position: claim the position, then fill and publish the slot.
      if (push_position_.compare_exchange_weak(position, position + 1, std::memory_order_relaxed)) {
        slot.record = std::move(record);
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

bool RecordQueue::TryPop(meshtel::v1::RequestRecord& record) {
  uint64_t position = pop_position_.load(std::memory_order_relaxed);
  for (;;) {
    Slot& slot = slots_[position & mask_];
    const uint64_t sequence = slot.sequence.load(std::memory_order_acquire);
    const int64_t difference = static_cast<int64_t>(sequence) - static_cast<int64_t>(position + 1);
    if (difference == 0) {
      if (pop_position_.compare_exchange_weak(position, position + 1, std::memory_order_relaxed)) {
        record = std::move(slot.record);
        slot.record.Clear();
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
