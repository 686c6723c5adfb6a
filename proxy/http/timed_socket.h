#pragma once
// The Asio types of the proxy's IO threads, and TimedSocket: a TCP socket whose operations share
// one deadline, enforced by one lazily re-armed timer per connection.
//
// Each IO thread runs its own io_context, and every socket, timer and coroutine of the request
// path is bound to it through IoExecutor, the io_context's own executor type: no type-erased
// any_io_executor, whose copies and destructions go through a function table on every operation.
//
// TimedSocket stands where Beast's tcp_stream stood. tcp_stream arms a timer before every read or
// write and cancels it after (a timer-queue insert and removal, often a timerfd_settime system
// call, and one more completion handler, each followed by a poll of the reactor). Here
// expires_after() only stores the deadline. The connection's one timer waits for the earliest
// deadline it was armed for; when it fires it re-arms for a deadline set since, or, when the
// deadline has really passed, closes the socket: the operations under way complete with
// beast::error::timeout, as with tcp_stream. Reads and writes share the deadline.
//
// Threading: a TimedSocket is used only on its executor's thread (one io_context thread).
// Ownership: it owns the socket and the timer. The timer's pending wait and each pending
// operation hold the shared state, so destroying a TimedSocket with work pending is safe: the
// destructor closes the socket and cancels the wait, and their handlers find the state alive.
// Errors: as the socket reports them, except beast::error::timeout for an operation the deadline
// ended.
//
// Reads go to Asio as they are: it tries each read at once and asks epoll only after it fails.
// Where the peer cannot have answered yet that try is a system call that fails with EAGAIN; waiting
// for readability first (async_wait) costs one too, an EPOLL_CTL_MOD re-arm that Asio 1.74 makes
// for every wait, and measured dearer (docs/benchmarks.md, "Proxy: reads without the wait").

#include <chrono>
#include <memory>
#include <utility>

#include "boost/asio/associated_allocator.hpp"
#include "boost/asio/associated_executor.hpp"
#include "boost/asio/async_result.hpp"
#include "boost/asio/awaitable.hpp"
#include "boost/asio/basic_socket_acceptor.hpp"
#include "boost/asio/basic_stream_socket.hpp"
#include "boost/asio/basic_waitable_timer.hpp"
#include "boost/asio/detail/handler_cont_helpers.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/use_awaitable.hpp"
#include "boost/beast/core/error.hpp"

namespace meshtel::proxy {

using IoExecutor = boost::asio::io_context::executor_type;
template <typename T>
using IoTask = boost::asio::awaitable<T, IoExecutor>;
using IoSocket = boost::asio::basic_stream_socket<boost::asio::ip::tcp, IoExecutor>;
using IoAcceptor = boost::asio::basic_socket_acceptor<boost::asio::ip::tcp, IoExecutor>;
using IoTimer = boost::asio::basic_waitable_timer<
    std::chrono::steady_clock, boost::asio::wait_traits<std::chrono::steady_clock>, IoExecutor>;
// The completion token of the request path's coroutines.
inline constexpr boost::asio::use_awaitable_t<IoExecutor> kUseIoTask{};

class TimedSocket {
 public:
  using executor_type = IoExecutor;
  using Clock = std::chrono::steady_clock;

  explicit TimedSocket(IoSocket socket);
  explicit TimedSocket(const IoExecutor& executor);
  ~TimedSocket();
  TimedSocket(TimedSocket&&) = default;
  TimedSocket& operator=(TimedSocket&&) = delete;

  IoSocket& socket() { return state_->socket; }
  executor_type get_executor() { return state_->socket.get_executor(); }

  // Operations started from now on (and those under way) end by now + `duration`.
  void expires_after(Clock::duration duration);
  // No deadline: operations wait as long as it takes.
  void expires_never();

  template <typename MutableBuffers, typename Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        [this](auto handler, const MutableBuffers& buffers) {
          ArmTimer(state_);
          state_->socket.async_read_some(
              buffers, TimeoutHandler<std::decay_t<decltype(handler)>>{std::move(handler), state_});
        },
        token, buffers);
  }

  template <typename ConstBuffers, typename Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        [this](auto handler, const ConstBuffers& buffers) {
          ArmTimer(state_);
          state_->socket.async_write_some(
              buffers, TimeoutHandler<std::decay_t<decltype(handler)>>{std::move(handler), state_});
        },
        token, buffers);
  }

  template <typename Token>
  auto async_connect(const boost::asio::ip::tcp::endpoint& endpoint, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code)>(
        [this](auto handler, const boost::asio::ip::tcp::endpoint& endpoint) {
          ArmTimer(state_);
          state_->socket.async_connect(endpoint, TimeoutHandler<std::decay_t<decltype(handler)>>{
                                                     std::move(handler), state_});
        },
        token, endpoint);
  }

 private:
  struct State {
    explicit State(IoSocket socket);
    explicit State(const IoExecutor& executor);

    IoSocket socket;
    IoTimer timer;
    Clock::time_point deadline = Clock::time_point::max();
    // When the pending wait fires; max when no wait is pending.
    Clock::time_point armed_for = Clock::time_point::max();
    bool timed_out = false;  // the deadline closed the socket
  };

  // Makes sure a wait fires at or before the deadline.
  static void ArmTimer(const std::shared_ptr<State>& state);
  static void StartWait(const std::shared_ptr<State>& state);
  static void OnTimer(const std::shared_ptr<State>& state, const boost::system::error_code& error,
                      Clock::time_point armed_at);

  // Completes an operation, reporting an end the deadline caused as beast::error::timeout; keeps
  // the wrapped handler's executor, allocator and continuation hint.
  template <typename Handler>
  struct TimeoutHandler {
    Handler handler;
    std::shared_ptr<State> state;

    using executor_type = boost::asio::associated_executor_t<Handler, IoExecutor>;
    executor_type get_executor() const noexcept {
      return boost::asio::get_associated_executor(handler, state->socket.get_executor());
    }
    using allocator_type = boost::asio::associated_allocator_t<Handler>;
    allocator_type get_allocator() const noexcept {
      return boost::asio::get_associated_allocator(handler);
    }

    template <typename... Rest>
    void operator()(boost::system::error_code error, Rest&&... rest) {
      if (error && state->timed_out) error = boost::beast::error::timeout;
      state.reset();
      std::move(handler)(error, std::forward<Rest>(rest)...);
    }

    friend bool asio_handler_is_continuation(TimeoutHandler* self) {
      return boost_asio_handler_cont_helpers::is_continuation(self->handler);
    }
  };

  std::shared_ptr<State> state_;
};

}  // namespace meshtel::proxy
