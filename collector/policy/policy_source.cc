#include "collector/policy/policy_source.h"

#include <utility>

namespace meshtel::collector {

PolicySource::PolicySource(std::shared_ptr<const TelemetryPolicy> initial)
    : policy_(initial != nullptr ? std::move(initial) : std::make_shared<const TelemetryPolicy>()) {
}

std::shared_ptr<const TelemetryPolicy> PolicySource::current() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return policy_;
}

uint64_t PolicySource::generation() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return generation_;
}

void PolicySource::Replace(std::shared_ptr<const TelemetryPolicy> next) {
  std::lock_guard<std::mutex> serialize(replace_mutex_);
  if (next == nullptr) next = std::make_shared<const TelemetryPolicy>();
  std::vector<std::pair<int, Listener>> listeners;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    policy_ = next;
    ++generation_;
    listeners = listeners_;
  }
  for (const auto& [id, listener] : listeners) listener(next);
}

int PolicySource::Subscribe(Listener listener) {
  std::lock_guard<std::mutex> lock(mutex_);
  const int id = next_id_++;
  listeners_.emplace_back(id, std::move(listener));
  return id;
}

void PolicySource::Unsubscribe(int id) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::erase_if(listeners_, [id](const auto& entry) { return entry.first == id; });
}

}  // namespace meshtel::collector
