#include "proxy/http/upstream_pool.h"

#include <future>
#include <optional>

#include "boost/asio.hpp"
#include "gtest/gtest.h"

namespace meshtel::proxy {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// Awaits `body()` (a coroutine lambda, kept alive in this frame), then sets `*done`.
template <class Body>
IoTask<void> AwaitThenMark(Body body, bool* done) {
  co_await body();
  *done = true;
}

// Runs `body` as a coroutine on `io_context` until it finishes.
template <class Body>
void RunCoroutine(asio::io_context& io_context, Body body) {
  bool done = false;
  asio::co_spawn(io_context, AwaitThenMark(std::move(body), &done), asio::detached);
  while (!done) io_context.run_one();
}

class UpstreamPoolTest : public ::testing::Test {
 protected:
  UpstreamPoolTest()
      : listener_(io_context_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {}

  // Accepts the next pending connection (the pool's connect completes without it: the backlog
  // takes it).
  tcp::socket AcceptOne() {
    tcp::socket socket(io_context_);
    listener_.accept(socket);
    return socket;
  }

  UpstreamPool::Acquired Acquire(UpstreamPool& pool, const tcp::endpoint& destination) {
    UpstreamPool::Acquired acquired;
    RunCoroutine(io_context_,
                 [&]() -> IoTask<void> { acquired = co_await pool.Acquire(destination); });
    return acquired;
  }

  asio::io_context io_context_;
  tcp::acceptor listener_;
};

TEST(UpstreamLimitsTest, BoundsConnectionsPerDestinationAndWaiters) {
  UpstreamLimits limits({.max_connections_per_destination = 2, .max_pending_requests = 1});
  const tcp::endpoint a(asio::ip::make_address("127.0.0.1"), 1000);
  const tcp::endpoint b(asio::ip::make_address("127.0.0.1"), 1001);
  EXPECT_TRUE(limits.TryOpen(a));
  EXPECT_TRUE(limits.TryOpen(a));
  EXPECT_FALSE(limits.TryOpen(a));
  EXPECT_TRUE(limits.TryOpen(b));  // another destination has its own bound
  EXPECT_EQ(limits.open_connections(), 3);
  limits.Closed(a);
  EXPECT_TRUE(limits.TryOpen(a));
  EXPECT_TRUE(limits.TryStartWaiting());
  EXPECT_FALSE(limits.TryStartWaiting());
  limits.StopWaiting();
  EXPECT_TRUE(limits.TryStartWaiting());
}

TEST_F(UpstreamPoolTest, ReleasedConnectionIsReused) {
  UpstreamLimits limits({});
  UpstreamPool pool(io_context_, limits);
  const tcp::endpoint destination = listener_.local_endpoint();
  UpstreamPool::Acquired first = Acquire(pool, destination);
  ASSERT_EQ(first.outcome, UpstreamPool::Outcome::kReady) << first.error.message();
  tcp::socket peer = AcceptOne();
  EXPECT_FALSE(first.connection->reused);
  UpstreamConnection* raw = first.connection.get();
  pool.Release(std::move(first.connection));
  EXPECT_EQ(pool.idle_connections(), 1u);
  UpstreamPool::Acquired second = Acquire(pool, destination);
  ASSERT_EQ(second.outcome, UpstreamPool::Outcome::kReady);
  EXPECT_EQ(second.connection.get(), raw);
  EXPECT_TRUE(second.connection->reused);
  EXPECT_EQ(pool.idle_connections(), 0u);
  EXPECT_EQ(limits.open_connections(), 1);
  second.connection.reset();
  EXPECT_EQ(limits.open_connections(), 0);
}

TEST_F(UpstreamPoolTest, TryAcquireIdleTakesOnlyAnIdleConnection) {
  UpstreamLimits limits({});
  UpstreamPool pool(io_context_, limits);
  const tcp::endpoint destination = listener_.local_endpoint();
  EXPECT_EQ(pool.TryAcquireIdle(destination).get(), nullptr);  // none yet, and none is opened
  EXPECT_EQ(limits.open_connections(), 0);
  UpstreamPool::Acquired first = Acquire(pool, destination);
  ASSERT_EQ(first.outcome, UpstreamPool::Outcome::kReady) << first.error.message();
  tcp::socket peer = AcceptOne();
  UpstreamConnection* raw = first.connection.get();
  pool.Release(std::move(first.connection));
  const tcp::endpoint elsewhere(asio::ip::make_address("127.0.0.1"), destination.port() + 1);
  EXPECT_EQ(pool.TryAcquireIdle(elsewhere).get(), nullptr);
  std::unique_ptr<UpstreamConnection> idle = pool.TryAcquireIdle(destination);
  ASSERT_NE(idle, nullptr);
  EXPECT_EQ(idle.get(), raw);
  EXPECT_TRUE(idle->reused);
  EXPECT_EQ(pool.idle_connections(), 0u);
  EXPECT_EQ(pool.TryAcquireIdle(destination).get(), nullptr);
  EXPECT_EQ(limits.open_connections(), 1);
}

TEST_F(UpstreamPoolTest, ConnectionTheUpstreamClosedIsNotReused) {
  UpstreamLimits limits({});
  UpstreamPool pool(io_context_, limits);
  const tcp::endpoint destination = listener_.local_endpoint();
  UpstreamPool::Acquired first = Acquire(pool, destination);
  ASSERT_EQ(first.outcome, UpstreamPool::Outcome::kReady);
  const std::string first_address = first.connection->local_address;
  {
    tcp::socket peer = AcceptOne();
    pool.Release(std::move(first.connection));
    peer.close();  // the upstream drops the idle connection
  }
  UpstreamPool::Acquired second;
  // The FIN may take a moment on loopback; a fresh connection is what must come back.
  for (int attempt = 0; attempt < 100; ++attempt) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    second = Acquire(pool, destination);
    if (second.connection->local_address != first_address) break;
    pool.Release(std::move(second.connection));
  }
  ASSERT_EQ(second.outcome, UpstreamPool::Outcome::kReady);
  EXPECT_NE(second.connection->local_address, first_address);
  EXPECT_FALSE(second.connection->reused);
  EXPECT_EQ(limits.open_connections(), 1);  // the closed one is no longer counted
}

TEST_F(UpstreamPoolTest, ConnectFailureIsReportedAndUncounted) {
  UpstreamLimits limits({});
  UpstreamPool pool(io_context_, limits);
  tcp::endpoint closed = listener_.local_endpoint();
  listener_.close();
  UpstreamPool::Acquired acquired = Acquire(pool, closed);
  EXPECT_EQ(acquired.outcome, UpstreamPool::Outcome::kConnectFailed);
  EXPECT_TRUE(acquired.error);
  EXPECT_EQ(limits.open_connections(), 0);
}

TEST_F(UpstreamPoolTest, AtTheBoundARequestWaitsForARelease) {
  UpstreamLimits limits({.max_connections_per_destination = 1, .queue_timeout = absl::Seconds(10)});
  UpstreamPool pool(io_context_, limits);
  const tcp::endpoint destination = listener_.local_endpoint();
  UpstreamPool::Acquired held = Acquire(pool, destination);
  ASSERT_EQ(held.outcome, UpstreamPool::Outcome::kReady);
  tcp::socket peer = AcceptOne();
  UpstreamConnection* raw = held.connection.get();
  // A second request waits; releasing the first connection hands it over.
  std::optional<UpstreamPool::Acquired> waited;
  asio::co_spawn(
      io_context_, [&]() -> IoTask<void> { waited = co_await pool.Acquire(destination); },
      asio::detached);
  io_context_.poll();
  EXPECT_FALSE(waited.has_value());
  pool.Release(std::move(held.connection));
  while (!waited) io_context_.run_one();
  ASSERT_EQ(waited->outcome, UpstreamPool::Outcome::kReady);
  EXPECT_EQ(waited->connection.get(), raw);
}

TEST_F(UpstreamPoolTest, AtTheBoundARequestOverflowsAfterTheQueueTimeout) {
  UpstreamLimits limits(
      {.max_connections_per_destination = 1, .queue_timeout = absl::Milliseconds(20)});
  UpstreamPool pool(io_context_, limits);
  const tcp::endpoint destination = listener_.local_endpoint();
  UpstreamPool::Acquired held = Acquire(pool, destination);
  ASSERT_EQ(held.outcome, UpstreamPool::Outcome::kReady);
  EXPECT_EQ(Acquire(pool, destination).outcome, UpstreamPool::Outcome::kOverflow);
}

TEST_F(UpstreamPoolTest, PastMaxPendingRequestsOverflowAtOnce) {
  UpstreamLimits limits({.max_connections_per_destination = 1, .max_pending_requests = 0});
  UpstreamPool pool(io_context_, limits);
  const tcp::endpoint destination = listener_.local_endpoint();
  UpstreamPool::Acquired held = Acquire(pool, destination);
  ASSERT_EQ(held.outcome, UpstreamPool::Outcome::kReady);
  EXPECT_EQ(Acquire(pool, destination).outcome, UpstreamPool::Outcome::kOverflow);
}

}  // namespace
}  // namespace meshtel::proxy
