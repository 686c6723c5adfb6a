#pragma once
// Envoy's short response-flag codes (%RESPONSE_FLAGS%, Istio's response_flags label), indexed by
// the value of meshtel.v1.ResponseFlag (proto/meshtel/v1/record.proto): bit i of
// RequestRecord.response_flags is kResponseFlagCodes[i].

#include <array>
#include <string_view>

namespace meshtel::common {

inline constexpr std::array<std::string_view, 29> kResponseFlagCodes = {
    "LH",   "UH",   "UT",   "LR",   "UR", "UF",  "UC", "UO", "NR",  "DI",
    "FI",   "RL",   "UAEX", "RLSE", "DC", "URX", "SI", "IH", "DPE", "UMSDR",
    "RFCF", "NFCF", "DT",   "UPE",  "NC", "OM",  "DF", "DO", "DR"};

}  // namespace meshtel::common
