#include "proxy/http/hop_by_hop_headers.h"

#include <array>
#include <string_view>
#include <vector>

#include "boost/beast/core/string.hpp"

namespace meshtel::proxy {

namespace http = boost::beast::http;

namespace {

std::string_view ToStd(boost::beast::string_view view) { return {view.data(), view.size()}; }

std::string_view TrimSpaces(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return boost::beast::iequals(boost::beast::string_view(a.data(), a.size()),
                               boost::beast::string_view(b.data(), b.size()));
}

// Calls `visit` with each comma-separated token of a list-valued field, trimmed, empty ones left
// out. Every occurrence of the field counts (a list may be split over several lines). The tokens
// are views into the field values (nothing is copied): `visit` must not erase fields.
template <typename Fields, typename Visit>
void ForEachToken(const Fields& fields, http::field name, Visit&& visit) {
  const auto range = fields.equal_range(name);
  for (auto it = range.first; it != range.second; ++it) {
    const std::string_view list = ToStd(it->value());
    size_t begin = 0;
    while (begin <= list.size()) {
      size_t end = list.find(',', begin);
      if (end == std::string_view::npos) end = list.size();
      const std::string_view token = TrimSpaces(list.substr(begin, end - begin));
      if (!token.empty()) visit(token);
      begin = end + 1;
    }
  }
}

template <typename Fields>
void RemoveHopByHop(Fields& fields) {
  bool te_trailers = false;
  ForEachToken(fields, http::field::te, [&](std::string_view token) {
    // A TE member may carry parameters ("gzip;q=0.5").
    const std::string_view coding = token.substr(0, token.find(';'));
    if (EqualsIgnoreCase(TrimSpaces(coding), "trailers")) te_trailers = true;
  });
  // The fields Connection names go after the walk over its lines (erasing during the walk would
  // pull fields from under it). The names are views into the Connection lines, which stay until
  // the loop below; "close" and "keep-alive" are connection options, not field names, and
  // erasing them is harmless.
  std::array<std::string_view, 16> named;
  size_t named_count = 0;
  std::vector<std::string_view> more_named;  // past 16 names (allocates only then)
  ForEachToken(fields, http::field::connection, [&](std::string_view token) {
    if (EqualsIgnoreCase(token, "connection")) return;
    if (named_count < named.size()) {
      named[named_count++] = token;
    } else {
      more_named.push_back(token);
    }
  });
  const auto erase = [&](std::string_view name) {
    fields.erase(boost::beast::string_view(name.data(), name.size()));
  };
  for (size_t i = 0; i < named_count; ++i) erase(named[i]);
  for (std::string_view name : more_named) erase(name);
  // The fixed per-hop fields, in one pass over the fields (cheaper than a lookup for each).
  for (auto it = fields.begin(); it != fields.end();) {
    switch (it->name()) {
      case http::field::connection:
      case http::field::keep_alive:
      case http::field::proxy_connection:
      case http::field::te:
      case http::field::upgrade:
      case http::field::proxy_authorization:
        it = fields.erase(it);
        break;
      default:
        ++it;
    }
  }
  if (te_trailers) fields.set(http::field::te, "trailers");
}

template <typename Fields>
bool AsksForUpgradeIn(const Fields& fields) {
  if (TrimSpaces(ToStd(fields[http::field::upgrade])).empty()) return false;
  bool upgrade = false;
  ForEachToken(fields, http::field::connection, [&](std::string_view token) {
    if (EqualsIgnoreCase(token, "upgrade")) upgrade = true;
  });
  return upgrade;
}

}  // namespace

void RemoveHopByHopHeaders(http::fields& fields) { RemoveHopByHop(fields); }
void RemoveHopByHopHeaders(HeaderFields& fields) { RemoveHopByHop(fields); }
bool AsksForUpgrade(const http::fields& fields) { return AsksForUpgradeIn(fields); }
bool AsksForUpgrade(const HeaderFields& fields) { return AsksForUpgradeIn(fields); }

}  // namespace meshtel::proxy
