#pragma once
// FluentdSender: sends one forward-protocol message per Send() over its own TCP connection and
// returns the server's verdict (wire-facts §6).
//
// Connection: opened on the first Send() and kept between calls. A connection that failed (or
// that the server closed or wrote to unasked while idle) is closed, and the next Send() opens a
// new one; the delivery engine does the waiting between calls. With `shared_key` every new
// connection first does the secure-forward handshake: HELO from the server, PING with this
// client's digest, PONG with the server's, whose digest is verified. A server that announces
// keepalive=false in its HELO gets a new connection for every Send().
//
// Verdicts:
//   kOk         the message was written and, with require_ack, the server answered
//               {"ack": <the payload's chunk id>}.
//   kRetryable  address resolution, connect, write or read failed; the timeout passed; the
//               server closed the connection, answered another chunk id or sent bytes that are
//               not an ack. The connection is dropped.
//   kPermanent  the handshake was refused (PONG false, with the server's reason), the server's
//               digest does not match the shared key, or the server asked for the handshake
//               (HELO) while no shared_key is configured. Sending again cannot help until the
//               configuration changes.
// Deadline: one Send() takes at most config.timeout in total (resolve, connect, handshake, write,
// ack); an operation still running then is cancelled (its socket closed), so a silent server
// cannot hang the caller. Host names are resolved on each connect.
//
// Threading: one thread at a time (the exporter's delivery thread). Never throws.

#include <chrono>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "collector/delivery/exporter.h"
#include "exporters/fluentd/fluentd_config.h"
#include "exporters/fluentd/msgpack.h"

namespace meshtel::exporters::fluentd {

class FluentdSender : public collector::Sender {
 public:
  explicit FluentdSender(FluentdConfig config);
  ~FluentdSender() override;

  collector::SendResult Send(const collector::Payload& payload) override;

  // True while a connection is open (between calls: kept for the next Send()).
  bool connected() const { return socket_.is_open(); }

 private:
  using Clock = std::chrono::steady_clock;

  // Each returns OK, Unavailable/DeadlineExceeded (retryable) or PermissionDenied/
  // FailedPrecondition (permanent); the message is the verdict's detail.
  absl::Status Connect(Clock::time_point deadline);
  absl::Status Handshake(Clock::time_point deadline);
  absl::Status Write(std::string_view data, Clock::time_point deadline);
  absl::Status AwaitAck(const std::string& chunk, Clock::time_point deadline);
  // Reads one msgpack object (a nil keep-alive is skipped).
  absl::StatusOr<MsgpackValue> ReadObject(Clock::time_point deadline, std::string_view what);
  // False when the idle connection was closed by the server or has unread bytes.
  bool IdleConnectionUsable();
  void Close();

  const FluentdConfig config_;
  boost::asio::io_context io_;
  boost::asio::ip::tcp::socket socket_;
  boost::asio::ip::tcp::resolver resolver_;
  std::string read_buffer_;       // received bytes not yet decoded
  bool server_keepalive_ = true;  // from the HELO; true without a handshake
};

// Lower-case hex of SHA-512 over the concatenation of `parts`: the handshake's digests.
std::string Sha512Hex(std::initializer_list<std::string_view> parts);

}  // namespace meshtel::exporters::fluentd
