#pragma once
// What every HTTP/1.1 connection the programs serve or open has in common (Boost.Beast readers):
// the bound on a connection's read buffer, and the end of a connection coroutine that threw.
//
// Beast's parsers bound a message head (header_limit) and its body (body_limit) but read a
// chunked body's trailer section whole and without a limit, and a field over 64 KiB makes them
// throw std::length_error. A read buffer of kMaxHttpReadBufferBytes bounds both: past it a read
// fails with http::error::buffer_overflow, which the server answers like any unreadable request.
//
// Threading: none (constants and a stateless handler). Errors: none raised.

#include <cstddef>
#include <exception>
#include <string>
#include <utility>

namespace meshtel::common {

// The most a connection's read buffer holds: a message head up to 60 KiB, or a trailer section.
inline constexpr size_t kMaxHttpReadBufferBytes = 64 * 1024;

// The completion handler for asio::co_spawn of one connection's coroutine: an exception that
// escaped it (a bug: readers report errors as codes) ends only that connection, logged with
// `server`, instead of the process.
class ConnectionEnd {
 public:
  explicit ConnectionEnd(std::string server) : server_(std::move(server)) {}
  void operator()(std::exception_ptr thrown) const;

 private:
  std::string server_;
};

}  // namespace meshtel::common
