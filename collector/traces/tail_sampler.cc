#include "collector/traces/tail_sampler.h"

#include <algorithm>
#include <cstdint>
#include <limits>

namespace meshtel::collector {
namespace {

// Services with a rate-limit bucket at most; past it the buckets start over (a mesh has far
// fewer root services; this only bounds memory against a flood of made-up names).
constexpr size_t kMaxBuckets = 10000;

// How long the trace lasts: its root span's duration; without a root, first span start to last
// span end. 0 when the times are backwards.
uint64_t TraceDurationNs(const AssembledTrace& trace) {
  for (const SpanSummary& span : trace.spans) {
    if (span.parent_span_id != 0) continue;
    return span.end_time_unix_nano > span.start_time_unix_nano
               ? span.end_time_unix_nano - span.start_time_unix_nano
               : 0;
  }
  uint64_t first_start = std::numeric_limits<uint64_t>::max();
  uint64_t last_end = 0;
  for (const SpanSummary& span : trace.spans) {
    first_start = std::min<uint64_t>(first_start, span.start_time_unix_nano);
    last_end = std::max<uint64_t>(last_end, span.end_time_unix_nano);
  }
  return last_end > first_start ? last_end - first_start : 0;
}

}  // namespace

TailSampler::TailSampler(const TraceSamplingConfig& config, prometheus::Registry& registry)
    : config_(config),
      sampled_total_(prometheus::BuildCounter()
                         .Name("meshtel_traces_sampled_total")
                         .Help("Assembled traces by tail-sampling decision and the policy that "
                               "made it (error, latency, head, percentage; rate_limited or none "
                               "for dropped traces).")
                         .Register(registry)),
      kept_error_(sampled_total_.Add({{"policy", "error"}, {"decision", "kept"}})),
      kept_latency_(sampled_total_.Add({{"policy", "latency"}, {"decision", "kept"}})),
      kept_head_(sampled_total_.Add({{"policy", "head"}, {"decision", "kept"}})),
      kept_percentage_(sampled_total_.Add({{"policy", "percentage"}, {"decision", "kept"}})),
      dropped_rate_limited_(
          sampled_total_.Add({{"policy", "rate_limited"}, {"decision", "dropped"}})),
      dropped_none_(sampled_total_.Add({{"policy", "none"}, {"decision", "dropped"}})) {}

bool TailSampler::InPercentage(std::string_view trace_id, double percentage) {
  if (percentage <= 0) return false;
  if (percentage >= 100) return true;
  // The low 8 bytes of a trace id are random (W3C requires it of new ids): a share of them is a
  // share of the traces.
  uint64_t low = 0;
  for (size_t i = trace_id.size() >= 8 ? trace_id.size() - 8 : 0; i < trace_id.size(); ++i) {
    low = (low << 8) | static_cast<unsigned char>(trace_id[i]);
  }
  const double threshold =
      percentage / 100.0 * static_cast<double>(std::numeric_limits<uint64_t>::max());
  return static_cast<double>(low) < threshold;
}

size_t TailSampler::RootSpan(const AssembledTrace& trace) {
  for (size_t i = 0; i < trace.spans.size(); ++i) {
    if (trace.spans[i].parent_span_id == 0) return i;
  }
  // No root: the earliest span stands for the trace.
  return static_cast<size_t>(std::min_element(trace.spans.begin(), trace.spans.end(),
                                              [](const SpanSummary& a, const SpanSummary& b) {
                                                return a.start_time_unix_nano <
                                                       b.start_time_unix_nano;
                                              }) -
                             trace.spans.begin());
}

bool TailSampler::TakeToken(const AssembledTrace& trace, absl::Time now, ServiceOf service_of) {
  if (config_.per_service_rate_limit <= 0) return true;
  if (buckets_.size() >= kMaxBuckets) buckets_.clear();
  const double capacity = std::max(1.0, config_.per_service_rate_limit);
  auto [it, inserted] = buckets_.try_emplace(service_of(RootSpan(trace)));
  Bucket& bucket = it->second;
  if (inserted) {
    bucket.tokens = capacity;
  } else {
    const double elapsed = absl::ToDoubleSeconds(now - bucket.refilled);
    if (elapsed > 0) {
      bucket.tokens = std::min(capacity, bucket.tokens + elapsed * config_.per_service_rate_limit);
    }
  }
  bucket.refilled = std::max(bucket.refilled, now);
  if (bucket.tokens < 1) return false;
  bucket.tokens -= 1;
  return true;
}

SamplingVerdict TailSampler::Decide(const AssembledTrace& trace, absl::Time now,
                                    ServiceOf service_of) {
  if (trace.spans.empty()) {
    dropped_none_.Increment();
    return {false, "none"};
  }
  if (config_.keep_errors) {
    for (const SpanSummary& span : trace.spans) {
      if (span.error) {
        kept_error_.Increment();
        return {true, "error"};
      }
    }
  }
  if (config_.latency_threshold > absl::ZeroDuration()) {
    const uint64_t duration_ns = TraceDurationNs(trace);
    if (duration_ns > 0 && absl::Nanoseconds(duration_ns) >= config_.latency_threshold) {
      kept_latency_.Increment();
      return {true, "latency"};
    }
  }
  std::string_view policy;
  if (config_.keep_head_sampled && trace.head_sampled) {
    policy = "head";
  } else if (InPercentage(trace.trace_id, config_.percentage)) {
    policy = "percentage";
  } else {
    dropped_none_.Increment();
    return {false, "none"};
  }
  if (!TakeToken(trace, now, service_of)) {
    dropped_rate_limited_.Increment();
    return {false, "rate_limited"};
  }
  (policy == "head" ? kept_head_ : kept_percentage_).Increment();
  return {true, policy};
}

}  // namespace meshtel::collector
