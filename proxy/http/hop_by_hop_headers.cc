#include "proxy/http/hop_by_hop_headers.h"

#include <string>
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

// The comma-separated tokens of a list-valued field, trimmed, empty ones left out. Every
// occurrence of the field counts (a list may be split over several lines).
std::vector<std::string> ListTokens(const http::fields& fields, http::field name) {
  std::vector<std::string> tokens;
  const auto range = fields.equal_range(name);
  for (auto it = range.first; it != range.second; ++it) {
    const std::string_view list = ToStd(it->value());
    size_t begin = 0;
    while (begin <= list.size()) {
      size_t end = list.find(',', begin);
      if (end == std::string_view::npos) end = list.size();
      const std::string_view token = TrimSpaces(list.substr(begin, end - begin));
      if (!token.empty()) tokens.emplace_back(token);
      begin = end + 1;
    }
  }
  return tokens;
}

}  // namespace

void RemoveHopByHopHeaders(http::fields& fields) {
  bool te_trailers = false;
  for (const std::string& token : ListTokens(fields, http::field::te)) {
    // A TE member may carry parameters ("gzip;q=0.5").
    std::string_view coding = token;
    coding = coding.substr(0, coding.find(';'));
    if (EqualsIgnoreCase(TrimSpaces(coding), "trailers")) te_trailers = true;
  }
  for (const std::string& token : ListTokens(fields, http::field::connection)) {
    // "close" and "keep-alive" are connection options, not field names; erasing them is harmless.
    fields.erase(boost::beast::string_view(token.data(), token.size()));
  }
  for (http::field field :
       {http::field::connection, http::field::keep_alive, http::field::proxy_connection,
        http::field::te, http::field::upgrade, http::field::proxy_authorization}) {
    fields.erase(field);
  }
  if (te_trailers) fields.set(http::field::te, "trailers");
}

bool AsksForUpgrade(const http::fields& fields) {
  if (TrimSpaces(ToStd(fields[http::field::upgrade])).empty()) return false;
  for (const std::string& token : ListTokens(fields, http::field::connection)) {
    if (EqualsIgnoreCase(token, "upgrade")) return true;
  }
  return false;
}

}  // namespace meshtel::proxy
