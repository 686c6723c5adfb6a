#include "collector/store/wal_group_sync.h"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

namespace meshtel::collector {
namespace {

// A sync the test holds until it lets it finish, one call at a time.
class HeldSync {
 public:
  absl::Status operator()() {
    std::unique_lock<std::mutex> lock(mutex_);
    ++started_;
    changed_.notify_all();
    changed_.wait(lock, [this] { return released_ >= started_; });
    return results_.empty() ? absl::OkStatus() : Next();
  }
  void WaitStarted(int count) {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [&] { return started_ >= count; });
  }
  void ReleaseOne() {
    std::lock_guard<std::mutex> lock(mutex_);
    ++released_;
    changed_.notify_all();
  }
  void FailNext(absl::Status status) {
    std::lock_guard<std::mutex> lock(mutex_);
    results_.push_back(std::move(status));
  }

 private:
  absl::Status Next() {
    absl::Status status = results_.front();
    results_.erase(results_.begin());
    return status;
  }
  std::mutex mutex_;
  std::condition_variable changed_;
  int started_ = 0;
  int released_ = 0;
  std::vector<absl::Status> results_;
};

void WaitForWaits(const WalGroupSync& group, uint64_t count) {
  while (group.waits() < count) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

TEST(WalGroupSyncTest, AWaiterAloneRunsItsOwnSync) {
  int calls = 0;
  WalGroupSync group([&calls] {
    ++calls;
    return absl::OkStatus();
  });
  EXPECT_TRUE(group.WaitDurable().ok());
  EXPECT_TRUE(group.WaitDurable().ok());
  EXPECT_EQ(calls, 2);  // each write is followed by a sync of its own
  EXPECT_EQ(group.syncs(), 2u);
}

TEST(WalGroupSyncTest, WaitersThatCameDuringASyncWaitForTheNextOneAndShareIt) {
  HeldSync held;
  WalGroupSync group([&held] { return held(); });
  std::future<absl::Status> first =
      std::async(std::launch::async, [&] { return group.WaitDurable(); });
  held.WaitStarted(1);
  // Three writes made while the first sync runs: it may not count for them.
  std::vector<std::future<absl::Status>> later;
  for (int i = 0; i < 3; ++i) {
    later.push_back(std::async(std::launch::async, [&] { return group.WaitDurable(); }));
  }
  WaitForWaits(group, 4);
  held.ReleaseOne();
  EXPECT_TRUE(first.get().ok());
  held.WaitStarted(2);  // one sync for the three
  for (auto& waiter : later) {
    EXPECT_EQ(waiter.wait_for(std::chrono::milliseconds(20)), std::future_status::timeout);
  }
  held.ReleaseOne();
  for (auto& waiter : later) EXPECT_TRUE(waiter.get().ok());
  EXPECT_EQ(group.syncs(), 2u);
}

TEST(WalGroupSyncTest, AFailedSyncFailsTheWaitersItCoveredAndTheNextWaiterSyncsAgain) {
  HeldSync held;
  WalGroupSync group([&held] { return held(); });
  held.FailNext(absl::UnavailableError("WAL sync failed: IO error"));
  std::future<absl::Status> first =
      std::async(std::launch::async, [&] { return group.WaitDurable(); });
  held.WaitStarted(1);
  std::future<absl::Status> during =
      std::async(std::launch::async, [&] { return group.WaitDurable(); });
  WaitForWaits(group, 2);
  held.ReleaseOne();
  const absl::Status failed = first.get();
  EXPECT_EQ(failed.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(failed.message().find("IO error"), std::string::npos);
  // The write made during the failed sync gets a sync of its own, which succeeds.
  held.WaitStarted(2);
  held.ReleaseOne();
  EXPECT_TRUE(during.get().ok());
  std::future<absl::Status> after =
      std::async(std::launch::async, [&] { return group.WaitDurable(); });
  held.WaitStarted(3);
  held.ReleaseOne();
  EXPECT_TRUE(after.get().ok());
  EXPECT_EQ(group.syncs(), 3u);
}

}  // namespace
}  // namespace meshtel::collector
