#pragma once
// TailSampler: which assembled traces are kept, decided on the whole trace (tail sampling).
//
// Rules, in order; the first that keeps a trace names it:
//   error       — some span has status ERROR (HTTP 5xx, no response, a gRPC error) or an HTTP
//                 status of 500 or more in its http.response.status_code / http.status_code
//                 attribute (an SDK's span may leave its status unset), when
//                 sampling.keep_errors;
//   latency     — the trace lasts at least sampling.latency_threshold (its root span's
//                 duration; without a root, first span start to last span end), when the
//                 threshold is not 0;
//   head        — a proxy sampled some hop of it, or a received span of it had the W3C sampled
//                 flag (the head decision), when sampling.keep_head_sampled;
//   percentage  — its trace id falls in sampling.percentage of the id space (the same traces on
//                 every collector).
// The head and percentage rules are bounded by sampling.per_service_rate_limit traces per second
// per root service (a token bucket each; errors and slow traces are never limited): a trace
// they would keep beyond it is dropped as rate_limited. Every decision is counted in
// meshtel_traces_sampled_total{policy, decision} (policy "none" for a trace no rule keeps).
//
// It decides on span summaries (span_summary.h): SpanSummary::error is the error rule above,
// worked out when the span was summarized; the root service is asked for (a callback) only when
// the rate limit needs it.
//
// Threading: not thread-safe; the trace pipeline's thread calls it. Time is passed in.

#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/time/time.h"
#include "collector/traces/trace_assembler.h"
#include "collector/traces/traces_config.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/registry.h"

namespace meshtel::collector {

struct SamplingVerdict {
  bool keep = false;
  // "error", "latency", "head", "percentage", "rate_limited" or "none".
  std::string_view policy;
};

class TailSampler {
 public:
  // Registers its counters in `registry`, which must outlive it.
  TailSampler(const TraceSamplingConfig& config, prometheus::Registry& registry);

  // The service name of span `span` (an index in trace.spans), asked for at most once per call.
  using ServiceOf = absl::FunctionRef<std::string(size_t span)>;

  SamplingVerdict Decide(const AssembledTrace& trace, absl::Time now, ServiceOf service_of);

  // The span that stands for the trace: its first root; without a root, its earliest span.
  static size_t RootSpan(const AssembledTrace& trace);

  // Whether `trace_id` (16 bytes) falls in `percentage` of the id space.
  static bool InPercentage(std::string_view trace_id, double percentage);

 private:
  struct Bucket {
    double tokens = 0;
    absl::Time refilled;
  };
  // Takes one token of the root service's bucket; false when it is empty.
  bool TakeToken(const AssembledTrace& trace, absl::Time now, ServiceOf service_of);

  const TraceSamplingConfig config_;
  absl::flat_hash_map<std::string, Bucket> buckets_;
  prometheus::Family<prometheus::Counter>& sampled_total_;
  prometheus::Counter& kept_error_;
  prometheus::Counter& kept_latency_;
  prometheus::Counter& kept_head_;
  prometheus::Counter& kept_percentage_;
  prometheus::Counter& dropped_rate_limited_;
  prometheus::Counter& dropped_none_;
};

}  // namespace meshtel::collector
