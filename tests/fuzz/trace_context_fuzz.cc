// Fuzzes trace-context extraction, sampling and injection. Input: header values separated by
// '\n' in TraceHeaders order. Invariant: what a hop injects, the next hop reads back unchanged.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "proxy/trace/trace_context.h"

using meshtel::proxy::ExtractTraceContext;
using meshtel::proxy::Propagation;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::vector<std::string_view> values;
  size_t begin = 0;
  while (values.size() < 10) {
    const size_t end = input.find('\n', begin);
    values.push_back(
        input.substr(begin, end == std::string_view::npos ? input.size() - begin : end - begin));
    if (end == std::string_view::npos) break;
    begin = end + 1;
  }
  values.resize(10);
  const meshtel::proxy::TraceHeaders headers{values[0], values[1], values[2], values[3], values[4],
                                             values[5], values[6], values[7], values[8], values[9]};
  const auto incoming = ExtractTraceContext(headers);
  const auto decision = meshtel::proxy::DecideSampling(incoming, headers, values[0], 50.0);
  const auto hop = meshtel::proxy::NewHop(incoming, decision.sampled);
  for (const auto& [name, value] :
       meshtel::proxy::TraceHeadersToInject(hop, {Propagation::kW3c, Propagation::kB3Single})) {
    meshtel::proxy::TraceHeaders next;
    if (name == "traceparent")
      next.traceparent = value;
    else if (name == "b3")
      next.b3 = value;
    else
      continue;
    const auto read_back = ExtractTraceContext(next);
    if (!read_back.has_ids || read_back.invalid || read_back.trace_id != hop.trace_id ||
        read_back.span_id != hop.span_id || read_back.sampled != hop.sampled) {
      std::abort();
    }
  }
  return 0;
}
