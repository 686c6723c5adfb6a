// Fuzzes what the proxy does with a downstream request head: Beast's parser with the proxy's
// limits (60 KiB of headers, bounded body), then the Host as an address and the trace headers.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "boost/beast/core/flat_buffer.hpp"
#include "boost/beast/http.hpp"
#include "collector/common/host_port.h"
#include "proxy/trace/trace_context.h"

namespace http = boost::beast::http;

namespace {
std::string_view Field(const http::request<http::string_body>& request, std::string_view name) {
  const auto value = request[boost::beast::string_view(name.data(), name.size())];
  return {value.data(), value.size()};
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  http::request_parser<http::string_body> parser;
  parser.header_limit(60 * 1024);
  parser.body_limit(1 << 20);
  parser.eager(true);
  boost::beast::error_code error;
  parser.put(boost::asio::buffer(data, size), error);
  if (!parser.is_header_done()) return 0;
  const auto& request = parser.get();
  (void)meshtel::common::ParseHostPort(Field(request, "host"));
  const meshtel::proxy::TraceHeaders headers{Field(request, "traceparent"),
                                             Field(request, "tracestate"),
                                             Field(request, "b3"),
                                             Field(request, "x-b3-traceid"),
                                             Field(request, "x-b3-spanid"),
                                             Field(request, "x-b3-parentspanid"),
                                             Field(request, "x-b3-sampled"),
                                             Field(request, "x-b3-flags"),
                                             Field(request, "x-client-trace-id"),
                                             Field(request, "x-envoy-force-trace")};
  const auto incoming = meshtel::proxy::ExtractTraceContext(headers);
  (void)meshtel::proxy::DecideSampling(incoming, headers, Field(request, "x-request-id"), 1.0);
  return 0;
}
