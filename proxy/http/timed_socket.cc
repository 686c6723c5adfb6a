#include "proxy/http/timed_socket.h"

// Tested by: tests/proxy/http/timed_socket_test.cc

namespace meshtel::proxy {

TimedSocket::State::State(IoSocket socket)
    : socket(std::move(socket)), timer(this->socket.get_executor()) {}

TimedSocket::State::State(const IoExecutor& executor) : socket(executor), timer(executor) {}

TimedSocket::TimedSocket(IoSocket socket) : state_(std::make_shared<State>(std::move(socket))) {}

TimedSocket::TimedSocket(const IoExecutor& executor) : state_(std::make_shared<State>(executor)) {}

TimedSocket::~TimedSocket() {
  if (!state_) return;  // moved from
  boost::system::error_code ignored;
  state_->socket.close(ignored);
  state_->timer.cancel();
}

void TimedSocket::expires_after(Clock::duration duration) {
  state_->deadline = Clock::now() + duration;
  state_->timed_out = false;
}

void TimedSocket::expires_never() {
  state_->deadline = Clock::time_point::max();
  state_->timed_out = false;
}

void TimedSocket::ArmTimer(const std::shared_ptr<State>& state_pointer) {
  State& state = *state_pointer;
  // No deadline, or a wait that fires by the deadline (it re-arms if the deadline moved on).
  if (state.deadline == Clock::time_point::max() || state.armed_for <= state.deadline) return;
  state.armed_for = state.deadline;
  state.timer.expires_at(state.deadline);  // a pending wait for later ends as aborted
  StartWait(state_pointer);
}

void TimedSocket::StartWait(const std::shared_ptr<State>& state) {
  state->timer.async_wait(
      [state, armed_at = state->armed_for](const boost::system::error_code& error) {
        OnTimer(state, error, armed_at);
      });
}

void TimedSocket::OnTimer(const std::shared_ptr<State>& state_pointer,
                          const boost::system::error_code& error, Clock::time_point armed_at) {
  State& state = *state_pointer;
  // Superseded by a wait for an earlier deadline, or cancelled because the socket is gone.
  if (error == boost::asio::error::operation_aborted || armed_at != state.armed_for) return;
  state.armed_for = Clock::time_point::max();
  if (state.deadline == Clock::time_point::max()) return;
  if (Clock::now() < state.deadline) {
    ArmTimer(state_pointer);  // the deadline moved on while the timer waited: wait for the new one
    return;
  }
  state.timed_out = true;
  boost::system::error_code ignored;
  state.socket.close(ignored);
}

}  // namespace meshtel::proxy
