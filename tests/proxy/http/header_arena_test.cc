// HeaderArena and HeaderFields: allocation, reuse and bounds, and Beast's parser and serializer
// with arena-allocated fields against the same with std::allocator.

#include "proxy/http/header_arena.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <sstream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "boost/beast.hpp"
#include "gtest/gtest.h"

namespace meshtel::proxy {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;

using ArenaRequestParser = http::parser<true, http::buffer_body, ArenaAllocator<char>>;
using ArenaResponseParser = http::parser<false, http::buffer_body, ArenaAllocator<char>>;

template <typename Parser>
void ParseHead(Parser& parser, const std::string& head) {
  parser.header_limit(60 * 1024);
  beast::error_code error;
  const size_t used = parser.put(boost::asio::buffer(head), error);
  ASSERT_FALSE(error) << error.message();
  ASSERT_EQ(used, head.size());
  ASSERT_TRUE(parser.is_header_done());
}

template <typename Header>
std::string Serialized(const Header& header) {
  std::ostringstream out;
  out << header;
  return out.str();
}

// A request head with `count` fields of about `value_size` bytes each, besides Host.
std::string RequestHead(const std::string& target, size_t count, size_t value_size) {
  std::string head = "GET " + target + " HTTP/1.1\r\nHost: backend.shop\r\n";
  for (size_t i = 0; i < count; ++i) {
    head += "x-field-" + std::to_string(i) + ": " +
            std::string(value_size, static_cast<char>('a' + i % 26)) + "\r\n";
  }
  return head + "\r\n";
}

TEST(HeaderArenaTest, AllocationsAreAlignedDistinctAndWritable) {
  HeaderArena arena(256, 1024);
  std::vector<std::pair<char*, size_t>> blocks;
  for (size_t size : {1u, 7u, 16u, 33u, 100u, 300u, 2000u, 5u}) {
    char* p = static_cast<char*>(arena.Allocate(size, 8));
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % alignof(std::max_align_t), 0u);
    std::memset(p, static_cast<int>(size), size);
    blocks.emplace_back(p, size);
  }
  void* wide = arena.Allocate(10, 64);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(wide) % 64, 0u);
  for (const auto& [p, size] : blocks) {
    for (size_t i = 0; i < size; ++i) ASSERT_EQ(p[i], static_cast<char>(size));
    for (const auto& [q, other] : blocks) {
      if (p != q) {
        EXPECT_TRUE(p + size <= q || q + other <= p);
      }
    }
  }
}

TEST(HeaderArenaTest, TheLatestAllocationIsTakenBackOthersWaitForReset) {
  HeaderArena arena;
  void* a = arena.Allocate(40, 8);
  const size_t after_a = arena.bytes_used();
  void* b = arena.Allocate(24, 8);
  arena.Deallocate(a, 40);  // not the latest: stays used
  EXPECT_GT(arena.bytes_used(), after_a);
  arena.Deallocate(b, 24);  // the latest: back
  EXPECT_EQ(arena.bytes_used(), after_a);
  EXPECT_EQ(arena.Allocate(24, 8), b);
  arena.Reset();
  EXPECT_EQ(arena.bytes_used(), 0u);
  EXPECT_EQ(arena.Allocate(40, 8), a);  // the same block, from its start
}

TEST(HeaderArenaTest, ResetKeepsAtMostTheRetainLimitWhateverARequestNeeded) {
  HeaderArena arena(/*first_block=*/4096, /*retain_limit=*/16 * 1024);
  EXPECT_EQ(arena.bytes_reserved(), 0u);  // nothing before the first use
  // A request with a lot of header memory (all that a 60 KiB head can take, and more).
  for (int i = 0; i < 2000; ++i) arena.Allocate(100, 8);
  EXPECT_GT(arena.bytes_reserved(), 200'000u);
  arena.Reset();
  EXPECT_LE(arena.bytes_reserved(), 16u * 1024);
  EXPECT_GT(arena.bytes_reserved(), 0u);
  // A huge single allocation (larger than any block so far) is not kept either.
  arena.Allocate(100'000, 8);
  arena.Reset();
  EXPECT_LE(arena.bytes_reserved(), 16u * 1024);
}

TEST(HeaderArenaTest, RequestsOfTheSameSizeAllocateNoBlocksAfterTheFirst) {
  HeaderArena arena;
  const std::string head = RequestHead("/same", 40, 60);  // about 5.5 KiB with the elements
  uint64_t blocks_after_first = 0;
  for (int request = 0; request < 50; ++request) {
    arena.Reset();
    ArenaRequestParser parser(std::piecewise_construct, std::make_tuple(),
                              std::make_tuple(ArenaAllocator<char>(arena)));
    ParseHead(parser, head);
    parser.get().set("x-request-id", "7c3f6f4e-94a4-4d8b-9d5e-2f0b6a1c9e11");
    parser.get().erase("x-field-3");
    EXPECT_EQ(parser.get()["x-field-39"], std::string(60, static_cast<char>('a' + 39 % 26)));
    if (request == 0) blocks_after_first = arena.blocks_allocated();
  }
  EXPECT_GT(blocks_after_first, 0u);
  EXPECT_EQ(arena.blocks_allocated(), blocks_after_first);
}

TEST(HeaderArenaTest, AKeepAliveConnectionOfVaryingHeadersStaysBounded) {
  // Requests of a connection, each parsed into the same arena after a Reset(), their heads from
  // tiny to near the 60 KiB limit: between requests the arena never holds more than its bound.
  HeaderArena arena;
  const size_t bound = std::max(HeaderArena::kDefaultFirstBlock, HeaderArena::kDefaultRetainLimit);
  const std::vector<std::pair<size_t, size_t>> shapes = {
      {0, 0}, {1500, 20}, {1, 59'000}, {10, 10}, {600, 70}, {0, 0}, {1500, 20}, {3, 3}};
  for (int round = 0; round < 3; ++round) {
    for (const auto& [count, size] : shapes) {
      arena.Reset();
      EXPECT_LE(arena.bytes_reserved(), bound);
      const std::string head = RequestHead("/vary", count, size);
      ASSERT_LT(head.size(), 60u * 1024);
      ArenaRequestParser parser(std::piecewise_construct, std::make_tuple(),
                                std::make_tuple(ArenaAllocator<char>(arena)));
      ParseHead(parser, head);
      size_t fields = 0;
      for (const auto& field : parser.get()) {
        static_cast<void>(field);
        ++fields;
      }
      EXPECT_EQ(fields, count + 1);
    }
  }
  arena.Reset();
  EXPECT_LE(arena.bytes_reserved(), bound);
}

TEST(HeaderArenaTest, ParsedAndSetFieldsMatchTheDefaultAllocator) {
  const std::string head =
      "POST /api/v1/items?limit=10 HTTP/1.1\r\n"
      "Host: backend.shop\r\n"
      "User-Agent: curl/7.88.1\r\n"
      "Accept: */*\r\n"
      "X-Custom: one\r\n"
      "x-custom: two\r\n"
      "Content-Type: application/json\r\n"
      "Content-Length: 0\r\n"
      "Connection: keep-alive, X-Hop\r\n"
      "X-Hop: dropped\r\n"
      "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n"
      "\r\n";
  const auto edit = [](auto& message) {
    message.set("x-request-id", "7c3f6f4e-94a4-4d8b-9d5e-2f0b6a1c9e11");
    message.set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-1111111111111111-01");
    message.erase("X-Hop");
    message.target("/rewritten");
    message.set(http::field::host, "other.shop");
    message.keep_alive(true);
  };
  HeaderArena arena(64, 64);  // small blocks: the fields span several
  ArenaRequestParser with_arena(std::piecewise_construct, std::make_tuple(),
                                std::make_tuple(ArenaAllocator<char>(arena)));
  http::request_parser<http::buffer_body> with_std;
  ParseHead(with_arena, head);
  ParseHead(with_std, head);
  EXPECT_GT(arena.blocks_allocated(), 1u);
  EXPECT_EQ(Serialized(with_arena.get().base()), Serialized(with_std.get().base()));
  edit(with_arena.get());
  edit(with_std.get());
  const std::string serialized = Serialized(with_arena.get().base());
  EXPECT_EQ(serialized, Serialized(with_std.get().base()));
  EXPECT_NE(serialized.find("x-custom: two\r\n"), std::string::npos) << serialized;
  EXPECT_EQ(serialized.find("X-Hop: dropped"), std::string::npos) << serialized;
  EXPECT_TRUE(serialized.starts_with("POST /rewritten HTTP/1.1\r\n")) << serialized;

  // A response head, with a body that follows in the same bytes.
  const std::string response =
      "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nContent-Type: text/html\r\n"
      "Content-Length: 5\r\nETag: \"abc\"\r\nAccept-Ranges: bytes\r\n\r\nhello";
  ArenaResponseParser response_with_arena(std::piecewise_construct, std::make_tuple(),
                                          std::make_tuple(ArenaAllocator<char>(arena)));
  http::response_parser<http::buffer_body> response_with_std;
  beast::error_code error;
  response_with_arena.put(boost::asio::buffer(response), error);
  EXPECT_FALSE(error) << error.message();
  response_with_std.put(boost::asio::buffer(response), error);
  EXPECT_FALSE(error) << error.message();
  EXPECT_EQ(Serialized(response_with_arena.get().base()),
            Serialized(response_with_std.get().base()));
  EXPECT_EQ(response_with_arena.get().reason(), "OK");
}

TEST(HeaderArenaTest, AHeadOverTheLimitIsRefusedWithTheArena) {
  HeaderArena arena;
  ArenaRequestParser parser(std::piecewise_construct, std::make_tuple(),
                            std::make_tuple(ArenaAllocator<char>(arena)));
  parser.header_limit(60 * 1024);
  const std::string head = RequestHead("/big", 1, 61 * 1024);
  beast::error_code error;
  parser.put(boost::asio::buffer(head), error);
  EXPECT_EQ(error, http::error::header_limit);
}

}  // namespace
}  // namespace meshtel::proxy
