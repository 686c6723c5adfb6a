#include "proxy/http/proxy_server.h"

#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <future>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "boost/asio.hpp"
#include "boost/beast.hpp"
#include "collector/logs/record_text.h"
#include "fmt/format.h"
#include "proxy/http/header_arena.h"
#include "proxy/http/hop_by_hop_headers.h"
#include "proxy/http/original_destination.h"
#include "proxy/http/request_id.h"
#include "proxy/http/route_table.h"
#include "proxy/http/timed_socket.h"
#include "proxy/http/upstream_pool.h"
#include "proxy/identity/peer_metadata.h"
#include "proxy/policy/active_policy.h"
#include "proxy/trace/trace_context.h"
#include "spdlog/spdlog.h"

namespace meshtel::proxy {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

constexpr uint32_t kMaxHeaderBytes = 60 * 1024;
// "No limit" for Beast 1.74's body_limit: its boost::none compares as exceeded, so the largest
// value stands in.
constexpr uint64_t kUnlimitedBody = std::numeric_limits<uint64_t>::max();

enum class Direction { kInbound, kOutbound };

// The parsed and forwarded messages keep their fields in the connection's HeaderArena
// (header_arena.h): no malloc per field.
template <bool kIsRequest>
using Parser = http::parser<kIsRequest, http::buffer_body, ArenaAllocator<char>>;
using RequestParser = Parser<true>;
using ResponseParser = Parser<false>;
template <bool kIsRequest>
using Serializer = http::serializer<kIsRequest, http::buffer_body, HeaderFields>;

std::string_view ToStd(beast::string_view view) { return {view.data(), view.size()}; }

std::string EndpointText(const tcp::endpoint& endpoint) {
  const auto address = endpoint.address();
  if (address.is_v6()) return fmt::format("[{}]:{}", address.to_string(), endpoint.port());
  return fmt::format("{}:{}", address.to_string(), endpoint.port());
}

uint64_t OffsetNs(Clock::time_point start, Clock::time_point at) {
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(at - start).count();
  return static_cast<uint64_t>(std::max<int64_t>(ns, 1));
}

uint64_t FlagBit(meshtel::v1::ResponseFlag flag) { return uint64_t{1} << static_cast<int>(flag); }

struct LocalReply {
  http::status status;
  meshtel::v1::ResponseFlag flag;
  bool has_flag;
  const char* details;
  const char* body;
};

constexpr LocalReply kNoRoute{http::status::not_found, meshtel::v1::RESPONSE_FLAG_NO_ROUTE_FOUND,
                              true, "route_not_found", ""};
constexpr LocalReply kConnectFailure{
    http::status::service_unavailable, meshtel::v1::RESPONSE_FLAG_UPSTREAM_CONNECTION_FAILURE, true,
    "upstream_reset_before_response_started{connection_failure}",
    "upstream connect error or disconnect/reset before headers. reset reason: connection failure"};
constexpr LocalReply kUpstreamTimeout{http::status::gateway_timeout,
                                      meshtel::v1::RESPONSE_FLAG_UPSTREAM_REQUEST_TIMEOUT, true,
                                      "upstream_response_timeout", "upstream request timeout"};
constexpr LocalReply kUpstreamReset{
    http::status::service_unavailable, meshtel::v1::RESPONSE_FLAG_UPSTREAM_CONNECTION_TERMINATION,
    true, "upstream_reset_before_response_started{connection_termination}",
    "upstream connect error or disconnect/reset before headers. reset reason: connection "
    "termination"};
constexpr LocalReply kUpstreamProtocolError{
    http::status::bad_gateway, meshtel::v1::RESPONSE_FLAG_UPSTREAM_PROTOCOL_ERROR, true,
    "upstream_reset_before_response_started{protocol_error}",
    "upstream connect error or disconnect/reset before headers. reset reason: protocol error"};
constexpr LocalReply kBadRequest{http::status::bad_request,
                                 meshtel::v1::RESPONSE_FLAG_DOWNSTREAM_PROTOCOL_ERROR, true,
                                 "http1.codec_error", "Bad Request"};
constexpr LocalReply kHeadersTooLarge{http::status::request_header_fields_too_large,
                                      meshtel::v1::RESPONSE_FLAG_DOWNSTREAM_PROTOCOL_ERROR, true,
                                      "http1.headers_too_large", "Request Header Fields Too Large"};
constexpr LocalReply kBodyTooLarge{http::status::payload_too_large,
                                   meshtel::v1::RESPONSE_FLAG_DOWNSTREAM_PROTOCOL_ERROR, false,
                                   "request_payload_too_large", "Payload Too Large"};

constexpr LocalReply kOverflow{
    http::status::service_unavailable, meshtel::v1::RESPONSE_FLAG_UPSTREAM_OVERFLOW, true,
    "upstream_reset_before_response_started{overflow}",
    "upstream connect error or disconnect/reset before headers. reset reason: overflow"};

// Bytes of body read or written in one step; also the size of each connection's relay buffer.
constexpr size_t kRelayPieceBytes = 16 * 1024;

struct RelayResult {
  Clock::time_point header_written = Clock::now();  // when the header went out
  beast::error_code read_error;                     // the input side failed (or timed out)
  beast::error_code write_error;                    // the output side failed (or timed out)
  size_t bytes_read = 0;                            // body bytes consumed from the input
  size_t bytes_written = 0;                     // bytes written to the output (body and framing)
  Clock::time_point input_done = Clock::now();  // when the last input byte was read
};

// Parses what `buffer` holds into `parser`, as Beast's read operations would, without reading:
// up to the end of the header when `header_only`, else up to the end of the message or of the
// buffer_body's buffer. Consumes and returns the bytes used. `error` is need_more when the
// parser wants bytes the buffer does not have yet (the caller reads them with Beast),
// need_buffer when the body's buffer is full. A Beast read that finds what it needs already
// buffered still completes through a post to the io_context: one more turn of the event loop
// (and a poll of the reactor) per message, queued behind whatever else is ready. Parsing here
// first saves that turn where the bytes are there, which they usually are.
template <bool kIsRequest>
size_t ParseBuffered(beast::flat_buffer& buffer, http::basic_parser<kIsRequest>& parser,
                     bool header_only, beast::error_code& error) {
  error = {};
  size_t used_total = 0;
  while (!parser.is_done() && !(header_only && parser.is_header_done())) {
    if (buffer.size() == 0) {
      error = http::error::need_more;
      break;
    }
    const size_t used = parser.put(buffer.data(), error);
    buffer.consume(used);
    used_total += used;
    if (error) break;
    if (used == 0) {  // no progress without more input: let Beast's read take over
      error = http::error::need_more;
      break;
    }
  }
  return used_total;
}

// Writes what `serializer` has for `output` (its header only when `header_only`, else as much
// of the message as it holds) at once, without waiting: `error` is would_block when the socket
// did not take it all, and the caller writes the rest with Beast's asynchronous write. A
// completed asynchronous write resumes its coroutine only on a later turn of the event loop,
// after a poll of the reactor and behind whatever else is ready; a header and a small body
// almost always fit the socket's send buffer, so writing at once saves that turn.
template <bool kIsRequest>
size_t WriteNow(TimedSocket& output, Serializer<kIsRequest>& serializer, bool header_only,
                beast::error_code& error) {
  IoSocket& socket = output.socket();
  error = {};
  // Non-blocking (once per socket), so that this write never holds the IO thread.
  if (!socket.non_blocking()) socket.non_blocking(true, error);
  if (error) {
    error = asio::error::would_block;
    return 0;
  }
  const size_t written = header_only ? http::write_header(socket, serializer, error)
                                     : http::write(socket, serializer, error);
  if (error == asio::error::try_again) error = asio::error::would_block;
  return written;
}

// Appends `header` as it goes on the wire (start line, fields, empty line) to `out`: the same
// bytes Beast's serializer writes, in one contiguous buffer. The serializer hands the socket one
// buffer per field and walks them with a costly buffer-sequence iterator.
// "HTTP/1.1" for Beast's version 11.
void AppendHttpVersion(unsigned version, std::string& out) {
  out += "HTTP/";
  out += static_cast<char>('0' + version / 10);
  out += '.';
  out += static_cast<char>('0' + version % 10);
}
void AppendHead(const http::request_header<HeaderFields>& header, std::string& out) {
  const auto method = header.method_string();
  const auto target = header.target();
  out.append(method.data(), method.size());
  out += ' ';
  out.append(target.data(), target.size());
  out += ' ';
  AppendHttpVersion(header.version(), out);
  out += "\r\n";
}
void AppendHead(const http::response_header<HeaderFields>& header, std::string& out) {
  const unsigned code = header.result_int();
  const auto reason = header.reason();
  AppendHttpVersion(header.version(), out);
  out += ' ';
  out += static_cast<char>('0' + code / 100);
  out += static_cast<char>('0' + (code / 10) % 10);
  out += static_cast<char>('0' + code % 10);
  out += ' ';
  out.append(reason.data(), reason.size());
  out += "\r\n";
}
template <bool kIsRequest>
void FormatHead(const http::header<kIsRequest, HeaderFields>& header, std::string& out) {
  out.clear();
  AppendHead(header, out);
  for (const auto& field : header) {
    const auto name = field.name_string();
    const auto value = field.value();
    out.append(name.data(), name.size());
    out += ": ";
    out.append(value.data(), value.size());
    out += "\r\n";
  }
  out += "\r\n";
}

// Writes the header of the message whose header `parser` read from `input` to `output` through
// `serializer`, then streams its body in pieces of `chunk` (the connection's relay buffer, at most
// kRelayPieceBytes): memory stays bounded whatever the body size. When body bytes are already
// buffered the header and the first piece go out in one write. When the output is chunked the
// chunks are written here, and the input's trailer fields (if it was chunked too) follow the last
// chunk; otherwise the body goes out as it came, after the header formatted into `head` (the
// connection's buffer for it).
template <bool kIsRequest>
IoTask<RelayResult> RelayMessage(TimedSocket& input, beast::flat_buffer& input_buffer,
                                 Parser<kIsRequest>& parser,
                                 std::chrono::microseconds input_timeout, TimedSocket& output,
                                 Serializer<kIsRequest>& serializer,
                                 std::chrono::microseconds output_timeout, std::span<char> chunk,
                                 std::string& head) {
  RelayResult result;
  auto& message = parser.get();
  auto& body = message.body();
  const bool chunked_output = message.chunked();
  // Fields present now are headers; fields the parser adds while reading the body are trailers.
  absl::flat_hash_set<const void*> header_fields;
  if (chunked_output && parser.chunked()) {
    for (const auto& field : message) header_fields.insert(&field);
  }
  // Reading and writing each come in halves, so that what completes at once costs no coroutine
  // frame (a malloc and a free each, as Asio keeps only one spare frame per thread): the first
  // half works on what is buffered, or on what the socket takes, and says whether the rest must
  // wait; only then is the second half, a coroutine, called.
  //
  // Reading a piece of the body into `chunk`: start_piece parses what is buffered and returns
  // true when more must be read (read_more); finish_piece records the outcome and returns the
  // piece's size.
  beast::error_code read_error;
  const auto start_piece = [&]() -> bool {
    body.data = chunk.data();
    body.size = chunk.size();
    input.expires_after(input_timeout);
    result.bytes_read += ParseBuffered(input_buffer, parser, false, read_error);
    return read_error == http::error::need_more;
  };
  const auto read_more = [&]() -> IoTask<void> {
    result.bytes_read += co_await http::async_read(input, input_buffer, parser,
                                                   asio::redirect_error(kUseIoTask, read_error));
  };
  const auto finish_piece = [&]() -> size_t {
    if (read_error == http::error::need_buffer) read_error = {};
    result.read_error = read_error;
    if (parser.is_done()) result.input_done = Clock::now();
    return chunk.size() - body.size;
  };
  // Writing `buffers` whole: write_at_once writes what the socket takes now (see WriteNow),
  // returns how much, and sets `pending` when the rest must go asynchronously, through
  // write_rest (which must be given the same buffers). Either sets result.write_error.
  const auto write_at_once = [&](const auto& buffers, bool& pending) -> size_t {
    output.expires_after(output_timeout);
    beast::error_code error;
    IoSocket& socket = output.socket();
    size_t written = 0;
    if (!socket.non_blocking()) socket.non_blocking(true, error);
    if (!error) written = asio::write(socket, buffers, error);
    result.bytes_written += written;
    pending = error == asio::error::would_block || error == asio::error::try_again;
    result.write_error = pending ? beast::error_code() : error;
    return written;
  };
  const auto write_rest = [&](const auto& buffers, size_t written) -> IoTask<void> {
    beast::buffers_suffix<std::decay_t<decltype(buffers)>> rest(buffers);
    rest.consume(written);
    beast::error_code error;
    result.bytes_written +=
        co_await asio::async_write(output, rest, asio::redirect_error(kUseIoTask, error));
    result.write_error = error;
  };
  bool pending = false;  // set by write_at_once

  if (chunked_output) {
    // Chunks are rare on the request path: the plain coroutine forms do here.
    const auto write = [&](const auto& buffers) -> IoTask<bool> {
      const size_t written = write_at_once(buffers, pending);
      if (pending) co_await write_rest(buffers, written);
      co_return !result.write_error;
    };
    output.expires_after(output_timeout);
    beast::error_code error;
    result.bytes_written += WriteNow(output, serializer, true, error);
    if (error == asio::error::would_block) {
      result.bytes_written += co_await http::async_write_header(
          output, serializer, asio::redirect_error(kUseIoTask, error));
    }
    result.write_error = error;
    result.header_written = Clock::now();
    if (error) co_return result;
    while (!parser.is_done()) {
      if (start_piece()) co_await read_more();
      const size_t size = finish_piece();
      // What arrived before an input error still goes out.
      if (size > 0 && !co_await write(http::make_chunk(asio::buffer(chunk.data(), size)))) {
        co_return result;
      }
      if (result.read_error) co_return result;
    }
    http::fields trailers;
    if (parser.chunked()) {
      for (const auto& field : message) {
        if (!header_fields.contains(&field)) trailers.insert(field.name_string(), field.value());
      }
    }
    co_await write(http::make_chunk_last(trailers));
    co_return result;
  }
  // Not chunked: the body goes out as it came, after the header, formatted here into `head`.
  FormatHead(message.base(), head);
  const asio::const_buffer head_bytes = asio::buffer(head);
  bool header_written = false;
  for (;;) {
    size_t size = 0;
    if (!parser.is_done()) {
      // A body that is not here yet must not hold the header back.
      if (!header_written && input_buffer.size() == 0) {
        const size_t written = write_at_once(head_bytes, pending);
        if (pending) co_await write_rest(head_bytes, written);
        result.header_written = Clock::now();
        if (result.write_error) co_return result;
        header_written = true;
      }
      if (start_piece()) co_await read_more();
      size = finish_piece();
      if (result.read_error && size == 0) {
        // The input broke off: the header still goes out if it has not, so the receiver sees
        // the message start and then the close.
        if (!header_written) {
          const size_t written = write_at_once(head_bytes, pending);
          if (pending) co_await write_rest(head_bytes, written);
          result.header_written = Clock::now();
        }
        co_return result;
      }
    }
    if (!header_written) {
      // The header and the first piece of the body in one write.
      const std::array<asio::const_buffer, 2> buffers = {head_bytes,
                                                         asio::buffer(chunk.data(), size)};
      const size_t written = write_at_once(buffers, pending);
      if (pending) co_await write_rest(buffers, written);
      header_written = true;
      result.header_written = Clock::now();
      if (result.write_error) co_return result;
    } else if (size > 0) {
      const asio::const_buffer piece = asio::buffer(chunk.data(), size);
      const size_t written = write_at_once(piece, pending);
      if (pending) co_await write_rest(piece, written);
      if (result.write_error) co_return result;
    }
    if (result.read_error) co_return result;  // the bytes read before the error went out
    if (parser.is_done()) co_return result;
  }
}

// The request record of one downstream connection, reused for each of its requests so that its
// strings keep their buffers. Protobuf's Clear() keeps a cleared string, but deletes a message
// field; Reset() takes those out first and keeps them aside, and the accessors below put one
// back, cleared, when a request sets it. So a request allocates none of them, and a field a
// request does not set stays absent, as in a fresh record.
class ConnectionRecord {
 public:
  meshtel::v1::RequestRecord record;

  void Reset() {
    Keep(record.release_phases(), phases_);
    Keep(record.release_source(), source_);
    Keep(record.release_destination(), destination_);
    Keep(record.release_destination_service(), destination_service_);
    record.Clear();
    // Every reported record has phase timings: back at once.
    record.set_allocated_phases(Reuse(phases_));
  }
  meshtel::v1::WorkloadIdentity& source() {
    if (!record.has_source()) record.set_allocated_source(Reuse(source_));
    return *record.mutable_source();
  }
  meshtel::v1::WorkloadIdentity& destination() {
    if (!record.has_destination()) record.set_allocated_destination(Reuse(destination_));
    return *record.mutable_destination();
  }
  meshtel::v1::ServiceIdentity& destination_service() {
    if (!record.has_destination_service()) {
      record.set_allocated_destination_service(Reuse(destination_service_));
    }
    return *record.mutable_destination_service();
  }

 private:
  template <typename Message>
  static void Keep(Message* released, std::unique_ptr<Message>& spare) {
    if (released != nullptr) spare.reset(released);
  }
  // The spare, cleared (a new message when there is none yet).
  template <typename Message>
  static Message* Reuse(std::unique_ptr<Message>& spare) {
    if (!spare) return new Message();
    spare->Clear();
    return spare.release();
  }

  std::unique_ptr<meshtel::v1::PhaseTimings> phases_;
  std::unique_ptr<meshtel::v1::WorkloadIdentity> source_;
  std::unique_ptr<meshtel::v1::WorkloadIdentity> destination_;
  std::unique_ptr<meshtel::v1::ServiceIdentity> destination_service_;
};

// Writes "ip:port" ("[ip]:port" for IPv6) of `endpoint` into `out`, reusing its buffer.
void AssignEndpointText(std::string& out, const tcp::endpoint& endpoint) {
  const auto address = endpoint.address();
  if (!address.is_v4()) {
    out.clear();
    fmt::format_to(std::back_inserter(out), "[{}]:{}", address.to_string(), endpoint.port());
    return;
  }
  // By hand: a format string would be parsed again on every request.
  char text[sizeof("255.255.255.255:65535")];
  char* end = text;
  const auto bytes = address.to_v4().to_bytes();
  for (size_t i = 0; i < bytes.size(); ++i) {
    end = std::to_chars(end, text + sizeof(text), bytes[i]).ptr;
    *end++ = i + 1 < bytes.size() ? '.' : ':';
  }
  end = std::to_chars(end, text + sizeof(text), endpoint.port()).ptr;
  out.assign(text, static_cast<size_t>(end - text));
}

// The trace headers of `fields` (the first of each name), found in one pass over the fields: a
// lookup by name walks the field tree with case-insensitive compares, ten times per request.
TraceHeaders ReadTraceHeaders(const HeaderFields& fields) {
  TraceHeaders headers;
  struct Slot {
    std::string_view name;
    std::string_view TraceHeaders::*value;
  };
  static constexpr Slot kSlots[] = {
      {"traceparent", &TraceHeaders::traceparent},
      {"tracestate", &TraceHeaders::tracestate},
      {"b3", &TraceHeaders::b3},
      {"x-b3-traceid", &TraceHeaders::x_b3_traceid},
      {"x-b3-spanid", &TraceHeaders::x_b3_spanid},
      {"x-b3-parentspanid", &TraceHeaders::x_b3_parentspanid},
      {"x-b3-sampled", &TraceHeaders::x_b3_sampled},
      {"x-b3-flags", &TraceHeaders::x_b3_flags},
      {"x-client-trace-id", &TraceHeaders::x_client_trace_id},
      {"x-envoy-force-trace", &TraceHeaders::x_envoy_force_trace},
  };
  bool found[std::size(kSlots)] = {};
  for (const auto& field : fields) {
    if (field.name() != http::field::unknown) continue;  // none of them is a known field
    const beast::string_view name = field.name_string();
    for (size_t i = 0; i < std::size(kSlots); ++i) {
      const std::string_view wanted = kSlots[i].name;
      if (name.size() != wanted.size() ||
          !beast::iequals(name, beast::string_view(wanted.data(), wanted.size()))) {
        continue;
      }
      if (!found[i]) headers.*kSlots[i].value = ToStd(field.value());  // the first one counts
      found[i] = true;
      break;
    }
  }
  return headers;
}

// True when the client has closed its connection (or reset it): a read would see the end. Bytes
// of a pipelined next request mean it is still there.
bool DownstreamClosed(TimedSocket& downstream) {
  char byte;
  const ssize_t got =
      ::recv(downstream.socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return got == 0 || (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

// Bytes moved by a tunnel, each way.
struct TunnelResult {
  size_t downstream_to_upstream = 0;
  size_t upstream_to_downstream = 0;
};

// Copies bytes from `from` to `to` until `from` ends, then half-closes `to`. A failure other than
// the end of input shuts both sockets down, which ends the other direction too.
IoTask<void> Pump(TimedSocket& from, TimedSocket& to, size_t& bytes,
                  Clock::time_point& last_activity) {
  std::array<char, 16 * 1024> data;
  beast::error_code error;
  for (;;) {
    const size_t read = co_await from.socket().async_read_some(
        asio::buffer(data), asio::redirect_error(kUseIoTask, error));
    if (read > 0) {
      last_activity = Clock::now();
      beast::error_code write_error;
      co_await asio::async_write(to.socket(), asio::buffer(data.data(), read),
                                 asio::redirect_error(kUseIoTask, write_error));
      bytes += read;
      if (write_error) {
        error = write_error;
        break;
      }
    }
    if (error) break;
  }
  beast::error_code ignored;
  if (error == asio::error::eof) {
    to.socket().shutdown(tcp::socket::shutdown_send, ignored);
  } else {
    from.socket().shutdown(tcp::socket::shutdown_both, ignored);
    to.socket().shutdown(tcp::socket::shutdown_both, ignored);
  }
}

// Relays raw bytes both ways after a 101 Switching Protocols until both directions end, or until
// neither carried a byte for `idle_timeout`.
IoTask<TunnelResult> Tunnel(TimedSocket& downstream, TimedSocket& upstream,
                            std::chrono::microseconds idle_timeout) {
  TunnelResult result;
  Clock::time_point last_activity = Clock::now();
  int running = 2;
  IoTimer finished(co_await asio::this_coro::executor);
  const auto run = [&](TimedSocket& from, TimedSocket& to, size_t& bytes) -> IoTask<void> {
    co_await Pump(from, to, bytes, last_activity);
    --running;
    finished.cancel();
  };
  // Bidirectional streams carry no timeouts of their own: the idle check below ends them.
  downstream.expires_never();
  upstream.expires_never();
  const auto executor = co_await asio::this_coro::executor;
  asio::co_spawn(executor, run(downstream, upstream, result.downstream_to_upstream),
                 common::ConnectionEnd("proxy tunnel"));
  asio::co_spawn(executor, run(upstream, downstream, result.upstream_to_downstream),
                 common::ConnectionEnd("proxy tunnel"));
  while (running > 0) {
    finished.expires_at(last_activity + idle_timeout);
    beast::error_code error;
    co_await finished.async_wait(asio::redirect_error(kUseIoTask, error));
    if (!error && running > 0 && Clock::now() - last_activity >= idle_timeout) {
      beast::error_code ignored;
      downstream.socket().shutdown(tcp::socket::shutdown_both, ignored);
      upstream.socket().shutdown(tcp::socket::shutdown_both, ignored);
      downstream.socket().cancel(ignored);
      upstream.socket().cancel(ignored);
    }
  }
  co_return result;
}

}  // namespace

struct ProxyServer::Impl {
  struct Worker {
    // First: destroyed last, after the coroutines (holding leases) die with the io_context.
    std::optional<PolicyReader> policy;
    asio::io_context io_context{1};
    std::vector<IoAcceptor> acceptors;
    std::optional<UpstreamPool> pool;
    std::thread thread;
  };

  struct Listener {
    Direction direction;
    tcp::endpoint endpoint;  // with the bound port once started
  };

  ProxyConfig config;
  RecordSink* sink = nullptr;
  std::unique_ptr<PolicyHolder> own_policy;  // when Start() was given none
  const PolicyHolder* policy = nullptr;
  std::unique_ptr<RouteTable> routes;
  Route inbound_route;
  meshtel::v1::WorkloadIdentity own_identity;
  std::string own_peer_metadata;
  std::string own_peer_id;
  std::vector<Listener> listeners;
  std::unique_ptr<UpstreamLimits> upstream_limits;
  std::vector<std::unique_ptr<Worker>> workers;
  std::vector<Propagation> propagation;
  ProxyStats stats;
  std::atomic<bool> draining{false};
  bool stopped = false;

  // One downstream connection, from accept to close.
  IoTask<void> Serve(IoSocket socket, Direction direction, Worker& worker);

  // How one forwarded request left the downstream connection.
  struct ForwardOutcome {
    bool keep_alive = false;  // the connection may carry the next request
    bool linger = false;      // we close with request bytes possibly unread: drain before closing
  };

  // Forwards one request whose headers `parser` has read, streaming its body upstream and the
  // response back; fills `connection_record`. `original_destination`: where a redirected connection
  // was going (transparent mode).
  IoTask<ForwardOutcome> Forward(TimedSocket& downstream, beast::flat_buffer& downstream_buffer,
                                 RequestParser& parser, Direction direction, Worker& worker,
                                 const std::optional<tcp::endpoint>& original_destination,
                                 std::span<char> relay, std::string& head, Clock::time_point start,
                                 const ActivePolicy& policy, const ListenerPolicy& side,
                                 ConnectionRecord& connection_record);

  IoTask<bool> SendLocalReply(TimedSocket& downstream, const LocalReply& reply, unsigned version,
                              bool keep_alive, Clock::time_point start,
                              meshtel::v1::RequestRecord& record);

  // Counts the finished request and hands its record to the sink (unless the listener's policy
  // turned reporting off).
  // Counts the finished request and hands its record (text made valid UTF-8) to the reporter.
  void Report(Direction direction, const ListenerPolicy& side, meshtel::v1::RequestRecord& record);

  IoTask<void> Accept(IoAcceptor& acceptor, Direction direction, Worker& worker);
};

void ProxyServer::Impl::Report(Direction direction, const ListenerPolicy& side,
                               meshtel::v1::RequestRecord& record) {
  (direction == Direction::kInbound ? stats.inbound : stats.outbound).Count(record);
  if (collector::SanitizeRecordText(record) > 0) {
    stats.records_with_invalid_utf8.fetch_add(1, std::memory_order_relaxed);
  }
  if (side.report) sink->Submit(record);
}

IoTask<void> ProxyServer::Impl::Accept(IoAcceptor& acceptor, Direction direction, Worker& worker) {
  for (;;) {
    beast::error_code error;
    IoSocket socket = co_await acceptor.async_accept(asio::redirect_error(kUseIoTask, error));
    if (error == asio::error::operation_aborted || !acceptor.is_open()) co_return;
    if (error) {
      spdlog::warn("accept failed: {}", error.message());
      continue;
    }
    socket.set_option(tcp::no_delay(true), error);
    asio::co_spawn(acceptor.get_executor(), Serve(std::move(socket), direction, worker),
                   common::ConnectionEnd("proxy"));
  }
}

IoTask<void> ProxyServer::Impl::Serve(IoSocket socket, Direction direction, Worker& worker) {
  beast::error_code error;
  const std::string remote_address = EndpointText(socket.remote_endpoint(error));
  const tcp::endpoint local = socket.local_endpoint(error);
  const bool local_known = !error;
  const std::string local_address = EndpointText(local);
  const bool transparent =
      direction == Direction::kInbound ? config.inbound.transparent : config.outbound.transparent;
  const std::optional<tcp::endpoint> original_destination =
      transparent && local_known ? OriginalDestination(socket.native_handle(), local)
                                 : std::nullopt;
  TimedSocket downstream(std::move(socket));
  beast::flat_buffer buffer(common::kMaxHttpReadBufferBytes);
  buffer.reserve(kRelayPieceBytes);  // reads fill it in one system call where they can
  // Body pieces pass through here, in this connection's own buffer (not in coroutine frames).
  const std::unique_ptr<char[]> relay_buffer(new char[kRelayPieceBytes]);
  std::string head_buffer;  // message headers as they go out, formatted here
  ConnectionRecord connection_record;
  meshtel::v1::RequestRecord& record = connection_record.record;
  // The fields of each request and of its response; free again for the next request.
  HeaderArena header_arena;
  bool linger = false;  // we close after an error reply: let the client read it first
  const auto idle_timeout = absl::ToChronoMicroseconds(config.idle_timeout);

  for (;;) {
    // Wait for the first byte of the next request (keep-alive idle time is not request time).
    if (buffer.size() == 0) {
      downstream.expires_after(idle_timeout);
      // After a response the client has usually not sent its next request yet: this read fails
      // with EAGAIN first and then waits in epoll (timed_socket.h says why not wait first).
      const size_t read = co_await downstream.async_read_some(
          buffer.prepare(16 * 1024), asio::redirect_error(kUseIoTask, error));
      if (error || read == 0) break;
      buffer.commit(read);
    }
    const Clock::time_point start = Clock::now();
    const auto start_wall = std::chrono::system_clock::now();
    stats.active_requests.fetch_add(1);

    // The policy in force for this request (one atomic load while it does not change).
    const PolicyReader::Lease policy = worker.policy->Acquire();
    const ListenerPolicy& side =
        direction == Direction::kOutbound ? policy->outbound : policy->inbound;
    connection_record.Reset();  // one record per connection, reused
    record.set_start_time_unix_nano(static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(start_wall.time_since_epoch())
            .count()));
    record.set_reporter(direction == Direction::kOutbound ? meshtel::v1::REPORTER_SOURCE
                                                          : meshtel::v1::REPORTER_DESTINATION);
    record.set_downstream_remote_address(remote_address);
    record.set_downstream_local_address(local_address);
    record.set_scheme("http");
    record.set_route_name("default");

    // The last request's parsers are gone: their fields' memory is free for this one.
    header_arena.Reset();
    RequestParser parser(std::piecewise_construct, std::make_tuple(),
                         std::make_tuple(ArenaAllocator<char>(header_arena)));
    parser.header_limit(kMaxHeaderBytes);
    if (config.max_body_bytes > 0) {
      parser.body_limit(config.max_body_bytes);
    } else {
      parser.body_limit(kUnlimitedBody);
    }
    downstream.expires_after(idle_timeout);
    size_t request_bytes = ParseBuffered(buffer, parser, true, error);
    if (error == http::error::need_more) {
      error = {};
      request_bytes += co_await http::async_read_header(downstream, buffer, parser,
                                                        asio::redirect_error(kUseIoTask, error));
    }
    if (error == http::error::end_of_stream || error == asio::error::eof ||
        error == beast::error::timeout || error == asio::error::connection_reset) {
      stats.active_requests.fetch_sub(1);
      break;  // the client went away between requests or mid-headers: nothing to answer
    }
    if (error) {
      // Content-Length over max_body_bytes is refused while the headers are read.
      const LocalReply& reply = error == http::error::header_limit ? kHeadersTooLarge
                                : error == http::error::body_limit ? kBodyTooLarge
                                                                   : kBadRequest;
      record.set_request_bytes(request_bytes);
      co_await SendLocalReply(downstream, reply, 11, false, start, record);
      Report(direction, side, record);
      stats.active_requests.fetch_sub(1);
      linger = true;
      break;
    }
    record.mutable_phases()->set_downstream_headers_done_ns(OffsetNs(start, Clock::now()));
    auto& request = parser.get();
    if (request[http::field::expect] == "100-continue") {
      // Answered here, as Envoy does by default: the upstream sees the request without Expect.
      http::response<http::empty_body> continue_response{http::status::continue_,
                                                         request.version()};
      co_await http::async_write(downstream, continue_response,
                                 asio::redirect_error(kUseIoTask, error));
      request.erase(http::field::expect);
    }
    record.set_request_bytes(request_bytes);
    if (error) {  // the client went away while we sent 100 Continue
      record.set_response_flags(
          FlagBit(meshtel::v1::RESPONSE_FLAG_DOWNSTREAM_CONNECTION_TERMINATION));
      record.set_duration_ns(OffsetNs(start, Clock::now()));
      Report(direction, side, record);
      stats.active_requests.fetch_sub(1);
      break;
    }
    const ForwardOutcome outcome =
        co_await Forward(downstream, buffer, parser, direction, worker, original_destination,
                         std::span<char>(relay_buffer.get(), kRelayPieceBytes), head_buffer, start,
                         *policy, side, connection_record);
    Report(direction, side, record);
    stats.active_requests.fetch_sub(1);
    linger = outcome.linger;
    if (!outcome.keep_alive || draining.load()) break;
  }
  if (linger) {
    // Stop sending, then read and discard what the client still sends (bounded in time and
    // bytes), so closing does not reset the connection before the client read our reply.
    downstream.socket().shutdown(tcp::socket::shutdown_send, error);
    downstream.expires_after(std::chrono::seconds(1));
    size_t drained = 0;
    error = {};
    while (!error && drained < (1u << 20)) {
      buffer.clear();
      drained += co_await downstream.async_read_some(buffer.prepare(16 * 1024),
                                                     asio::redirect_error(kUseIoTask, error));
    }
  }
  downstream.socket().shutdown(tcp::socket::shutdown_both, error);
}

IoTask<bool> ProxyServer::Impl::SendLocalReply(TimedSocket& downstream, const LocalReply& reply,
                                               unsigned version, bool keep_alive,
                                               Clock::time_point start,
                                               meshtel::v1::RequestRecord& record) {
  http::response<http::string_body> response{reply.status, version};
  response.set(http::field::server, "meshtel");
  response.set(http::field::content_type, "text/plain");
  response.body() = reply.body;
  response.keep_alive(keep_alive);
  response.prepare_payload();
  record.set_response_code(static_cast<uint32_t>(reply.status));
  record.set_response_code_details(reply.details);
  if (reply.has_flag) record.set_response_flags(record.response_flags() | FlagBit(reply.flag));
  beast::error_code error;
  const size_t written =
      co_await http::async_write(downstream, response, asio::redirect_error(kUseIoTask, error));
  record.set_response_bytes(written);
  const uint64_t now = OffsetNs(start, Clock::now());
  record.mutable_phases()->set_downstream_last_byte_ns(now);
  record.set_duration_ns(now);
  co_return !error && keep_alive;
}

IoTask<ProxyServer::Impl::ForwardOutcome> ProxyServer::Impl::Forward(
    TimedSocket& downstream, beast::flat_buffer& downstream_buffer, RequestParser& parser,
    Direction direction, Worker& worker, const std::optional<tcp::endpoint>& original_destination,
    std::span<char> relay, std::string& head, Clock::time_point start, const ActivePolicy& policy,
    const ListenerPolicy& side, ConnectionRecord& connection_record) {
  meshtel::v1::RequestRecord& record = connection_record.record;
  auto& request = parser.get();
  const bool downstream_keep_alive = request.keep_alive();
  const unsigned version = request.version();
  std::string_view target = ToStd(request.target());
  std::string authority(ToStd(request[http::field::host]));

  // Absolute-form ("http://host:port/path") when the app uses the proxy as an HTTP proxy.
  if (direction == Direction::kOutbound && target.starts_with("http://")) {
    std::string_view rest = target.substr(7);
    const size_t slash = rest.find('/');
    authority = std::string(rest.substr(0, slash));
    const std::string path =
        slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
    request.target(path);
    request.set(http::field::host, authority);
    target = ToStd(request.target());
  }

  // Assigned into the reused record's strings (a set_x() from a temporary allocates).
  const auto assign = [](std::string* field, std::string_view value) {
    field->assign(value.data(), value.size());
  };
  assign(record.mutable_method(), ToStd(request.method_string()));
  record.set_authority(authority);
  assign(record.mutable_path(), target);
  record.set_protocol(version == 10 ? "HTTP/1.0" : "HTTP/1.1");
  assign(record.mutable_user_agent(), ToStd(request[http::field::user_agent]));
  assign(record.mutable_forwarded_for(), ToStd(request["x-forwarded-for"]));
  // Headers the configuration and the policy ask for, as the downstream sent them (before any
  // rewriting).
  for (const std::string& name : policy.capture_request_headers) {
    const auto found = request.find(name);
    if (found == request.end()) continue;
    meshtel::v1::CapturedHeader& header = *record.add_captured_headers();
    header.set_name(name);
    assign(header.mutable_value(), ToStd(found->value()));
  }
  // The policy's custom tags (literal, request header, environment read at install).
  for (const ListenerPolicy::Tag& tag : side.tags) {
    if (!tag.from_header) {
      meshtel::v1::SpanTag& added = *record.add_custom_tags();
      added.set_name(tag.name);
      added.set_value(tag.value);
      continue;
    }
    const auto found = request.find(tag.value);
    if (found == request.end() && tag.default_value.empty()) continue;
    meshtel::v1::SpanTag& added = *record.add_custom_tags();
    added.set_name(tag.name);
    if (found != request.end()) {
      assign(added.mutable_value(), ToStd(found->value()));
    } else {
      added.set_value(tag.default_value);
    }
  }
  const bool is_grpc = ToStd(request[http::field::content_type]).starts_with("application/grpc");
  record.set_request_protocol(is_grpc ? meshtel::v1::REQUEST_PROTOCOL_GRPC
                                      : meshtel::v1::REQUEST_PROTOCOL_HTTP);

  // Request id: keep the caller's, else make one.
  std::string& request_id = *record.mutable_request_id();
  assign(&request_id, ToStd(request[kRequestIdHeader]));
  if (request_id.empty()) {
    char id[kRequestIdSize];
    WriteRequestId(id);
    request_id.assign(id, kRequestIdSize);
    request.set(kRequestIdHeader, beast::string_view(id, kRequestIdSize));
  }

  // Trace context: read what the caller sent, decide sampling, open this hop's span.
  const TraceHeaders trace_headers = ReadTraceHeaders(request);
  const IncomingContext incoming = ExtractTraceContext(trace_headers);
  if (incoming.invalid) stats.invalid_trace_contexts.fetch_add(1, std::memory_order_relaxed);
  const SamplingDecision sampling =
      DecideSampling(incoming, trace_headers, request_id, side.sampling_percentage);
  const HopContext hop = NewHop(incoming, sampling.sampled);
  const auto assign_bytes = [](std::string* field, const auto& bytes) {
    field->assign(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  };
  assign_bytes(record.mutable_trace_id(), hop.trace_id);
  assign_bytes(record.mutable_span_id(), hop.span_id);
  if (incoming.has_ids) assign_bytes(record.mutable_parent_span_id(), hop.parent_span_id);
  record.set_sampled(hop.sampled);

  // Route. `peer_is_mesh`: the caller is a meshtel proxy, so it gets our identity back.
  bool peer_is_mesh = false;
  const Route* route = direction == Direction::kInbound ? &inbound_route : routes->Find(authority);
  if (direction == Direction::kOutbound) {
    connection_record.source() = own_identity;
  } else {
    connection_record.destination() = own_identity;
    const std::string_view peer = ToStd(request[kPeerMetadataHeader]);
    peer_is_mesh = !peer.empty() && DecodePeerMetadata(peer, connection_record.source());
  }
  request.erase(kPeerMetadataHeader);
  request.erase(kPeerMetadataIdHeader);
  // A local reply before the request body was read leaves that body unread: close after it.
  const auto reply_locally = [&](const LocalReply& reply) -> IoTask<ForwardOutcome> {
    const bool body_read = parser.is_done();
    const bool keep_alive = co_await SendLocalReply(
        downstream, reply, version, downstream_keep_alive && body_read, start, record);
    co_return ForwardOutcome{.keep_alive = keep_alive, .linger = !body_read};
  };
  tcp::endpoint endpoint;
  std::chrono::microseconds timeout;
  if (route != nullptr) {
    connection_record.destination_service() = route->service;
    record.set_upstream_cluster(route->cluster_name);
    endpoint = route->PickEndpoint();
    timeout = absl::ToChronoMicroseconds(route->timeout);
    // Transparent inbound: the app listens on the port the client dialled.
    if (direction == Direction::kInbound && original_destination) {
      endpoint.port(original_destination->port());
      record.set_upstream_cluster(fmt::format("inbound|{}||", endpoint.port()));
    }
  } else if (original_destination) {
    // Transparent outbound with no route for the Host: straight to where the app was going.
    connection_record.destination_service().set_host(
        authority.empty() ? EndpointText(*original_destination) : authority);
    connection_record.destination_service().set_name("PassthroughCluster");
    record.set_upstream_cluster("PassthroughCluster");
    record.set_route_name("allow_any");
    endpoint = *original_destination;
    timeout = absl::ToChronoMicroseconds(config.outbound.timeout);
  } else {
    connection_record.destination_service().set_host(authority);
    co_return co_await reply_locally(kNoRoute);
  }
  AssignEndpointText(*record.mutable_upstream_host(), endpoint);
  record.mutable_phases()->set_route_chosen_ns(OffsetNs(start, Clock::now()));

  const bool upgrade = AsksForUpgrade(request);
  const std::string upgrade_protocol =
      upgrade ? std::string(ToStd(request[http::field::upgrade])) : std::string();
  RemoveHopByHopHeaders(request);
  for (std::string_view name : PropagatedTraceHeaderNames()) {
    request.erase(beast::string_view(name.data(), name.size()));
  }
  InjectedTraceHeaders trace_headers_out;
  WriteTraceHeaders(hop, propagation, trace_headers_out);
  for (const auto& [name, value] : trace_headers_out) {
    request.set(beast::string_view(name.data(), name.size()),
                beast::string_view(value.data(), value.size()));
  }
  if (direction == Direction::kOutbound) {
    request.set(kPeerMetadataHeader, own_peer_metadata);
    request.set(kPeerMetadataIdHeader, own_peer_id);
  }
  if (upgrade) {
    request.set(http::field::connection, "upgrade");
    request.set(http::field::upgrade, upgrade_protocol);
  } else {
    request.keep_alive(true);
  }

  const auto idle_timeout = absl::ToChronoMicroseconds(config.idle_timeout);
  std::unique_ptr<UpstreamConnection> upstream;
  std::optional<ResponseParser> response_parser;
  beast::error_code error;
  for (size_t attempt = 1;; ++attempt) {
    // A kept-alive connection without a coroutine frame where there is one; else wait for one.
    UpstreamPool::Acquired acquired;
    if (auto idle = worker.pool->TryAcquireIdle(endpoint)) {
      acquired.outcome = UpstreamPool::Outcome::kReady;
      acquired.connection = std::move(idle);
    } else {
      acquired = co_await worker.pool->Acquire(endpoint);
    }
    if (acquired.outcome == UpstreamPool::Outcome::kOverflow) {
      co_return co_await reply_locally(kOverflow);
    }
    if (acquired.outcome == UpstreamPool::Outcome::kConnectFailed) {
      spdlog::debug("upstream {} connect failed: {}", EndpointText(endpoint),
                    acquired.error.message());
      co_return co_await reply_locally(kConnectFailure);
    }
    upstream = std::move(acquired.connection);
    const bool reused = upstream->reused;
    record.set_upstream_local_address(upstream->local_address);
    record.mutable_phases()->set_upstream_connected_ns(OffsetNs(start, Clock::now()));
    record.mutable_phases()->set_upstream_connection_reused(reused);

    // Stream the request: headers, then the body as it arrives from the client.
    Serializer<true> serializer(request);
    const RelayResult sent =
        co_await RelayMessage<true>(downstream, downstream_buffer, parser, idle_timeout,
                                    upstream->stream, serializer, timeout, relay, head);
    record.mutable_phases()->set_upstream_headers_sent_ns(OffsetNs(start, sent.header_written));
    record.set_request_bytes(record.request_bytes() + sent.bytes_read);
    if (sent.read_error == http::error::body_limit) {
      co_return co_await reply_locally(kBodyTooLarge);
    }
    if (sent.read_error == http::error::buffer_overflow) {
      // Trailers over the read buffer's bound: refused like request headers over their limit.
      co_return co_await reply_locally(kHeadersTooLarge);
    }
    if (sent.read_error) {
      // The client went away mid-body: nothing to answer (Envoy's DC).
      record.set_response_flags(
          record.response_flags() |
          FlagBit(meshtel::v1::RESPONSE_FLAG_DOWNSTREAM_CONNECTION_TERMINATION));
      record.set_duration_ns(OffsetNs(start, Clock::now()));
      co_return ForwardOutcome{};
    }
    error = sent.write_error;
    if (!error) {
      record.mutable_phases()->set_upstream_request_done_ns(OffsetNs(start, Clock::now()));
      response_parser.emplace(std::piecewise_construct, std::make_tuple(),
                              std::make_tuple(request.get_allocator()));
      response_parser->header_limit(kMaxHeaderBytes);
      response_parser->body_limit(kUnlimitedBody);
      if (request.method() == http::verb::head) response_parser->skip(true);
      // No wait for readability here either, although the response cannot be there yet: the
      // wait would re-arm the socket in epoll (EPOLL_CTL_MOD), and an upstream socket is
      // registered for EPOLLOUT since its connect, so that re-arm reports it writable at once: a
      // wake-up of the IO thread for nothing on every request.
      co_await http::async_read_header(upstream->stream, upstream->buffer, *response_parser,
                                       asio::redirect_error(kUseIoTask, error));
    }
    if (!error) break;
    upstream.reset();
    // A response head that does not parse (malformed, over 60 KiB) is the upstream's protocol
    // error; a close before it (end_of_stream, partial_message, reset) is a connection failure.
    const bool protocol_error =
        error.category() == http::make_error_code(http::error::bad_version).category() &&
        error != http::error::end_of_stream && error != http::error::partial_message;
    // A kept-alive connection the upstream had already closed: retry once on a fresh one, which
    // is safe only when no request body was consumed.
    if (reused && attempt == 1 && error != beast::error::timeout && !protocol_error &&
        sent.bytes_read == 0 && parser.is_done()) {
      continue;
    }
    spdlog::debug("upstream {} failed: {}", EndpointText(endpoint), error.message());
    co_return co_await reply_locally(error == beast::error::timeout ? kUpstreamTimeout
                                     : protocol_error               ? kUpstreamProtocolError
                                                                    : kUpstreamReset);
  }
  record.mutable_phases()->set_upstream_first_byte_ns(OffsetNs(start, Clock::now()));
  // Only a response that kept the client waiting (10 ms and more) is worth a look (a system call)
  // at whether the client is still there: under load most responses take over a millisecond.
  const bool waited = record.phases().upstream_first_byte_ns() >
                      record.phases().upstream_request_done_ns() + 10'000'000;
  if (waited && DownstreamClosed(downstream)) {
    // The client went away while the upstream worked: nobody to answer (Envoy's DC, code 0).
    // The upstream connection still carries the unread response, so it is not reused.
    record.set_response_flags(
        record.response_flags() |
        FlagBit(meshtel::v1::RESPONSE_FLAG_DOWNSTREAM_CONNECTION_TERMINATION));
    record.set_duration_ns(OffsetNs(start, Clock::now()));
    co_return ForwardOutcome{};
  }

  // Stream the response: headers, then the body as it arrives from the upstream.
  auto& response = response_parser->get();
  const bool upstream_keep_alive = response.keep_alive();
  const bool switching = upgrade && response.result() == http::status::switching_protocols;
  const std::string upgraded_to =
      switching ? std::string(ToStd(response[http::field::upgrade])) : std::string();
  if (direction == Direction::kOutbound) {
    const std::string_view peer = ToStd(response[kPeerMetadataHeader]);
    if (!peer.empty()) DecodePeerMetadata(peer, connection_record.destination());
  }
  response.erase(kPeerMetadataHeader);
  response.erase(kPeerMetadataIdHeader);
  const std::string_view grpc_status = ToStd(response["grpc-status"]);
  if (is_grpc && !grpc_status.empty()) {
    uint32_t code = 0;
    if (std::from_chars(grpc_status.data(), grpc_status.data() + grpc_status.size(), code).ec ==
        std::errc()) {
      record.set_grpc_status(code);
    }
  }
  RemoveHopByHopHeaders(response);
  if (direction == Direction::kInbound && peer_is_mesh) {
    response.set(kPeerMetadataHeader, own_peer_metadata);
    response.set(kPeerMetadataIdHeader, own_peer_id);
  }
  record.set_response_code(response.result_int());
  record.set_response_code_details("via_upstream");

  if (switching) {
    // 101: from here on both connections carry the upgraded protocol as raw bytes.
    response.set(http::field::connection, "upgrade");
    response.set(http::field::upgrade, upgraded_to);
    response.version(version);
    Serializer<false> serializer(response);
    downstream.expires_after(timeout);
    size_t written = co_await http::async_write_header(downstream, serializer,
                                                       asio::redirect_error(kUseIoTask, error));
    record.mutable_phases()->set_upstream_last_byte_ns(OffsetNs(start, Clock::now()));
    if (!error && upstream->buffer.size() > 0) {
      written += co_await asio::async_write(downstream.socket(), upstream->buffer.data(),
                                            asio::redirect_error(kUseIoTask, error));
      upstream->buffer.clear();
    }
    if (!error && downstream_buffer.size() > 0) {
      record.set_request_bytes(record.request_bytes() + downstream_buffer.size());
      co_await asio::async_write(upstream->stream.socket(), downstream_buffer.data(),
                                 asio::redirect_error(kUseIoTask, error));
      downstream_buffer.clear();
    }
    if (!error) {
      const TunnelResult tunnel = co_await Tunnel(downstream, upstream->stream, idle_timeout);
      record.set_request_bytes(record.request_bytes() + tunnel.downstream_to_upstream);
      written += tunnel.upstream_to_downstream;
    }
    record.set_response_bytes(written);
    const uint64_t now = OffsetNs(start, Clock::now());
    record.mutable_phases()->set_downstream_last_byte_ns(now);
    record.set_duration_ns(now);
    co_return ForwardOutcome{};
  }

  bool keep_alive = downstream_keep_alive && !draining.load();
  // No body follows a response to HEAD, a 1xx, 204 or 304, whatever its headers say.
  const unsigned status = response.result_int();
  const bool bodiless =
      request.method() == http::verb::head || status / 100 == 1 || status == 204 || status == 304;
  if (bodiless) {
    // Framing headers stay as the upstream sent them (they describe the GET's body).
  } else if (version == 10 && response.chunked()) {
    // An HTTP/1.0 client cannot read chunks: send the body as it comes and close after it.
    response.chunked(false);
    keep_alive = false;
  } else if (response_parser->need_eof() && !response_parser->is_done()) {
    // The upstream ends its body by closing: re-frame it as chunks for an HTTP/1.1 client,
    // close after it for an HTTP/1.0 one.
    if (version == 11) {
      response.chunked(true);
    } else {
      keep_alive = false;
    }
  }
  response.keep_alive(keep_alive);
  response.version(version);

  Serializer<false> serializer(response);
  size_t written = 0;
  RelayResult received;
  if (bodiless) {
    downstream.expires_after(timeout);
    written = co_await http::async_write_header(downstream, serializer,
                                                asio::redirect_error(kUseIoTask, error));
  } else {
    received = co_await RelayMessage<false>(upstream->stream, upstream->buffer, *response_parser,
                                            timeout, downstream, serializer, timeout, relay, head);
    written = received.bytes_written;
    error = received.write_error;
  }
  record.mutable_phases()->set_upstream_last_byte_ns(OffsetNs(start, received.input_done));
  record.set_response_bytes(written);
  const uint64_t now = OffsetNs(start, Clock::now());
  record.mutable_phases()->set_downstream_last_byte_ns(now);
  record.set_duration_ns(now);
  if (received.read_error) {
    // The upstream broke off mid-response: the client sees a truncated response and a close.
    record.set_response_flags(
        record.response_flags() |
        FlagBit(received.read_error == beast::error::timeout
                    ? meshtel::v1::RESPONSE_FLAG_UPSTREAM_REQUEST_TIMEOUT
                : received.read_error == http::error::buffer_overflow
                    ? meshtel::v1::RESPONSE_FLAG_UPSTREAM_PROTOCOL_ERROR
                    : meshtel::v1::RESPONSE_FLAG_UPSTREAM_CONNECTION_TERMINATION));
    co_return ForwardOutcome{};
  }
  if (upstream_keep_alive && response_parser->is_done() && !error) {
    worker.pool->Release(std::move(upstream));
  }
  if (error) {
    record.set_response_flags(
        record.response_flags() |
        FlagBit(meshtel::v1::RESPONSE_FLAG_DOWNSTREAM_CONNECTION_TERMINATION));
    co_return ForwardOutcome{};
  }
  co_return ForwardOutcome{.keep_alive = keep_alive};
}

ProxyServer::ProxyServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

absl::StatusOr<std::unique_ptr<ProxyServer>> ProxyServer::Start(const ProxyConfig& config,
                                                                RecordSink& sink,
                                                                const PolicyHolder* policy) {
  auto impl = std::make_unique<Impl>();
  impl->config = config;
  impl->sink = &sink;
  if (policy == nullptr) {
    impl->own_policy = std::make_unique<PolicyHolder>(DefaultPolicy(config));
    policy = impl->own_policy.get();
  }
  impl->policy = policy;
  absl::StatusOr<std::unique_ptr<RouteTable>> routes =
      RouteTable::Build(config.outbound.enabled ? config.outbound : OutboundConfig{});
  if (!routes.ok()) return routes.status();
  impl->routes = *std::move(routes);
  for (const std::string& form : config.tracing.propagation) {
    impl->propagation.push_back(form == "w3c"       ? Propagation::kW3c
                                : form == "b3multi" ? Propagation::kB3Multi
                                                    : Propagation::kB3Single);
  }
  impl->own_identity = IdentityFromConfig(config.workload);
  impl->own_peer_metadata = EncodePeerMetadata(impl->own_identity);
  impl->own_peer_id = fmt::format("{}.{}", config.workload.name, config.workload.namespace_name);

  if (config.inbound.enabled) {
    absl::StatusOr<tcp::endpoint> app = ResolveEndpoint(config.inbound.app);
    if (!app.ok()) {
      return absl::InvalidArgumentError(
          fmt::format("inbound.app: {}", std::string(app.status().message())));
    }
    impl->inbound_route.service = ServiceFromHost(config.workload.service_host);
    impl->inbound_route.endpoints.push_back(*app);
    impl->inbound_route.timeout = config.inbound.timeout;
    impl->inbound_route.cluster_name = fmt::format("inbound|{}||", app->port());
    impl->listeners.push_back({Direction::kInbound, {}});
  }
  if (config.outbound.enabled) impl->listeners.push_back({Direction::kOutbound, {}});

  const unsigned thread_count =
      config.io_threads > 0 ? config.io_threads : std::max(1u, std::thread::hardware_concurrency());
  std::vector<common::HostPort> addresses;
  for (const auto& listener : impl->listeners) {
    addresses.push_back(listener.direction == Direction::kInbound ? config.inbound.listen
                                                                  : config.outbound.listen);
  }
  impl->upstream_limits = std::make_unique<UpstreamLimits>(UpstreamPoolConfig{
      .max_connections_per_destination = config.upstream.max_connections_per_destination,
      .max_pending_requests = config.upstream.max_pending_requests,
      .queue_timeout = config.upstream.queue_timeout,
      .idle_timeout = config.upstream.idle_timeout,
      .connect_timeout = config.connect_timeout,
  });
  for (unsigned t = 0; t < thread_count; ++t) {
    auto worker = std::make_unique<Impl::Worker>();
    worker->policy.emplace(*impl->policy);
    worker->pool.emplace(worker->io_context, *impl->upstream_limits);
    for (size_t l = 0; l < impl->listeners.size(); ++l) {
      const char* key = impl->listeners[l].direction == Direction::kInbound ? "inbound.listen"
                                                                            : "outbound.listen";
      beast::error_code error;
      tcp::endpoint endpoint;
      if (t == 0) {
        const auto address = asio::ip::make_address(addresses[l].host, error);
        if (error) {
          return absl::InvalidArgumentError(
              fmt::format("{}: '{}' is not an IP address", key, addresses[l].host));
        }
        endpoint = tcp::endpoint(address, addresses[l].port);
      } else {
        endpoint = impl->listeners[l].endpoint;  // same port as thread 0's acceptor
      }
      IoAcceptor acceptor(worker->io_context);
      acceptor.open(endpoint.protocol(), error);
      if (!error) acceptor.set_option(asio::socket_base::reuse_address(true), error);
      if (!error) {
        const int one = 1;
        if (::setsockopt(acceptor.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) !=
            0) {
          error = beast::error_code(errno, boost::system::system_category());
        }
      }
      if (!error) acceptor.bind(endpoint, error);
      if (!error) acceptor.listen(asio::socket_base::max_listen_connections, error);
      if (error) {
        return absl::UnavailableError(fmt::format("{}: cannot listen on {}: {}", key,
                                                  EndpointText(endpoint), error.message()));
      }
      if (t == 0) impl->listeners[l].endpoint = acceptor.local_endpoint();
      worker->acceptors.push_back(std::move(acceptor));
    }
    impl->workers.push_back(std::move(worker));
  }
  Impl* raw = impl.get();
  for (auto& worker : impl->workers) {
    for (size_t l = 0; l < worker->acceptors.size(); ++l) {
      asio::co_spawn(worker->io_context,
                     raw->Accept(worker->acceptors[l], raw->listeners[l].direction, *worker),
                     asio::detached);
    }
    Impl::Worker* worker_raw = worker.get();
    worker->thread = std::thread([worker_raw] { worker_raw->io_context.run(); });
  }
  for (const auto& listener : impl->listeners) {
    spdlog::info("{} listener on {} ({} IO threads)",
                 listener.direction == Direction::kInbound ? "inbound" : "outbound",
                 EndpointText(listener.endpoint), thread_count);
  }
  return std::unique_ptr<ProxyServer>(new ProxyServer(std::move(impl)));
}

uint16_t ProxyServer::inbound_port() const {
  for (const auto& listener : impl_->listeners) {
    if (listener.direction == Direction::kInbound) return listener.endpoint.port();
  }
  return 0;
}

const ProxyStats& ProxyServer::stats() const { return impl_->stats; }

int64_t ProxyServer::upstream_connections_open() const {
  return impl_->upstream_limits->open_connections();
}

int64_t ProxyServer::upstream_connections_idle() const {
  int64_t idle = 0;
  for (const auto& worker : impl_->workers) idle += worker->pool->idle_connections();
  return idle;
}

bool ProxyServer::draining() const { return impl_->draining.load(); }

uint16_t ProxyServer::outbound_port() const {
  for (const auto& listener : impl_->listeners) {
    if (listener.direction == Direction::kOutbound) return listener.endpoint.port();
  }
  return 0;
}

void ProxyServer::Shutdown() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  impl_->draining.store(true);
  // Close every acceptor on its own thread, and wait for it: after this no connection is taken.
  std::vector<std::future<void>> closed;
  for (auto& worker : impl_->workers) {
    auto done = std::make_shared<std::promise<void>>();
    closed.push_back(done->get_future());
    asio::post(worker->io_context, [worker = worker.get(), done] {
      for (auto& acceptor : worker->acceptors) {
        beast::error_code ignored;
        acceptor.close(ignored);
      }
      done->set_value();
    });
  }
  for (auto& future : closed) future.wait();
  const auto deadline = Clock::now() + absl::ToChronoMicroseconds(impl_->config.drain_timeout);
  while (impl_->stats.active_requests.load() > 0 && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (impl_->stats.active_requests.load() > 0) {
    spdlog::warn("drain timeout: closing {} requests still in flight",
                 impl_->stats.active_requests.load());
  }
  for (auto& worker : impl_->workers) worker->io_context.stop();
  for (auto& worker : impl_->workers) {
    if (worker->thread.joinable()) worker->thread.join();
  }
}

ProxyServer::~ProxyServer() { Shutdown(); }

}  // namespace meshtel::proxy
