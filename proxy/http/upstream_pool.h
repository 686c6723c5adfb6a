#pragma once
// UpstreamPool: kept-alive upstream connections, per destination, for one IO thread.
//
// Each IO thread owns one UpstreamPool (no locks on reuse: a request takes the most recently
// released idle connection to its destination). The bound on open connections per destination is
// shared by all threads through UpstreamLimits, touched only when a connection is opened or
// closed. When a destination is at its bound a request waits up to queue_timeout for a connection
// to come free (idle connections of other threads' pools are closed to make room), and at most
// max_pending_requests requests wait at once; past either it gets
// kOverflow (the caller answers 503 UO, as Envoy does when a circuit breaker trips).
// Idle connections are closed after idle_timeout, and an idle connection the upstream closed (or
// wrote to unasked) is discarded when next taken, before any request is sent on it.
//
// Threading: UpstreamPool is used only on its io_context's thread; UpstreamLimits is thread-safe.
// Ownership: Acquire() hands the connection to the caller, who gives it back with Release() (or
// drops it, which closes it); a connection counts against its destination until destroyed.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "boost/asio/awaitable.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/steady_timer.hpp"
#include "boost/beast/core/flat_buffer.hpp"
#include "collector/common/http_connection.h"
#include "proxy/http/timed_socket.h"

namespace meshtel::proxy {

// Hashes a TCP endpoint (address and port) for the pools' maps.
struct EndpointHash {
  size_t operator()(const boost::asio::ip::tcp::endpoint& endpoint) const noexcept;
};

struct UpstreamPoolConfig {
  uint32_t max_connections_per_destination = 1024;
  uint32_t max_pending_requests = 1024;
  absl::Duration queue_timeout = absl::Seconds(1);
  absl::Duration idle_timeout = absl::Seconds(60);
  absl::Duration connect_timeout = absl::Seconds(5);
};

class UpstreamPool;

// The open-connection count of every destination, shared by the pools of all IO threads.
class UpstreamLimits {
 public:
  // Pools register so that a pool at the bound can ask the others to close an idle connection.
  void Register(UpstreamPool* pool);
  void Unregister(UpstreamPool* pool);
  // Asks every pool but `self` to close one idle connection to `destination`, if it has one.
  void FreeIdleElsewhere(const boost::asio::ip::tcp::endpoint& destination, UpstreamPool* self);

  explicit UpstreamLimits(const UpstreamPoolConfig& config) : config_(config) {}

  // Counts a new connection to `destination` unless it is at its bound.
  bool TryOpen(const boost::asio::ip::tcp::endpoint& destination);
  void Closed(const boost::asio::ip::tcp::endpoint& destination);
  // Counts a request that starts waiting unless max_pending_requests already wait.
  bool TryStartWaiting();
  void StopWaiting();

  int64_t open_connections() const;
  const UpstreamPoolConfig& config() const { return config_; }

 private:
  const UpstreamPoolConfig config_;
  mutable absl::Mutex mutex_;
  std::unordered_map<boost::asio::ip::tcp::endpoint, uint32_t, EndpointHash> open_
      ABSL_GUARDED_BY(mutex_);
  int64_t open_total_ ABSL_GUARDED_BY(mutex_) = 0;
  std::vector<UpstreamPool*> pools_ ABSL_GUARDED_BY(mutex_);
  std::atomic<uint32_t> waiting_{0};
};

// One upstream connection with its read buffer (bytes read past the last response stay there).
class UpstreamConnection {
 public:
  UpstreamConnection(const IoExecutor& executor, const boost::asio::ip::tcp::endpoint& destination,
                     UpstreamLimits& limits);
  ~UpstreamConnection();
  UpstreamConnection(const UpstreamConnection&) = delete;
  UpstreamConnection& operator=(const UpstreamConnection&) = delete;

  TimedSocket stream;
  boost::beast::flat_buffer buffer{common::kMaxHttpReadBufferBytes};  // http_connection.h
  const boost::asio::ip::tcp::endpoint destination;
  std::string local_address;  // "ip:port" of our end
  bool reused = false;        // true when it carried an earlier request
  std::chrono::steady_clock::time_point idle_since;

 private:
  UpstreamLimits& limits_;
};

class UpstreamPool {
 public:
  enum class Outcome { kReady, kConnectFailed, kOverflow };
  struct Acquired {
    Outcome outcome = Outcome::kConnectFailed;
    std::unique_ptr<UpstreamConnection> connection;  // set when kReady
    boost::system::error_code error;                 // why the connect failed
  };

  UpstreamPool(boost::asio::io_context& io_context, UpstreamLimits& limits);
  ~UpstreamPool();

  // An idle connection to `destination`, else a new one (connected within connect_timeout).
  IoTask<Acquired> Acquire(const boost::asio::ip::tcp::endpoint& destination);
  // An idle connection to `destination` that is still usable, or null: the part of Acquire that
  // never waits, for callers that would rather not start a coroutine (a frame allocation) when
  // a kept-alive connection is there, as it usually is.
  std::unique_ptr<UpstreamConnection> TryAcquireIdle(
      const boost::asio::ip::tcp::endpoint& destination) {
    return TakeIdle(destination);
  }
  // Gives a connection back for reuse. Only a connection whose last response was read completely
  // and that the upstream keeps alive may be released; any other is simply destroyed.
  void Release(std::unique_ptr<UpstreamConnection> connection);
  // Closes every idle connection (shutdown).
  void CloseIdle();
  // Closes the longest-idle connection to `destination`, if any, on the pool's own thread soon
  // (any thread may call it): a pool at the bound asks this of the others.
  void FreeOneIdleSoon(const boost::asio::ip::tcp::endpoint& destination);

  // Idle connections now; any thread may ask.
  size_t idle_connections() const;

 private:
  std::unique_ptr<UpstreamConnection> TakeIdle(const boost::asio::ip::tcp::endpoint& destination);
  void ScheduleSweep();
  void SweepIdle();

  boost::asio::io_context& io_context_;
  UpstreamLimits& limits_;
  std::unordered_map<boost::asio::ip::tcp::endpoint,
                     std::vector<std::unique_ptr<UpstreamConnection>>, EndpointHash>
      idle_;
  std::atomic<size_t> idle_count_{0};  // read by the admin endpoint from another thread
  // Requests waiting for a connection; a release on this thread wakes the first.
  std::vector<IoTimer*> waiters_;
  boost::asio::steady_timer sweep_timer_;
};

}  // namespace meshtel::proxy
