#pragma once
// PolicySubscriber: the proxy's side of meshtel.v1.PolicyService/StreamPolicy
// (proto/meshtel/v1/policy.proto): it keeps one stream open to a collector, announces its node
// (instance id, workload, namespace, workload.labels, build version), and for every response
//   - valid for this proxy (ValidateProxyPolicy): installs it in the PolicyHolder (the IO threads
//     use it from their next request) and ACKs it (version_info = its version);
//   - invalid: NACKs it with the reason (version_info = the last version accepted) and keeps the
//     policy in force.
// Which collector: the first of reporter.collectors whose record stream is open (`live`), else
// the next one after the address that failed last; reconnects with the reporter's backoff
// (reporter.reconnect_initial_backoff doubling to reconnect_max_backoff). While no collector
// answers, the last good policy stays in force; a new stream sends version_info = the last
// version accepted, so the collector sends nothing when that is still the policy.
//
// Threading: one thread of its own, started by the constructor, stopped by Stop() (also by the
// destructor). The accessors may be called from any thread. `holder` must outlive the subscriber.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "meshtel/v1/policy.grpc.pb.h"
#include "proxy/config/proxy_config.h"
#include "proxy/policy/active_policy.h"

namespace meshtel::proxy {

class PolicySubscriber {
 public:
  // `live(i)`: whether the reporter's stream to reporter.collectors[i] is open now (null: none
  // is known to be). `getenv` reads environment custom tags (default: std::getenv).
  PolicySubscriber(const ProxyConfig& config, std::string instance_id, PolicyHolder& holder,
                   std::function<bool(size_t)> live = nullptr,
                   std::function<const char*(const char*)> getenv = nullptr);
  ~PolicySubscriber();
  PolicySubscriber(const PolicySubscriber&) = delete;
  PolicySubscriber& operator=(const PolicySubscriber&) = delete;

  // Ends the stream and joins the thread. Safe to call twice.
  void Stop();

  // The version in force ("" before the first accepted policy).
  std::string version() const;
  uint64_t acks() const { return acks_.load(std::memory_order_relaxed); }
  uint64_t nacks() const { return nacks_.load(std::memory_order_relaxed); }
  // The reason of the last NACK ("" when none).
  std::string last_nack_reason() const;
  // True while a stream is open.
  bool connected() const { return connected_.load(); }
  // Streams opened so far (the first, and one per resubscription).
  uint64_t streams_opened() const { return streams_opened_.load(); }

 private:
  void Loop();
  // Serves one open stream until it breaks or Stop(); true when it carried a response.
  bool Serve(grpc::ClientContext& context, meshtel::v1::PolicyService::Stub& stub);
  // The index of the collector to try next.
  size_t Choose(size_t failed, bool first_attempt) const;
  bool SleepUnlessStopping(absl::Duration delay);

  const ProxyConfig config_;
  const std::string instance_id_;
  PolicyHolder& holder_;
  const std::function<bool(size_t)> live_;
  const std::function<const char*(const char*)> getenv_;
  std::vector<std::shared_ptr<grpc::Channel>> channels_;  // per collector, made lazily (thread)

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::string version_;                            // guarded by mutex_
  std::string last_nack_reason_;                   // guarded by mutex_
  grpc::ClientContext* active_context_ = nullptr;  // guarded by mutex_
  bool stopping_ = false;                          // guarded by mutex_
  std::atomic<uint64_t> acks_{0};
  std::atomic<uint64_t> nacks_{0};
  std::atomic<uint64_t> streams_opened_{0};
  std::atomic<bool> connected_{false};
  std::thread thread_;
};

}  // namespace meshtel::proxy
