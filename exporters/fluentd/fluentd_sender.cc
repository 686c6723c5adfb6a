#include "exporters/fluentd/fluentd_sender.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <poll.h>

#include <array>
#include <functional>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_split.h"
#include "boost/asio/connect.hpp"
#include "boost/asio/ip/address.hpp"
#include "boost/asio/write.hpp"
#include "fmt/format.h"
#include "spdlog/spdlog.h"

namespace meshtel::exporters::fluentd {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// An answer from the server larger than this is not an ack or handshake message.
constexpr size_t kMaxAnswerBytes = 1 << 20;

// Runs `io` until `done` or `deadline`. At the deadline calls `cancel` and, when `drain`, runs
// the cancelled operation's handler (socket operations end at once when their socket closes).
// Returns false when the deadline passed first.
bool RunUntil(asio::io_context& io, const bool& done,
              std::chrono::steady_clock::time_point deadline, const std::function<void()>& cancel,
              bool drain) {
  io.restart();
  while (!done) {
    if (io.run_one_until(deadline) > 0) continue;
    if (done) break;
    if (std::chrono::steady_clock::now() < deadline && !io.stopped()) continue;
    cancel();
    if (drain) {
      io.restart();
      while (!done && io.run_one() > 0) {
      }
    }
    return false;
  }
  return true;
}

bool IsCommand(const MsgpackValue& value, std::string_view name) {
  return value.type == MsgpackValue::Type::kArray && !value.array.empty() &&
         value.array[0].is_str() && value.array[0].bytes == name;
}

bool IsBytes(const MsgpackValue* value) {
  return value != nullptr &&
         (value->type == MsgpackValue::Type::kStr || value->type == MsgpackValue::Type::kBin);
}

std::string RandomHex(size_t bytes) {
  std::string raw(bytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes)) != 1) {
    return {};
  }
  return absl::BytesToHexString(raw);
}

bool IsConfigurationError(const absl::Status& status) {
  return status.code() == absl::StatusCode::kPermissionDenied ||
         status.code() == absl::StatusCode::kFailedPrecondition;
}

}  // namespace

std::string Sha512Hex(std::initializer_list<std::string_view> parts) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int size = 0;
  EVP_MD_CTX* context = EVP_MD_CTX_new();
  bool ok = context != nullptr && EVP_DigestInit_ex(context, EVP_sha512(), nullptr) == 1;
  for (std::string_view part : parts) {
    ok = ok && EVP_DigestUpdate(context, part.data(), part.size()) == 1;
  }
  ok = ok && EVP_DigestFinal_ex(context, digest.data(), &size) == 1;
  EVP_MD_CTX_free(context);
  if (!ok) return {};
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest.data()), size));
}

FluentdSender::FluentdSender(FluentdConfig config)
    : config_(std::move(config)), socket_(io_), resolver_(io_) {}

FluentdSender::~FluentdSender() { Close(); }

void FluentdSender::Close() {
  boost::system::error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  read_buffer_.clear();
}

bool FluentdSender::IdleConnectionUsable() {
  if (!read_buffer_.empty()) return false;
  pollfd descriptor{socket_.native_handle(), POLLIN, 0};
  // Between requests the server has nothing to say: readable means closed, reset or unasked.
  return ::poll(&descriptor, 1, 0) == 0;
}

absl::Status FluentdSender::Connect(Clock::time_point deadline) {
  const std::string where = config_.address.ToString();
  std::vector<tcp::endpoint> endpoints;
  boost::system::error_code ec;
  const asio::ip::address literal = asio::ip::make_address(config_.address.host, ec);
  if (!ec) {
    endpoints.emplace_back(literal, config_.address.port);
  } else {
    // The handler may run after a timeout gave up on it: it owns what it writes.
    struct Resolved {
      bool done = false;
      boost::system::error_code ec;
      tcp::resolver::results_type results;
    };
    auto resolved = std::make_shared<Resolved>();
    resolver_.async_resolve(
        config_.address.host, std::to_string(config_.address.port),
        [resolved](const boost::system::error_code& error, tcp::resolver::results_type results) {
          resolved->ec = error;
          resolved->results = std::move(results);
          resolved->done = true;
        });
    if (!RunUntil(
            io_, resolved->done, deadline, [this] { resolver_.cancel(); }, /*drain=*/false)) {
      return absl::DeadlineExceededError(fmt::format("fluentd: resolving {} took over {}", where,
                                                     absl::FormatDuration(config_.timeout)));
    }
    if (resolved->ec) {
      return absl::UnavailableError(
          fmt::format("fluentd: cannot resolve {}: {}", where, resolved->ec.message()));
    }
    for (const auto& entry : resolved->results) endpoints.push_back(entry.endpoint());
  }

  bool done = false;
  asio::async_connect(socket_, endpoints,
                      [&](const boost::system::error_code& error, const tcp::endpoint&) {
                        ec = error;
                        done = true;
                      });
  if (!RunUntil(
          io_, done, deadline, [this] { Close(); }, /*drain=*/true)) {
    Close();
    return absl::DeadlineExceededError(fmt::format("fluentd: connecting to {} took over {}", where,
                                                   absl::FormatDuration(config_.timeout)));
  }
  if (ec) {
    Close();
    return absl::UnavailableError(
        fmt::format("fluentd: cannot connect to {}: {}", where, ec.message()));
  }
  socket_.set_option(tcp::no_delay(true), ec);
  read_buffer_.clear();
  server_keepalive_ = true;
  spdlog::debug("fluentd: connected to {}", where);
  return absl::OkStatus();
}

absl::Status FluentdSender::Write(std::string_view data, Clock::time_point deadline) {
  bool done = false;
  boost::system::error_code ec;
  asio::async_write(socket_, asio::buffer(data.data(), data.size()),
                    [&](const boost::system::error_code& error, size_t) {
                      ec = error;
                      done = true;
                    });
  if (!RunUntil(
          io_, done, deadline, [this] { Close(); }, /*drain=*/true)) {
    return absl::DeadlineExceededError(fmt::format("fluentd: writing {} bytes to {} took over {}",
                                                   data.size(), config_.address.ToString(),
                                                   absl::FormatDuration(config_.timeout)));
  }
  if (ec) {
    return absl::UnavailableError(
        fmt::format("fluentd: writing to {} failed: {}", config_.address.ToString(), ec.message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<MsgpackValue> FluentdSender::ReadObject(Clock::time_point deadline,
                                                       std::string_view what) {
  const std::string where = config_.address.ToString();
  for (;;) {
    if (!read_buffer_.empty()) {
      size_t consumed = 0;
      absl::StatusOr<MsgpackValue> value = DecodeMsgpack(read_buffer_, consumed);
      if (value.ok()) {
        read_buffer_.erase(0, consumed);
        if (value->type == MsgpackValue::Type::kNil) continue;  // a keep-alive
        return value;
      }
      if (value.status().code() != absl::StatusCode::kOutOfRange) {
        return absl::UnavailableError(
            fmt::format("fluentd: {} sent bytes that are not msgpack "
                        "while this client waited for {}: {}",
                        where, what, std::string(value.status().message())));
      }
      if (read_buffer_.size() > kMaxAnswerBytes) {
        return absl::UnavailableError(
            fmt::format("fluentd: {} sent over {} bytes while this client waited for {}", where,
                        kMaxAnswerBytes, what));
      }
    }
    std::array<char, 4096> chunk;
    bool done = false;
    boost::system::error_code ec;
    size_t received = 0;
    socket_.async_read_some(asio::buffer(chunk),
                            [&](const boost::system::error_code& error, size_t n) {
                              ec = error;
                              received = n;
                              done = true;
                            });
    if (!RunUntil(
            io_, done, deadline, [this] { Close(); }, /*drain=*/true)) {
      return absl::DeadlineExceededError(fmt::format("fluentd: no {} from {} within {}", what,
                                                     where, absl::FormatDuration(config_.timeout)));
    }
    if (ec == asio::error::eof) {
      return absl::UnavailableError(fmt::format(
          "fluentd: {} closed the connection while this client waited for {}", where, what));
    }
    if (ec) {
      return absl::UnavailableError(
          fmt::format("fluentd: reading {} from {} failed: {}", what, where, ec.message()));
    }
    read_buffer_.append(chunk.data(), received);
  }
}

absl::Status FluentdSender::Handshake(Clock::time_point deadline) {
  const std::string where = config_.address.ToString();
  absl::StatusOr<MsgpackValue> helo = ReadObject(deadline, "HELO");
  if (!helo.ok()) return helo.status();
  if (!IsCommand(*helo, "HELO") || helo->array.size() < 2 ||
      helo->array[1].type != MsgpackValue::Type::kMap || !IsBytes(helo->array[1].Find("nonce"))) {
    return absl::UnavailableError(fmt::format(
        "fluentd: {} did not start with a HELO carrying a nonce (is it a forward input?)", where));
  }
  const MsgpackValue& options = helo->array[1];
  const std::string nonce = options.Find("nonce")->bytes;
  const MsgpackValue* auth = options.Find("auth");
  const std::string auth_salt = IsBytes(auth) ? auth->bytes : "";
  const MsgpackValue* keepalive = options.Find("keepalive");
  server_keepalive_ =
      keepalive == nullptr || keepalive->type != MsgpackValue::Type::kBool || keepalive->boolean;

  const std::string salt = RandomHex(16);
  if (salt.empty()) return absl::UnavailableError("fluentd: no random bytes for the handshake");
  std::string ping;
  MsgpackWriter writer(ping);
  writer.ArrayHeader(6);
  writer.Str("PING");
  writer.Str(config_.self_hostname);
  writer.Str(salt);
  writer.Str(Sha512Hex({salt, config_.self_hostname, nonce, config_.shared_key}));
  writer.Str(config_.username);
  writer.Str(config_.username.empty() ? std::string()
                                      : Sha512Hex({auth_salt, config_.username, config_.password}));
  if (absl::Status status = Write(ping, deadline); !status.ok()) return status;

  absl::StatusOr<MsgpackValue> pong = ReadObject(deadline, "PONG");
  if (!pong.ok()) return pong.status();
  if (!IsCommand(*pong, "PONG") || pong->array.size() < 5 ||
      pong->array[1].type != MsgpackValue::Type::kBool) {
    return absl::UnavailableError(
        fmt::format("fluentd: {} answered the handshake's PING with something else", where));
  }
  if (!pong->array[1].boolean) {
    const std::string reason = IsBytes(&pong->array[2]) ? pong->array[2].bytes : "";
    return absl::PermissionDeniedError(fmt::format(
        "fluentd: {} refused the handshake: {} (check shared_key, username and password)", where,
        reason.empty() ? "no reason given" : reason));
  }
  const std::string server_hostname = IsBytes(&pong->array[3]) ? pong->array[3].bytes : "";
  const std::string expected = Sha512Hex({salt, server_hostname, nonce, config_.shared_key});
  if (!IsBytes(&pong->array[4]) || pong->array[4].bytes != expected) {
    return absl::PermissionDeniedError(
        fmt::format("fluentd: the handshake digest of {} (server host name '{}') does not match "
                    "shared_key: the server has another key",
                    where, server_hostname));
  }
  spdlog::debug("fluentd: handshake with {} ({}) done", where, server_hostname);
  return absl::OkStatus();
}

absl::Status FluentdSender::AwaitAck(const std::string& chunk, Clock::time_point deadline) {
  absl::StatusOr<MsgpackValue> answer = ReadObject(deadline, "ack");
  if (!answer.ok()) return answer.status();
  if (IsCommand(*answer, "HELO")) {
    return absl::FailedPreconditionError(
        fmt::format("fluentd: {} requires the shared_key handshake (it sent HELO): set shared_key",
                    config_.address.ToString()));
  }
  const MsgpackValue* ack = answer->Find("ack");
  if (!IsBytes(ack)) {
    return absl::UnavailableError(fmt::format(
        "fluentd: {} answered with something else than an ack", config_.address.ToString()));
  }
  if (ack->bytes != chunk) {
    return absl::UnavailableError(fmt::format("fluentd: {} acknowledged chunk '{}', expected '{}'",
                                              config_.address.ToString(), ack->bytes, chunk));
  }
  return absl::OkStatus();
}

collector::SendResult FluentdSender::Send(const collector::Payload& payload) {
  const Clock::time_point deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                                        absl::ToChronoNanoseconds(config_.timeout));
  if (socket_.is_open() && !IdleConnectionUsable()) {
    spdlog::debug("fluentd: the idle connection to {} was closed; reconnecting",
                  config_.address.ToString());
    Close();
  }
  absl::Status status;
  if (!socket_.is_open()) {
    status = Connect(deadline);
    if (status.ok() && !config_.shared_key.empty()) status = Handshake(deadline);
  }
  if (status.ok()) status = Write(payload.body, deadline);
  if (status.ok() && config_.require_ack && !payload.ack_token.empty()) {
    // One chunk id per message of the payload, separated by spaces, acknowledged in order.
    for (absl::string_view chunk : absl::StrSplit(payload.ack_token, ' ', absl::SkipEmpty())) {
      status = AwaitAck(std::string(chunk), deadline);
      if (!status.ok()) break;
    }
  }
  collector::SendResult result;
  if (!status.ok()) {
    Close();
    result.verdict = collector::SendVerdict::kRetryable;
    result.detail = std::string(status.message());
    if (IsConfigurationError(status)) {
      // The records are not at fault (a refused handshake, a key that does not match): pause the
      // exporter and try again at the longest backoff until the operator fixes the settings,
      // instead of setting good records aside.
      result.throttled = true;
      result.detail = "configuration error: " + result.detail;
    }
    return result;
  }
  if (!server_keepalive_) Close();
  return result;
}

}  // namespace meshtel::exporters::fluentd
