#pragma once
// Benchmark support: the "--name=value" flags of the benchmark drivers (store_ingest_bench,
// export_bench). Pure functions.

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

namespace meshtel::bench {

// True, with `value` set, when `arg` is "<name>=<value>" with a non-empty value.
inline bool Flag(std::string_view arg, std::string_view name, std::string& value) {
  if (arg.substr(0, name.size()) != name || arg.size() <= name.size() || arg[name.size()] != '=') {
    return false;
  }
  value = std::string(arg.substr(name.size() + 1));
  return true;
}

// The items of a comma-separated list ("a,b" → {"a", "b"}; empty items kept).
inline std::vector<std::string> CommaList(const std::string& list) {
  std::vector<std::string> items;
  for (size_t at = 0; at <= list.size();) {
    const size_t comma = std::min(list.find(',', at), list.size());
    items.push_back(list.substr(at, comma - at));
    at = comma + 1;
  }
  return items;
}

}  // namespace meshtel::bench
