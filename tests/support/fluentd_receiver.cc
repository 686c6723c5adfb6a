#include "tests/support/fluentd_receiver.h"

#include <openssl/rand.h>
#include <openssl/sha.h>

#include <array>
#include <iterator>
#include <optional>
#include <utility>

#include "boost/asio/co_spawn.hpp"
#include "boost/asio/detached.hpp"
#include "boost/asio/ip/address.hpp"
#include "boost/asio/redirect_error.hpp"
#include "boost/asio/use_awaitable.hpp"
#include "boost/asio/write.hpp"
#include "collector/common/gzip.h"

namespace meshtel::testing {
namespace {

namespace asio = boost::asio;
using exporters::fluentd::DecodeMsgpack;
using exporters::fluentd::MsgpackObjectSize;
using exporters::fluentd::MsgpackValue;
using exporters::fluentd::MsgpackWriter;
using tcp = asio::ip::tcp;

std::string Hex(const unsigned char* data, size_t size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < size; ++i) {
    out.push_back(kDigits[data[i] >> 4]);
    out.push_back(kDigits[data[i] & 0xf]);
  }
  return out;
}

std::string Sha512Hex(const std::string& data) {
  std::array<unsigned char, SHA512_DIGEST_LENGTH> digest{};
  SHA512(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest.data());
  return Hex(digest.data(), digest.size());
}

std::string RandomBytes(size_t size) {
  std::string out(size, '\0');
  RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(size));
  return out;
}

bool IsBytes(const MsgpackValue& v) {
  return v.type == MsgpackValue::Type::kStr || v.type == MsgpackValue::Type::kBin;
}

// Reads one object; nullopt when the connection ended or sent something that is not msgpack
// (`error` says which, empty for a plain close).
asio::awaitable<std::optional<MsgpackValue>> ReadObject(tcp::socket& socket, std::string& buffer,
                                                        std::string& error) {
  for (;;) {
    if (!buffer.empty()) {
      size_t consumed = 0;
      absl::StatusOr<MsgpackValue> value = DecodeMsgpack(buffer, consumed);
      if (value.ok()) {
        buffer.erase(0, consumed);
        co_return *std::move(value);
      }
      if (value.status().code() != absl::StatusCode::kOutOfRange) {
        error = std::string(value.status().message());
        co_return std::nullopt;
      }
    }
    std::array<char, 65536> chunk;
    boost::system::error_code ec;
    const size_t n = co_await socket.async_read_some(asio::buffer(chunk),
                                                     asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return std::nullopt;
    buffer.append(chunk.data(), n);
  }
}

// Reads an array (map) header at data[pos]: its element (pair) count; false when it is not one.
bool ContainerHeader(std::string_view data, size_t& pos, bool map, uint32_t& count) {
  if (pos >= data.size()) return false;
  const auto tag = static_cast<uint8_t>(data[pos]);
  const uint8_t fix = map ? 0x80 : 0x90;
  const uint8_t wide = map ? 0xde : 0xdc;
  if ((tag & 0xf0) == fix) {
    count = tag & 0x0f;
    pos += 1;
    return true;
  }
  const size_t bytes = tag == wide ? 2 : tag == wide + 1 ? 4 : 0;
  if (bytes == 0 || data.size() - pos < 1 + bytes) return false;
  count = 0;
  for (size_t i = 1; i <= bytes; ++i) count = (count << 8) | static_cast<uint8_t>(data[pos + i]);
  pos += 1 + bytes;
  return true;
}

// Checks one packed entry [time, record] at the front of `data` without building it: an
// EventTime or integer time, a map with str keys, every value well-formed. Returns its length
// and the time, or an error.
absl::StatusOr<size_t> CheckEntry(std::string_view data, bool& event_time) {
  const auto bad = [] { return absl::InvalidArgumentError("an entry is not [time, record]"); };
  size_t pos = 0;
  uint32_t count = 0;
  if (!ContainerHeader(data, pos, /*map=*/false, count) || count != 2) return bad();
  if (pos >= data.size()) return bad();
  const auto time_tag = static_cast<uint8_t>(data[pos]);
  if (time_tag == 0xd7 && data.size() - pos >= 10 && data[pos + 1] == 0) {
    event_time = true;
    pos += 10;
  } else if (time_tag <= 0x7f || (time_tag >= 0xcc && time_tag <= 0xcf)) {
    event_time = false;
    absl::StatusOr<size_t> size = MsgpackObjectSize(data.substr(pos));
    if (!size.ok()) return size.status();
    pos += *size;
  } else {
    return absl::InvalidArgumentError("an entry's time is neither EventTime nor an integer");
  }
  if (!ContainerHeader(data, pos, /*map=*/true, count)) return bad();
  for (uint32_t i = 0; i < 2 * count; ++i) {
    if (i % 2 == 0) {
      const auto key_tag = pos < data.size() ? static_cast<uint8_t>(data[pos]) : 0;
      if ((key_tag & 0xe0) != 0xa0 && (key_tag < 0xd9 || key_tag > 0xdb)) {
        return absl::InvalidArgumentError("a record key is not a str");
      }
    }
    absl::StatusOr<size_t> size = MsgpackObjectSize(data.substr(pos));
    if (!size.ok()) return size.status();
    pos += *size;
  }
  return pos;
}

asio::awaitable<bool> WriteAll(tcp::socket& socket, const std::string& data) {
  boost::system::error_code ec;
  co_await asio::async_write(socket, asio::buffer(data),
                             asio::redirect_error(asio::use_awaitable, ec));
  co_return !ec;
}

}  // namespace

FluentdReceiver::FluentdReceiver(Options options) : options_(std::move(options)), acceptor_(io_) {
  const tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), options_.port);
  acceptor_.open(endpoint.protocol());
  acceptor_.set_option(tcp::acceptor::reuse_address(true));
  acceptor_.bind(endpoint);
  acceptor_.listen();
  port_ = acceptor_.local_endpoint().port();
  asio::co_spawn(io_, Accept(), asio::detached);
  thread_ = std::thread([this] { io_.run(); });
}

FluentdReceiver::~FluentdReceiver() {
  io_.stop();
  thread_.join();
}

void FluentdReceiver::set_ack_mode(AckMode mode) {
  std::lock_guard lock(mutex_);
  ack_mode_ = mode;
}

std::vector<FluentdReceiver::Event> FluentdReceiver::events() const {
  std::lock_guard lock(mutex_);
  return events_;
}

size_t FluentdReceiver::event_count() const {
  std::lock_guard lock(mutex_);
  return event_count_;
}

std::vector<FluentdReceiver::Request> FluentdReceiver::requests() const {
  std::lock_guard lock(mutex_);
  return requests_;
}

std::vector<std::string> FluentdReceiver::errors() const {
  std::lock_guard lock(mutex_);
  return errors_;
}

size_t FluentdReceiver::connections() const {
  std::lock_guard lock(mutex_);
  return connections_;
}

void FluentdReceiver::Error(std::string error) {
  std::lock_guard lock(mutex_);
  errors_.push_back(std::move(error));
}

asio::awaitable<void> FluentdReceiver::Accept() {
  for (;;) {
    boost::system::error_code ec;
    tcp::socket socket =
        co_await acceptor_.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
    {
      std::lock_guard lock(mutex_);
      ++connections_;
    }
    asio::co_spawn(io_, Serve(std::move(socket)), asio::detached);
  }
}

asio::awaitable<bool> FluentdReceiver::Handshake(tcp::socket& socket, std::string& buffer) {
  const std::string nonce = RandomBytes(16);
  const std::string auth_salt = RandomBytes(16);
  std::string helo;
  MsgpackWriter w(helo);
  w.ArrayHeader(2);
  w.Str("HELO");
  w.MapHeader(3);
  w.Str("nonce");
  w.Bin(nonce);
  w.Str("auth");
  w.Bin(options_.username.empty() ? std::string() : auth_salt);
  w.Str("keepalive");
  w.Bool(options_.keepalive);
  if (!co_await WriteAll(socket, helo)) co_return false;

  std::string error;
  std::optional<MsgpackValue> ping = co_await ReadObject(socket, buffer, error);
  if (!ping) {
    if (!error.empty()) Error("handshake: " + error);
    co_return false;
  }
  std::string reason;
  std::string salt;
  if (ping->type != MsgpackValue::Type::kArray || ping->array.size() != 6 ||
      ping->array[0].bytes != "PING") {
    reason = "not a PING";
  } else {
    for (const MsgpackValue& part : ping->array) {
      if (!IsBytes(part)) reason = "PING fields must be strings";
    }
  }
  if (reason.empty()) {
    const std::string& client_hostname = ping->array[1].bytes;
    salt = ping->array[2].bytes;
    if (ping->array[3].bytes != Sha512Hex(salt + client_hostname + nonce + options_.shared_key)) {
      reason = "shared_key mismatch";
    } else if (!options_.username.empty() &&
               (ping->array[4].bytes != options_.username ||
                ping->array[5].bytes !=
                    Sha512Hex(auth_salt + options_.username + options_.password))) {
      reason = "username/password mismatch";
    }
  }
  std::string pong;
  MsgpackWriter p(pong);
  p.ArrayHeader(5);
  p.Str("PONG");
  p.Bool(reason.empty());
  p.Str(reason);
  if (reason.empty()) {
    p.Str(options_.hostname);
    const std::string& key = options_.pong_key.empty() ? options_.shared_key : options_.pong_key;
    p.Str(Sha512Hex(salt + options_.hostname + nonce + key));
  } else {
    p.Str("");
    p.Str("");
    Error("handshake refused: " + reason);
  }
  const bool written = co_await WriteAll(socket, pong);
  co_return written&& reason.empty();
}

asio::awaitable<void> FluentdReceiver::Serve(tcp::socket socket) {
  std::string buffer;
  if (!options_.shared_key.empty() && !co_await Handshake(socket, buffer)) co_return;
  for (;;) {
    std::string error;
    std::optional<MsgpackValue> request = co_await ReadObject(socket, buffer, error);
    if (!request) {
      if (!error.empty()) Error("request: " + error);
      co_return;
    }
    if (request->type == MsgpackValue::Type::kNil) continue;  // keep-alive
    const std::string chunk = Record(*request);
    if (!chunk.empty()) {
      AckMode mode;
      {
        std::lock_guard lock(mutex_);
        mode = ack_mode_;
      }
      if (mode == AckMode::kClose) co_return;
      if (mode == AckMode::kAck || mode == AckMode::kWrongId) {
        std::string ack;
        MsgpackWriter w(ack);
        w.MapHeader(1);
        w.Str("ack");
        w.Str(mode == AckMode::kAck ? chunk : "x" + chunk);
        if (!co_await WriteAll(socket, ack)) co_return;
      }
    }
    if (!options_.keepalive) co_return;
  }
}

std::string FluentdReceiver::Record(MsgpackValue& request) {
  if (request.type != MsgpackValue::Type::kArray || request.array.size() < 2 ||
      !request.array[0].is_str()) {
    Error("request: not an array starting with a tag");
    return "";
  }
  Request seen;
  seen.tag = request.array[0].bytes;
  std::vector<MsgpackValue> entries;  // each [time, record] (kept events only)
  size_t entry_count = 0;
  std::vector<Event> events;
  MsgpackValue& second = request.array[1];
  size_t option_index = 2;
  if (second.type == MsgpackValue::Type::kArray) {
    seen.mode = "Forward";
    entries = std::move(second.array);
  } else if (IsBytes(second)) {
    std::string inflated;
    std::string_view packed = second.bytes;
    seen.mode = "PackedForward";
    if (request.array.size() > 2) {
      const MsgpackValue* compressed = request.array[2].Find("compressed");
      if (compressed != nullptr && compressed->bytes == "gzip") {
        seen.mode = "CompressedPackedForward";
        absl::StatusOr<std::string> decompressed =
            meshtel::common::GzipDecompress(packed, size_t{1} << 32);
        if (!decompressed.ok()) {
          Error("request: the compressed entries are not gzip: " +
                decompressed.status().ToString());
          return "";
        }
        inflated = *std::move(decompressed);
        packed = inflated;
      }
    }
    while (!packed.empty()) {
      if (!options_.keep_events) {
        // Checked and counted, not built.
        bool event_time = false;
        absl::StatusOr<size_t> size = CheckEntry(packed, event_time);
        if (!size.ok()) {
          Error("request: packed entries: " + std::string(size.status().message()));
          return "";
        }
        ++entry_count;
        packed.remove_prefix(*size);
        continue;
      }
      size_t consumed = 0;
      absl::StatusOr<MsgpackValue> entry = DecodeMsgpack(packed, consumed);
      if (!entry.ok()) {
        Error("request: packed entries: " + std::string(entry.status().message()));
        return "";
      }
      entries.push_back(*std::move(entry));
      packed.remove_prefix(consumed);
    }
  } else {
    seen.mode = "Message";
    if (request.array.size() < 3) {
      Error("request: a Message without a record");
      return "";
    }
    MsgpackValue entry;
    entry.type = MsgpackValue::Type::kArray;
    entry.array = {second, request.array[2]};
    entries.push_back(std::move(entry));
    option_index = 3;
  }
  if (request.array.size() > option_index) {
    seen.option = std::move(request.array[option_index]);
  }
  entry_count += entries.size();
  seen.entries = entry_count;

  events.reserve(entries.size());
  for (MsgpackValue& entry : entries) {
    if (entry.type != MsgpackValue::Type::kArray || entry.array.size() != 2 ||
        entry.array[1].type != MsgpackValue::Type::kMap) {
      Error("request: an entry is not [time, record]");
      return "";
    }
    Event event;
    event.tag = seen.tag;
    const MsgpackValue& time = entry.array[0];
    if (time.type == MsgpackValue::Type::kExt && time.ext_type == 0 && time.bytes.size() == 8) {
      event.event_time = true;
      const auto* b = reinterpret_cast<const unsigned char*>(time.bytes.data());
      event.seconds =
          (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | b[3];
      event.nanoseconds =
          (uint32_t{b[4]} << 24) | (uint32_t{b[5]} << 16) | (uint32_t{b[6]} << 8) | b[7];
    } else if (time.type == MsgpackValue::Type::kUint) {
      event.seconds = static_cast<uint32_t>(time.uint_value);
    } else {
      Error("request: an entry's time is neither EventTime nor an integer");
      return "";
    }
    event.record = std::move(entry.array[1]);
    events.push_back(std::move(event));
  }
  const MsgpackValue* size = seen.option.Find("size");
  if (size != nullptr && size->AsInt() != static_cast<int64_t>(entry_count)) {
    Error("request: option size does not match the entries");
  }
  const MsgpackValue* chunk = seen.option.Find("chunk");
  std::string chunk_id = chunk != nullptr && IsBytes(*chunk) ? chunk->bytes : "";
  std::lock_guard lock(mutex_);
  event_count_ += entry_count;
  if (options_.keep_events) {
    events_.insert(events_.end(), std::make_move_iterator(events.begin()),
                   std::make_move_iterator(events.end()));
  }
  requests_.push_back(std::move(seen));
  return chunk_id;
}

}  // namespace meshtel::testing
