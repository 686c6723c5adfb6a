#include "proxy/http/timed_socket.h"

#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include "boost/asio.hpp"
#include "boost/beast.hpp"
#include "gtest/gtest.h"

namespace meshtel::proxy {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

// A connected pair on loopback: `timed` (under test) and `peer` (a plain socket).
class TimedSocketTest : public ::testing::Test {
 protected:
  TimedSocketTest() {
    IoAcceptor acceptor(io_context_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    peer_.connect(acceptor.local_endpoint());
    IoSocket accepted(io_context_);
    acceptor.accept(accepted);
    timed_.emplace(std::move(accepted));
  }

  // Runs the io_context until `done` or for at most `limit` (a guard against a hang only).
  void RunUntil(const bool& done, std::chrono::seconds limit = 20s) {
    const auto give_up = std::chrono::steady_clock::now() + limit;
    while (!done && std::chrono::steady_clock::now() < give_up) {
      if (io_context_.stopped()) io_context_.restart();  // it stops whenever it runs out of work
      io_context_.run_for(10ms);
    }
  }

  // Starts one read of up to 64 bytes on `timed_`; its result lands in error_ and read_.
  void StartRead() {
    timed_->async_read_some(asio::buffer(data_), [this](beast::error_code error, size_t read) {
      error_ = error;
      read_ = read;
      done_ = true;
    });
  }

  // Writes `text` from the peer after `delay`.
  void PeerWritesAfter(std::chrono::milliseconds delay, std::string text) {
    peer_timer_.expires_after(delay);
    peer_timer_.async_wait([this, text = std::move(text)](beast::error_code error) {
      if (!error) asio::write(peer_, asio::buffer(text));
    });
  }

  asio::io_context io_context_;
  tcp::socket peer_{io_context_};
  asio::steady_timer peer_timer_{io_context_};
  std::optional<TimedSocket> timed_;
  char data_[64];
  bool done_ = false;
  beast::error_code error_;
  size_t read_ = 0;
};

TEST_F(TimedSocketTest, ReadPastTheDeadlineEndsWithTimeoutAndClosesTheSocket) {
  timed_->expires_after(20ms);
  StartRead();
  RunUntil(done_);
  ASSERT_TRUE(done_);
  EXPECT_EQ(error_, beast::error::timeout) << error_.message();
  EXPECT_FALSE(timed_->socket().is_open());
}

TEST_F(TimedSocketTest, ReadBeforeTheDeadlineCompletes) {
  timed_->expires_after(10s);
  PeerWritesAfter(0ms, "hello");
  StartRead();
  RunUntil(done_);
  ASSERT_TRUE(done_);
  EXPECT_FALSE(error_) << error_.message();
  EXPECT_EQ(std::string(data_, read_), "hello");
}

// The deadline moves on while a read waits: the timer, armed for the first deadline, wakes, sees
// the later one, and waits again instead of ending the read.
TEST_F(TimedSocketTest, DeadlineMovedOnWhileReadingKeepsTheReadGoing) {
  timed_->expires_after(30ms);
  StartRead();
  timed_->expires_after(10s);
  PeerWritesAfter(300ms, "late but in time");
  RunUntil(done_);
  ASSERT_TRUE(done_);
  EXPECT_FALSE(error_) << error_.message();
  EXPECT_EQ(std::string(data_, read_), "late but in time");
}

// A shorter deadline than the one the timer waits for takes effect: the timer is re-armed earlier.
TEST_F(TimedSocketTest, ShorterDeadlineRearmsTheTimer) {
  timed_->expires_after(1h);
  PeerWritesAfter(0ms, "first");
  StartRead();
  RunUntil(done_);
  ASSERT_FALSE(error_) << error_.message();
  done_ = false;
  timed_->expires_after(20ms);
  StartRead();
  RunUntil(done_);
  ASSERT_TRUE(done_);
  EXPECT_EQ(error_, beast::error::timeout) << error_.message();
}

TEST_F(TimedSocketTest, NoDeadlineWaitsForTheData) {
  timed_->expires_after(20ms);
  timed_->expires_never();
  PeerWritesAfter(200ms, "whenever");
  StartRead();
  RunUntil(done_);
  ASSERT_TRUE(done_);
  EXPECT_FALSE(error_) << error_.message();
  EXPECT_EQ(std::string(data_, read_), "whenever");
}

TEST_F(TimedSocketTest, TimeoutOfOneOperationDoesNotStickToTheNext) {
  timed_->expires_after(20ms);
  StartRead();
  RunUntil(done_);
  ASSERT_EQ(error_, beast::error::timeout);
  // The socket is closed now: the next operation fails as on any closed socket, not as a timeout.
  done_ = false;
  timed_->expires_after(10s);
  StartRead();
  RunUntil(done_);
  ASSERT_TRUE(done_);
  EXPECT_TRUE(error_);
  EXPECT_NE(error_, beast::error::timeout);
}

TEST_F(TimedSocketTest, DestroyedWithAReadPendingCompletesItAsAborted) {
  timed_->expires_after(10s);
  StartRead();
  timed_.reset();
  RunUntil(done_);
  ASSERT_TRUE(done_);
  EXPECT_EQ(error_, asio::error::operation_aborted) << error_.message();
}

TEST_F(TimedSocketTest, WriteAndConnectHonourTheDeadline) {
  IoAcceptor listener(io_context_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  TimedSocket client(io_context_.get_executor());
  client.expires_after(10s);
  bool connected = false;
  beast::error_code connect_error;
  client.async_connect(listener.local_endpoint(), [&](beast::error_code error) {
    connect_error = error;
    connected = true;
  });
  RunUntil(connected);
  ASSERT_TRUE(connected);
  ASSERT_FALSE(connect_error) << connect_error.message();

  // Nobody reads the other end: writes fill the socket buffers, then wait, then time out.
  client.expires_after(200ms);
  const std::string block(1 << 20, 'x');
  bool written = false;
  beast::error_code write_error;
  size_t total = 0;
  std::function<void()> write_more = [&] {
    client.async_write_some(asio::buffer(block), [&](beast::error_code error, size_t n) {
      total += n;
      if (error) {
        write_error = error;
        written = true;
        return;
      }
      write_more();
    });
  };
  write_more();
  RunUntil(written);
  ASSERT_TRUE(written);
  EXPECT_EQ(write_error, beast::error::timeout) << write_error.message();
  EXPECT_GT(total, 0u);
}

// Beast's HTTP reader runs on it as on tcp_stream (TimedSocket is an AsyncReadStream).
TEST_F(TimedSocketTest, ServesBeastHttpReads) {
  timed_->expires_after(10s);
  PeerWritesAfter(0ms, "GET /x HTTP/1.1\r\nHost: a\r\n\r\n");
  beast::flat_buffer buffer;
  http::request<http::empty_body> request;
  bool read = false;
  beast::error_code read_error;
  http::async_read(*timed_, buffer, request, [&](beast::error_code error, size_t) {
    read_error = error;
    read = true;
  });
  RunUntil(read);
  ASSERT_TRUE(read);
  ASSERT_FALSE(read_error) << read_error.message();
  EXPECT_EQ(request.target(), "/x");
}

}  // namespace
}  // namespace meshtel::proxy
