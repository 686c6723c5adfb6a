#pragma once
// PolicySource: the telemetry policy in force on the collector, replaced as a whole on reload
// (SIGHUP or a change of policy.file), and the parts that must follow it.
//
// current() hands out the policy as an immutable shared snapshot, so a reader keeps a consistent
// policy for as long as it holds it, while a reload installs the next one. Replace() installs a
// new policy, bumps generation() and calls every listener, in subscription order, on the calling
// thread (after the new policy is visible to current()). A listener must not call Subscribe()
// or Unsubscribe().
//
// Threading: every method may be called from any thread; Replace() calls are serialized.

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "collector/policy/telemetry_policy.h"

namespace meshtel::collector {

class PolicySource {
 public:
  using Listener = std::function<void(const std::shared_ptr<const TelemetryPolicy>&)>;

  // `initial` null: an empty policy (every workload gets the collector's own settings).
  explicit PolicySource(std::shared_ptr<const TelemetryPolicy> initial = nullptr);

  std::shared_ptr<const TelemetryPolicy> current() const;
  // 1 for the initial policy, +1 per Replace().
  uint64_t generation() const;

  void Replace(std::shared_ptr<const TelemetryPolicy> next);

  // Returns an id for Unsubscribe().
  int Subscribe(Listener listener);
  void Unsubscribe(int id);

 private:
  mutable std::mutex mutex_;  // guards policy_, generation_, listeners_
  std::mutex replace_mutex_;  // serializes Replace()
  std::shared_ptr<const TelemetryPolicy> policy_;
  uint64_t generation_ = 1;
  int next_id_ = 1;
  std::vector<std::pair<int, Listener>> listeners_;
};

}  // namespace meshtel::collector
