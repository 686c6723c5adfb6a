#include "collector/store/wal_group_sync.h"

#include <utility>

namespace meshtel::collector {

absl::Status WalGroupSync::WaitDurable() {
  std::unique_lock<std::mutex> lock(mutex_);
  const uint64_t ticket = ++requested_;
  while (true) {
    if (ticket > failed_from_ && ticket <= failed_to_) return failure_;
    if (durable_ >= ticket) return absl::OkStatus();
    if (syncing_) {
      synced_.wait(lock);
      continue;
    }
    // No sync running: this thread runs one for every ticket handed out so far (their writes
    // were made before their calls, so before this sync begins).
    syncing_ = true;
    const uint64_t covers = requested_;
    const uint64_t first = durable_;
    lock.unlock();
    absl::Status status = sync_();
    lock.lock();
    syncing_ = false;
    ++syncs_;
    if (status.ok()) {
      durable_ = covers;
    } else {
      failed_from_ = first;
      failed_to_ = covers;
      failure_ = std::move(status);
    }
    synced_.notify_all();
  }
}

uint64_t WalGroupSync::syncs() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return syncs_;
}

uint64_t WalGroupSync::waits() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return requested_;
}

}  // namespace meshtel::collector
