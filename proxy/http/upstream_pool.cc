#include "proxy/http/upstream_pool.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "boost/asio/post.hpp"
#include "boost/asio/redirect_error.hpp"
#include "boost/asio/use_awaitable.hpp"
#include "fmt/format.h"

namespace meshtel::proxy {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

// How often idle connections are checked against idle_timeout, and how often a waiting request
// looks again for a connection freed on another thread.
constexpr auto kSweepInterval = std::chrono::seconds(1);
constexpr auto kWaitRecheck = std::chrono::milliseconds(5);

std::string EndpointText(const tcp::endpoint& endpoint) {
  if (endpoint.address().is_v6()) {
    return fmt::format("[{}]:{}", endpoint.address().to_string(), endpoint.port());
  }
  return fmt::format("{}:{}", endpoint.address().to_string(), endpoint.port());
}

// True while an idle connection is still usable: the upstream neither closed it nor sent bytes
// nobody asked for (either makes it unfit for the next request).
bool StillUsable(UpstreamConnection& connection) {
  if (connection.buffer.size() != 0 || !connection.stream.socket().is_open()) return false;
  char byte;
  const ssize_t got =
      ::recv(connection.stream.socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

}  // namespace

size_t EndpointHash::operator()(const tcp::endpoint& endpoint) const noexcept {
  size_t hash = std::hash<uint16_t>()(endpoint.port());
  const auto mix = [&hash](size_t value) {
    hash ^= value + 0x9e3779b97f4a7c15ULL + (hash << 6) + (hash >> 2);
  };
  if (endpoint.address().is_v4()) {
    mix(endpoint.address().to_v4().to_uint());
  } else {
    for (unsigned char byte : endpoint.address().to_v6().to_bytes()) mix(byte);
  }
  return hash;
}

bool UpstreamLimits::TryOpen(const tcp::endpoint& destination) {
  absl::MutexLock lock(&mutex_);
  uint32_t& open = open_[destination];
  if (open >= config_.max_connections_per_destination) return false;
  ++open;
  ++open_total_;
  return true;
}

void UpstreamLimits::Closed(const tcp::endpoint& destination) {
  absl::MutexLock lock(&mutex_);
  auto it = open_.find(destination);
  if (it == open_.end()) return;
  --open_total_;
  if (--it->second == 0) open_.erase(it);
}

void UpstreamLimits::Register(UpstreamPool* pool) {
  absl::MutexLock lock(&mutex_);
  pools_.push_back(pool);
}

void UpstreamLimits::Unregister(UpstreamPool* pool) {
  absl::MutexLock lock(&mutex_);
  std::erase(pools_, pool);
}

void UpstreamLimits::FreeIdleElsewhere(const tcp::endpoint& destination, UpstreamPool* self) {
  absl::MutexLock lock(&mutex_);
  for (UpstreamPool* pool : pools_) {
    if (pool != self) pool->FreeOneIdleSoon(destination);
  }
}

bool UpstreamLimits::TryStartWaiting() {
  uint32_t waiting = waiting_.load(std::memory_order_relaxed);
  do {
    if (waiting >= config_.max_pending_requests) return false;
  } while (!waiting_.compare_exchange_weak(waiting, waiting + 1, std::memory_order_relaxed));
  return true;
}

void UpstreamLimits::StopWaiting() { waiting_.fetch_sub(1, std::memory_order_relaxed); }

int64_t UpstreamLimits::open_connections() const {
  absl::MutexLock lock(&mutex_);
  return open_total_;
}

UpstreamConnection::UpstreamConnection(const IoExecutor& executor, const tcp::endpoint& destination,
                                       UpstreamLimits& limits)
    : stream(executor), destination(destination), limits_(limits) {
  buffer.reserve(16 * 1024);  // a response head and a small body arrive in one system call
}

UpstreamConnection::~UpstreamConnection() {
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  stream.socket().close(ignored);
  limits_.Closed(destination);
}

UpstreamPool::UpstreamPool(asio::io_context& io_context, UpstreamLimits& limits)
    : io_context_(io_context), limits_(limits), sweep_timer_(io_context) {
  limits_.Register(this);
  ScheduleSweep();
}

UpstreamPool::~UpstreamPool() {
  limits_.Unregister(this);
  sweep_timer_.cancel();
  CloseIdle();
}

size_t UpstreamPool::idle_connections() const { return idle_count_; }

void UpstreamPool::CloseIdle() {
  idle_.clear();
  idle_count_ = 0;
}

std::unique_ptr<UpstreamConnection> UpstreamPool::TakeIdle(const tcp::endpoint& destination) {
  auto it = idle_.find(destination);
  if (it == idle_.end()) return nullptr;
  auto& idle = it->second;
  const auto deadline = Clock::now() - absl::ToChronoNanoseconds(limits_.config().idle_timeout);
  while (!idle.empty()) {
    std::unique_ptr<UpstreamConnection> connection = std::move(idle.back());
    idle.pop_back();
    --idle_count_;
    if (connection->idle_since >= deadline && StillUsable(*connection)) return connection;
  }
  return nullptr;
}

void UpstreamPool::FreeOneIdleSoon(const tcp::endpoint& destination) {
  asio::post(io_context_, [this, destination] {
    auto it = idle_.find(destination);
    if (it == idle_.end() || it->second.empty()) return;
    it->second.erase(it->second.begin());  // the longest idle
    --idle_count_;
  });
}

void UpstreamPool::Release(std::unique_ptr<UpstreamConnection> connection) {
  if (!connection->stream.socket().is_open()) return;
  connection->reused = true;
  connection->idle_since = Clock::now();
  idle_[connection->destination].push_back(std::move(connection));
  ++idle_count_;
  if (!waiters_.empty()) {
    waiters_.front()->cancel();
    waiters_.erase(waiters_.begin());
  }
}

void UpstreamPool::ScheduleSweep() {
  sweep_timer_.expires_after(kSweepInterval);
  sweep_timer_.async_wait([this](const boost::system::error_code& error) {
    if (error) return;  // cancelled: the pool is going away
    SweepIdle();
    ScheduleSweep();
  });
}

void UpstreamPool::SweepIdle() {
  const auto deadline = Clock::now() - absl::ToChronoNanoseconds(limits_.config().idle_timeout);
  for (auto it = idle_.begin(); it != idle_.end();) {
    auto& idle = it->second;
    const size_t before = idle.size();
    std::erase_if(idle, [&](const std::unique_ptr<UpstreamConnection>& connection) {
      return connection->idle_since < deadline || !StillUsable(*connection);
    });
    idle_count_ -= before - idle.size();
    if (idle.empty()) {
      it = idle_.erase(it);
    } else {
      ++it;
    }
  }
}

IoTask<UpstreamPool::Acquired> UpstreamPool::Acquire(const tcp::endpoint& destination) {
  Acquired acquired;
  if (auto idle = TakeIdle(destination)) {
    acquired.outcome = Outcome::kReady;
    acquired.connection = std::move(idle);
    co_return acquired;
  }
  if (!limits_.TryOpen(destination)) {
    // At the bound: wait for a connection to come back, within queue_timeout.
    if (!limits_.TryStartWaiting()) {
      acquired.outcome = Outcome::kOverflow;
      co_return acquired;
    }
    const auto deadline = Clock::now() + absl::ToChronoNanoseconds(limits_.config().queue_timeout);
    IoTimer wake(io_context_);
    bool opened = false;
    for (;;) {
      if (auto idle = TakeIdle(destination)) {
        acquired.connection = std::move(idle);
        break;
      }
      if (limits_.TryOpen(destination)) {
        opened = true;
        break;
      }
      const auto now = Clock::now();
      if (now >= deadline) break;
      limits_.FreeIdleElsewhere(destination, this);
      wake.expires_after(std::min<Clock::duration>(deadline - now, kWaitRecheck));
      waiters_.push_back(&wake);
      beast::error_code ignored;
      co_await wake.async_wait(asio::redirect_error(kUseIoTask, ignored));
      std::erase(waiters_, &wake);
    }
    limits_.StopWaiting();
    if (acquired.connection) {
      acquired.outcome = Outcome::kReady;
      co_return acquired;
    }
    if (!opened) {
      acquired.outcome = Outcome::kOverflow;
      co_return acquired;
    }
  }
  // Counted against the destination from here: the connection's destructor uncounts it.
  auto connection =
      std::make_unique<UpstreamConnection>(io_context_.get_executor(), destination, limits_);
  connection->stream.expires_after(absl::ToChronoNanoseconds(limits_.config().connect_timeout));
  co_await connection->stream.async_connect(destination,
                                            asio::redirect_error(kUseIoTask, acquired.error));
  if (acquired.error) {
    acquired.outcome = Outcome::kConnectFailed;
    co_return acquired;
  }
  beast::error_code ignored;
  connection->stream.socket().set_option(tcp::no_delay(true), ignored);
  connection->local_address = EndpointText(connection->stream.socket().local_endpoint(ignored));
  acquired.outcome = Outcome::kReady;
  acquired.connection = std::move(connection);
  co_return acquired;
}

}  // namespace meshtel::proxy
