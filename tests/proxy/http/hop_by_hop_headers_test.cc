#include "proxy/http/hop_by_hop_headers.h"

#include <string>

#include "boost/beast/http.hpp"
#include "gtest/gtest.h"
#include "proxy/http/header_arena.h"

namespace meshtel::proxy {
namespace {

namespace http = boost::beast::http;

std::string Value(const http::fields& fields, const char* name) {
  return std::string(fields[name]);
}

TEST(HopByHopHeadersTest, RemovesTheFixedPerHopFields) {
  http::fields fields;
  fields.set("Connection", "keep-alive");
  fields.set("Keep-Alive", "timeout=5, max=100");
  fields.set("Proxy-Connection", "keep-alive");
  fields.set("Upgrade", "websocket");
  fields.set("Proxy-Authorization", "Basic Zm9vOmJhcg==");
  fields.set("TE", "gzip");
  fields.set("Content-Type", "text/plain");
  fields.set("Authorization", "Bearer token");
  RemoveHopByHopHeaders(fields);
  for (const char* gone :
       {"Connection", "Keep-Alive", "Proxy-Connection", "Upgrade", "Proxy-Authorization", "TE"}) {
    EXPECT_EQ(fields.count(gone), 0u) << gone;
  }
  // End-to-end fields stay, the origin's Authorization among them.
  EXPECT_EQ(Value(fields, "Content-Type"), "text/plain");
  EXPECT_EQ(Value(fields, "Authorization"), "Bearer token");
}

TEST(HopByHopHeadersTest, ConnectionNamingItselfAmongOthersIsHandled) {
  // The tokens are read in place from the Connection lines: one naming Connection itself must
  // not pull the list away while the others are still being read.
  http::fields fields;
  fields.insert("Connection", "x-hop, Connection, upgrade");
  fields.insert("Connection", "X-Hop-Two");
  fields.insert("X-Hop", "1");
  fields.insert("X-Hop-Two", "2");
  fields.insert("Upgrade", "websocket");
  fields.insert("X-Kept", "3");
  EXPECT_TRUE(AsksForUpgrade(fields));
  RemoveHopByHopHeaders(fields);
  EXPECT_EQ(fields.count("X-Hop"), 0u);
  EXPECT_EQ(fields.count("X-Hop-Two"), 0u);
  EXPECT_EQ(fields.count("Connection"), 0u);
  EXPECT_EQ(fields.count("Upgrade"), 0u);
  EXPECT_EQ(Value(fields, "X-Kept"), "3");
  EXPECT_FALSE(AsksForUpgrade(fields));
}

TEST(HopByHopHeadersTest, RemovesEveryFieldConnectionNamesOverSeveralLines) {
  http::fields fields;
  fields.insert("Connection", " X-Hop-One ,\tx-hop-two,,");
  fields.insert("Connection", "X-Hop-Three");
  fields.insert("X-Hop-One", "1");
  fields.insert("x-hop-two", "2");
  fields.insert("X-HOP-THREE", "3");
  fields.insert("X-Hop-Four", "4");
  RemoveHopByHopHeaders(fields);
  EXPECT_EQ(fields.count("X-Hop-One"), 0u);
  EXPECT_EQ(fields.count("X-Hop-Two"), 0u);
  EXPECT_EQ(fields.count("X-Hop-Three"), 0u);  // names match without regard to case
  EXPECT_EQ(Value(fields, "X-Hop-Four"), "4");
  EXPECT_EQ(fields.count("Connection"), 0u);
}

TEST(HopByHopHeadersTest, KeepsTransferEncodingAndTeTrailers) {
  http::fields fields;
  fields.set("Transfer-Encoding", "chunked");
  fields.set("TE", "gzip;q=0.5, Trailers");
  fields.set("Connection", "TE");
  RemoveHopByHopHeaders(fields);
  EXPECT_EQ(Value(fields, "Transfer-Encoding"), "chunked");
  // Only the trailers member survives: it speaks for the end client, not for this hop.
  EXPECT_EQ(Value(fields, "TE"), "trailers");

  http::fields without_trailers;
  without_trailers.set("TE", "deflate");
  RemoveHopByHopHeaders(without_trailers);
  EXPECT_EQ(without_trailers.count("TE"), 0u);
}

TEST(HopByHopHeadersTest, UpgradeNeedsBothTheFieldAndTheConnectionToken) {
  http::fields upgrade;
  upgrade.set("Upgrade", "websocket");
  upgrade.set("Connection", "keep-alive, Upgrade");
  EXPECT_TRUE(AsksForUpgrade(upgrade));

  http::fields no_token;
  no_token.set("Upgrade", "websocket");
  no_token.set("Connection", "keep-alive");
  EXPECT_FALSE(AsksForUpgrade(no_token));

  http::fields no_protocol;
  no_protocol.set("Upgrade", "  ");
  no_protocol.set("Connection", "upgrade");
  EXPECT_FALSE(AsksForUpgrade(no_protocol));

  // A token that only contains the word is not the token.
  http::fields lookalike;
  lookalike.set("Upgrade", "websocket");
  lookalike.set("Connection", "x-upgrade-hint");
  EXPECT_FALSE(AsksForUpgrade(lookalike));
}

TEST(HopByHopHeadersTest, ArenaFieldsGiveTheSameResultAsDefaultOnes) {
  // The proxy's own fields (HeaderFields, from a HeaderArena) go through the same code.
  HeaderArena arena;
  HeaderFields with_arena{ArenaAllocator<char>(arena)};
  http::fields with_std;
  const auto fill = [](auto& fields) {
    fields.insert("Connection", "keep-alive, X-Session, Upgrade");
    fields.insert("Connection", "x-other");
    fields.insert("X-Session", "abc");
    fields.insert("x-other", "1");
    fields.insert("Upgrade", "websocket");
    fields.insert("TE", "trailers, gzip;q=0.5");
    fields.insert("Keep-Alive", "timeout=5");
    fields.insert("Content-Type", "application/grpc");
    fields.insert("x-kept", "yes");
  };
  fill(with_arena);
  fill(with_std);
  EXPECT_TRUE(AsksForUpgrade(with_arena));
  EXPECT_EQ(AsksForUpgrade(with_arena), AsksForUpgrade(with_std));
  RemoveHopByHopHeaders(with_arena);
  RemoveHopByHopHeaders(with_std);
  std::string arena_fields;
  for (const auto& field : with_arena) {
    arena_fields += std::string(field.name_string()) + ": " + std::string(field.value()) + "\n";
  }
  std::string std_fields;
  for (const auto& field : with_std) {
    std_fields += std::string(field.name_string()) + ": " + std::string(field.value()) + "\n";
  }
  EXPECT_EQ(arena_fields, std_fields);
  EXPECT_EQ(arena_fields, "Content-Type: application/grpc\nx-kept: yes\nTE: trailers\n");
}

}  // namespace
}  // namespace meshtel::proxy
