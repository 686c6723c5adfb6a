#pragma once
// ProxyStats: the proxy's own counters, updated on the request path with relaxed atomics only
// (no locks, no allocation) and read by the admin endpoint.
// Threading: any thread may update or read; reads are a consistent-enough snapshot per counter.

#include <array>
#include <atomic>
#include <cstdint>

#include "collector/common/response_flag_codes.h"
#include "meshtel/v1/record.pb.h"

namespace meshtel::proxy {

struct DirectionStats {
  std::atomic<uint64_t> requests{0};
  // Requests that carried each response flag (index = meshtel.v1.ResponseFlag).
  std::array<std::atomic<uint64_t>, common::kResponseFlagCodes.size()> flagged{};
  std::atomic<uint64_t> upstream_connections_opened{0};
  std::atomic<uint64_t> upstream_requests_on_reused_connections{0};

  // Counts one finished request from its record.
  void Count(const meshtel::v1::RequestRecord& record) {
    requests.fetch_add(1, std::memory_order_relaxed);
    for (size_t bit = 0; bit < flagged.size(); ++bit) {
      if ((record.response_flags() >> bit) & 1)
        flagged[bit].fetch_add(1, std::memory_order_relaxed);
    }
    if (record.phases().upstream_connected_ns() != 0) {
      (record.phases().upstream_connection_reused() ? upstream_requests_on_reused_connections
                                                    : upstream_connections_opened)
          .fetch_add(1, std::memory_order_relaxed);
    }
  }
};

struct ProxyStats {
  DirectionStats inbound;
  DirectionStats outbound;
  std::atomic<uint64_t> invalid_trace_contexts{0};
  // Records with text that was not UTF-8 (each bad byte reported as U+FFFD).
  std::atomic<uint64_t> records_with_invalid_utf8{0};
  std::atomic<int64_t> active_requests{0};
};

}  // namespace meshtel::proxy
