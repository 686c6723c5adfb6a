#pragma once
// WalGroupSync: group commit for `durability: fsync`, outside RocksDB's write path.
//
// A writer writes its WriteBatch without `sync` (the WAL is written to the OS) and then calls
// WaitDurable(), which returns once a WAL sync that began after the call has finished. Syncs run
// back to back while writers wait: the first waiter that finds no sync running runs one, and each
// sync covers every write made before it began. Unlike RocksDB's own group commit (a write with
// `sync` set), writes go on into the WAL and the memtable while a sync runs, so the next sync finds
// them all written and the sync is the only thing a writer waits for.
//
// Durability: a write is durable once WaitDurable() returned OK after it; it may be visible to
// readers of the database before that (the store hides it, see record_store.h, Visibility).
// Threading: WaitDurable() is safe from any number of threads; `sync` is never called by two
// threads at once. Ownership: holds `sync` only. Errors: a failed sync is returned to every
// waiter whose write it should have covered; the next waiter runs a new sync.

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>

#include "absl/status/status.h"

namespace meshtel::collector {

class WalGroupSync {
 public:
  // `sync` makes every write made before it was called durable (DB::SyncWAL()).
  explicit WalGroupSync(std::function<absl::Status()> sync) : sync_(std::move(sync)) {}

  // Returns once a sync begun after this call has finished: OK, or that sync's error.
  absl::Status WaitDurable();

  // Syncs run so far, and WaitDurable() calls so far, for tests and logs.
  uint64_t syncs() const;
  uint64_t waits() const;

 private:
  const std::function<absl::Status()> sync_;
  mutable std::mutex mutex_;
  std::condition_variable synced_;
  uint64_t requested_ = 0;    // tickets handed out: one per WaitDurable() call
  uint64_t durable_ = 0;      // every ticket up to this one is durable
  uint64_t failed_from_ = 0;  // tickets in (failed_from_, failed_to_] saw `failure_`
  uint64_t failed_to_ = 0;
  absl::Status failure_;
  bool syncing_ = false;
  uint64_t syncs_ = 0;
};

}  // namespace meshtel::collector
