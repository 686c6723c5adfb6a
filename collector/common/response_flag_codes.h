#pragma once
// Envoy's short response-flag codes (%RESPONSE_FLAGS%, Istio's response_flags label), indexed by
// the value of meshtel.v1.ResponseFlag (proto/meshtel/v1/record.proto): bit i of
// RequestRecord.response_flags is kResponseFlagCodes[i].

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace meshtel::common {

inline constexpr std::array<std::string_view, 29> kResponseFlagCodes = {
    "LH",   "UH",   "UT",   "LR",   "UR", "UF",  "UC", "UO", "NR",  "DI",
    "FI",   "RL",   "UAEX", "RLSE", "DC", "URX", "SI", "IH", "DPE", "UMSDR",
    "RFCF", "NFCF", "DT",   "UPE",  "NC", "OM",  "DF", "DO", "DR"};

// Appends the codes of the flags set in `flags` as Envoy prints them ("UF,URX"), or "-" when none.
inline void AppendResponseFlagCodes(std::string& out, uint64_t flags) {
  bool first = true;
  for (size_t bit = 0; bit < kResponseFlagCodes.size(); ++bit) {
    if ((flags & (uint64_t{1} << bit)) == 0) continue;
    if (!first) out.push_back(',');
    out.append(kResponseFlagCodes[bit]);
    first = false;
  }
  if (first) out.push_back('-');
}

}  // namespace meshtel::common
