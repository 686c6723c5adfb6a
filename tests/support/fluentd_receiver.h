#pragma once
// FluentdReceiver: a Fluentd forward-protocol server on 127.0.0.1 for tests (wire-facts §6).
//
// It reads the three event modes a forward input takes (Message/Forward, PackedForward,
// CompressedPackedForward with gzip; integer or EventTime times), records every event and each
// request's mode and option map, and answers a request carrying a `chunk` option as its AckMode
// says. With Options::shared_key it requires the secure-forward handshake on every connection
// (HELO, checks the PING's digest and, with a username, the password digest; PONG). Protocol
// faults it sees (bytes that are not msgpack, a `size` that does not match, a refused
// handshake) are listed in errors(). Options::keep_events false checks and counts the events
// without keeping them (benchmarks).
//
// Its decoding is its own: only the msgpack reader (exporters/fluentd/msgpack.h) is shared with
// the exporter; gzip and SHA-512 are done here with zlib and OpenSSL directly.
//
// Threading: serves on its own thread; every accessor is safe from any thread. The destructor
// stops the thread and closes every connection (as a server that goes away).

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>  // before Boost 1.74's awaitable.hpp, which uses std::exchange
#include <vector>

#include "boost/asio/awaitable.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "exporters/fluentd/msgpack.h"

namespace meshtel::testing {

class FluentdReceiver {
 public:
  enum class AckMode {
    kAck,      // {"ack": <chunk>}
    kNoAck,    // says nothing
    kWrongId,  // {"ack": <another id>}
    kClose,    // closes the connection instead of answering
  };

  struct Options {
    uint16_t port = 0;                               // 0: any free port (see port())
    std::string shared_key;                          // non-empty: require the handshake
    std::string hostname = "fluentd-test-receiver";  // the server host name in PONG
    std::string username;  // non-empty: user authentication (with password)
    std::string password;
    bool keepalive = true;  // false: close the connection after each request (HELO says so)
    // Non-empty: PONG's digest is computed over this key instead of shared_key (a server that
    // does not hold the client's key).
    std::string pong_key;
    // False: every event is still checked ([time, map] with an EventTime or integer time, str
    // keys, every value well-formed msgpack) and counted, but neither decoded into a tree nor
    // kept: events() stays empty. For benchmarks, where keeping
    // hundreds of thousands of event trees would cost more than the exporter under test.
    bool keep_events = true;
  };

  struct Event {
    std::string tag;
    bool event_time = false;  // the time was an EventTime (else an integer)
    uint32_t seconds = 0;
    uint32_t nanoseconds = 0;
    exporters::fluentd::MsgpackValue record;
  };

  struct Request {
    std::string mode;  // Message, Forward, PackedForward or CompressedPackedForward
    std::string tag;
    size_t entries = 0;
    exporters::fluentd::MsgpackValue option;  // nil when the request had none
  };

  explicit FluentdReceiver(Options options);
  FluentdReceiver() : FluentdReceiver(Options{}) {}
  ~FluentdReceiver();
  FluentdReceiver(const FluentdReceiver&) = delete;
  FluentdReceiver& operator=(const FluentdReceiver&) = delete;

  uint16_t port() const { return port_; }
  void set_ack_mode(AckMode mode);

  std::vector<Event> events() const;
  // Events received (kept or not).
  size_t event_count() const;
  std::vector<Request> requests() const;
  std::vector<std::string> errors() const;
  size_t connections() const;

 private:
  boost::asio::awaitable<void> Accept();
  boost::asio::awaitable<void> Serve(boost::asio::ip::tcp::socket socket);
  boost::asio::awaitable<bool> Handshake(boost::asio::ip::tcp::socket& socket, std::string& buffer);
  // Records the request's events; returns the chunk id to answer, or "" for none.
  std::string Record(exporters::fluentd::MsgpackValue& request);
  void Error(std::string error);

  const Options options_;
  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::thread thread_;

  mutable std::mutex mutex_;
  AckMode ack_mode_ = AckMode::kAck;  // guarded by mutex_
  std::vector<Event> events_;         // guarded by mutex_
  size_t event_count_ = 0;            // guarded by mutex_
  std::vector<Request> requests_;     // guarded by mutex_
  std::vector<std::string> errors_;   // guarded by mutex_
  size_t connections_ = 0;            // guarded by mutex_
};

}  // namespace meshtel::testing
