#pragma once
// ActivePolicy: the telemetry policy a proxy enforces now — its own config merged with the
// ProxyPolicy the collector pushed (proto/meshtel/v1/policy.proto) — and PolicyHolder /
// PolicyReader, which hand it to the IO threads.
//
//   PolicySubscriber ──ValidateProxyPolicy, CompilePolicy──► PolicyHolder::Install
//   IO thread: PolicyReader::Acquire() per request — one atomic load (the holder's generation)
//              while nothing changed; on a change, one locked copy of the new snapshot.
//
// A snapshot is immutable. Without any ProxyPolicy (none received yet, policy.enabled false) the
// snapshot is DefaultPolicy(config): the config's sampling and capture list, reporting on.
//
// Threading: PolicyHolder's methods may be called from any thread. A PolicyReader and its leases
// belong to one thread (an IO thread's io_context: coroutines on it may hold leases across
// suspensions); a lease must end before its reader is destroyed.

#include <atomic>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "meshtel/v1/policy.pb.h"
#include "proxy/config/proxy_config.h"

namespace meshtel::proxy {

// The proxy's limit on captured headers (its own and the policy's together).
inline constexpr size_t kMaxCapturedHeaders = 32;

// What one listener does: outbound = CLIENT side, inbound = SERVER side.
struct ListenerPolicy {
  // The policy's rate, else tracing.random_sampling_percentage.
  double sampling_percentage = 1.0;
  struct Tag {
    std::string name;
    bool from_header = false;   // else a literal (environment tags are read at install)
    std::string value;          // the literal, or the lower-case header name
    std::string default_value;  // header tags: used when the header is absent ("" = no tag)
  };
  std::vector<Tag> tags;
  bool report = true;  // false: no record is sent for this listener's requests
};

struct ActivePolicy {
  std::string version;  // "" = no ProxyPolicy: the config's own settings
  ListenerPolicy outbound;
  ListenerPolicy inbound;
  // The config's capture_request_headers, then the policy's others, without duplicates.
  std::vector<std::string> capture_request_headers;
};

// The proxy's own limits on a ProxyPolicy: at most kMaxCapturedHeaders captured headers together
// with the config's, header names lower-case HTTP tokens, sampling in [0, 100], custom tag names
// non-empty and unique per side, each tag with a source. Errors name the field:
// "capture_request_headers: 40 headers, 42 with the proxy's own, are more than 32".
absl::Status ValidateProxyPolicy(const meshtel::v1::ProxyPolicy& policy, const ProxyConfig& config);

std::shared_ptr<const ActivePolicy> DefaultPolicy(const ProxyConfig& config);

// `policy` must have passed ValidateProxyPolicy. Environment tags are read now through `getenv`
// (absent or empty: the default; no default: no tag). A side the policy leaves unset keeps the
// config's behaviour.
std::shared_ptr<const ActivePolicy> CompilePolicy(
    const meshtel::v1::ProxyPolicy& policy, std::string version, const ProxyConfig& config,
    const std::function<const char*(const char*)>& getenv);

class PolicyHolder {
 public:
  explicit PolicyHolder(std::shared_ptr<const ActivePolicy> initial);

  // Makes `policy` the one readers get from their next Acquire().
  void Install(std::shared_ptr<const ActivePolicy> policy);
  std::shared_ptr<const ActivePolicy> current() const;
  // +1 per Install(); starts at 1.
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<const ActivePolicy> policy_;  // guarded by mutex_
  std::atomic<uint64_t> generation_{1};
};

// One thread's view of a PolicyHolder.
class PolicyReader {
  struct Entry {
    std::shared_ptr<const ActivePolicy> policy;
    uint32_t users = 0;
  };

 public:
  // Keeps a snapshot alive while a request uses it.
  class Lease {
   public:
    Lease(Lease&& other) noexcept : entry_(other.entry_) { other.entry_ = nullptr; }
    Lease& operator=(Lease&&) = delete;
    ~Lease() {
      if (entry_ != nullptr) --entry_->users;
    }
    const ActivePolicy& operator*() const { return *entry_->policy; }
    const ActivePolicy* operator->() const { return entry_->policy.get(); }

   private:
    friend class PolicyReader;
    explicit Lease(Entry* entry) : entry_(entry) { ++entry_->users; }
    Entry* entry_;
  };

  explicit PolicyReader(const PolicyHolder& holder);
  PolicyReader(const PolicyReader&) = delete;
  PolicyReader& operator=(const PolicyReader&) = delete;

  // The snapshot in force now.
  Lease Acquire();

 private:
  const PolicyHolder& holder_;
  uint64_t generation_ = 0;
  std::list<Entry> entries_;  // the newest last; older ones until their last lease ends
};

}  // namespace meshtel::proxy
