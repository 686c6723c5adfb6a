#include "collector/traces/trace_assembler.h"

#include <algorithm>
#include <utility>

namespace meshtel::collector {

struct TraceAssembler::Pending {
  std::string trace_id;
  std::vector<meshtel::v1::Span> spans;
  StoreKey first_key;
  absl::Time first_arrival;
  absl::Time last_arrival;
  bool has_root = false;
  bool head_sampled = false;
  bool parked = false;  // idle without a root: out of by_idle_, waiting for max_wait
  std::list<Pending*>::iterator age_position;
  std::list<Pending*>::iterator idle_position;
};

TraceAssembler::TraceAssembler(const TraceAssemblyConfig& config, prometheus::Registry& registry)
    : config_(config),
      decided_total_(prometheus::BuildCounter()
                         .Name("meshtel_traces_assembled_total")
                         .Help("Traces the assembler decided, by why: root_idle (root arrived, "
                               "then no span for idle_timeout), max_wait, evicted (memory bound).")
                         .Register(registry)),
      decided_root_idle_(decided_total_.Add({{"decided_by", "root_idle"}})),
      decided_max_wait_(decided_total_.Add({{"decided_by", "max_wait"}})),
      decided_evicted_(decided_total_.Add({{"decided_by", "evicted"}})),
      anomalies_total_(prometheus::BuildCounter()
                           .Name("meshtel_trace_span_anomalies_total")
                           .Help("Spans kept but marked when their trace was decided, by anomaly.")
                           .Register(registry)),
      ends_before_start_(anomalies_total_.Add({{"anomaly", "ends_before_start"}})),
      duplicate_span_id_(anomalies_total_.Add({{"anomaly", "duplicate_span_id"}})),
      orphan_(anomalies_total_.Add({{"anomaly", "orphan"}})),
      fitted_(prometheus::BuildCounter()
                  .Name("meshtel_trace_spans_fitted_total")
                  .Help("Spans whose times stood outside their parent's (the two proxies of a hop "
                        "time its end separately) and were fitted into it.")
                  .Register(registry)
                  .Add({})),
      traces_gauge_(prometheus::BuildGauge()
                        .Name("meshtel_trace_assembly_traces")
                        .Help("Traces held by the assembler, waiting to be decided.")
                        .Register(registry)
                        .Add({})),
      spans_gauge_(prometheus::BuildGauge()
                       .Name("meshtel_trace_assembly_spans")
                       .Help("Spans held by the assembler, waiting for their trace's decision.")
                       .Register(registry)
                       .Add({})) {}

TraceAssembler::~TraceAssembler() = default;

void TraceAssembler::Add(const StoreKey& key, std::vector<meshtel::v1::Span> spans,
                         bool head_sampled, absl::Time now) {
  if (spans.empty()) return;
  const std::string& trace_id = spans.front().trace_id();
  auto [it, inserted] = traces_.try_emplace(trace_id);
  if (inserted) {
    it->second = std::make_unique<Pending>();
    Pending& created = *it->second;
    created.trace_id = trace_id;
    created.first_key = key;
    created.first_arrival = now;
    created.age_position = by_age_.insert(by_age_.end(), &created);
    created.idle_position = by_idle_.insert(by_idle_.end(), &created);
  }
  Pending& pending = *it->second;
  pending.last_arrival = now;
  pending.head_sampled = pending.head_sampled || head_sampled;
  if (pending.parked) {
    pending.parked = false;
    pending.idle_position = by_idle_.insert(by_idle_.end(), &pending);
  } else if (!inserted) {
    by_idle_.splice(by_idle_.end(), by_idle_, pending.idle_position);
  }
  spans_in_flight_ += spans.size();
  for (meshtel::v1::Span& span : spans) {
    if (span.parent_span_id().empty()) pending.has_root = true;
    pending.spans.push_back(std::move(span));
  }
  // Memory bound: decide the oldest traces (never the one just added while others remain).
  while ((traces_.size() > config_.max_traces || spans_in_flight_ > config_.max_spans) &&
         !by_age_.empty()) {
    Pending* oldest = by_age_.front();
    if (oldest == &pending && by_age_.size() == 1) break;
    if (oldest == &pending) oldest = *std::next(by_age_.begin());
    Decide(*oldest, TraceDecidedBy::kEvicted);
  }
}

void TraceAssembler::TakeDecided(absl::Time now, std::vector<AssembledTrace>& out) {
  while (!by_age_.empty() && now - by_age_.front()->first_arrival >= config_.max_wait) {
    Decide(*by_age_.front(), TraceDecidedBy::kMaxWait);
  }
  while (!by_idle_.empty() && now - by_idle_.front()->last_arrival >= config_.idle_timeout) {
    Pending& idle = *by_idle_.front();
    if (idle.has_root) {
      Decide(idle, TraceDecidedBy::kRootIdle);
    } else {
      by_idle_.pop_front();
      idle.parked = true;
    }
  }
  for (AssembledTrace& trace : decided_) out.push_back(std::move(trace));
  decided_.clear();
  traces_gauge_.Set(static_cast<double>(traces_.size()));
  spans_gauge_.Set(static_cast<double>(spans_in_flight_));
}

std::optional<StoreKey> TraceAssembler::OldestPendingKey() const {
  if (by_age_.empty()) return std::nullopt;
  return by_age_.front()->first_key;
}

void TraceAssembler::Decide(Pending& pending, TraceDecidedBy by) {
  by_age_.erase(pending.age_position);
  if (!pending.parked) by_idle_.erase(pending.idle_position);
  spans_in_flight_ -= pending.spans.size();
  AssembledTrace& trace = decided_.emplace_back();
  trace.trace_id = pending.trace_id;
  trace.spans = std::move(pending.spans);
  trace.head_sampled = pending.head_sampled;
  trace.decided_by = by;
  switch (by) {
    case TraceDecidedBy::kRootIdle:
      decided_root_idle_.Increment();
      break;
    case TraceDecidedBy::kMaxWait:
      decided_max_wait_.Increment();
      break;
    case TraceDecidedBy::kEvicted:
      decided_evicted_.Increment();
      for (meshtel::v1::Span& span : trace.spans) {
        span.set_anomalies(span.anomalies() | (1u << meshtel::v1::SPAN_ANOMALY_TRACE_EVICTED));
      }
      break;
  }
  MarkAnomalies(trace.spans);
  traces_.erase(pending.trace_id);  // destroys `pending`
}

void TraceAssembler::MarkAnomalies(std::vector<meshtel::v1::Span>& spans) {
  // Each span id's first position in the trace: duplicates and orphans here, parents below.
  absl::flat_hash_map<std::string, size_t> index;
  index.reserve(spans.size());
  for (size_t i = 0; i < spans.size(); ++i) {
    meshtel::v1::Span& span = spans[i];
    uint32_t marks = span.anomalies();
    if (span.end_time_unix_nano() < span.start_time_unix_nano()) {
      marks |= 1u << meshtel::v1::SPAN_ANOMALY_ENDS_BEFORE_START;
      ends_before_start_.Increment();
    }
    if (!index.try_emplace(span.span_id(), i).second) {
      marks |= 1u << meshtel::v1::SPAN_ANOMALY_DUPLICATE_SPAN_ID;
      duplicate_span_id_.Increment();
    }
    span.set_anomalies(marks);
  }
  for (meshtel::v1::Span& span : spans) {
    if (!span.parent_span_id().empty() && !index.contains(span.parent_span_id())) {
      span.set_anomalies(span.anomalies() | (1u << meshtel::v1::SPAN_ANOMALY_ORPHAN));
      orphan_.Increment();
    }
  }
  FitChildrenInParents(spans, index);
}

void TraceAssembler::FitChildrenInParents(std::vector<meshtel::v1::Span>& spans,
                                          const absl::flat_hash_map<std::string, size_t>& index) {
  // Parents first: a span fitted into its parent then holds its own children.
  absl::flat_hash_map<std::string, std::vector<size_t>> children;
  for (size_t i = 0; i < spans.size(); ++i) {
    if (!spans[i].parent_span_id().empty()) children[spans[i].parent_span_id()].push_back(i);
  }
  std::vector<size_t> pending;
  for (size_t i = 0; i < spans.size(); ++i) {
    if (spans[i].parent_span_id().empty() || !index.contains(spans[i].parent_span_id())) {
      pending.push_back(i);
    }
  }
  std::vector<bool> visited(spans.size(), false);
  while (!pending.empty()) {
    const size_t parent = pending.back();
    pending.pop_back();
    if (visited[parent]) continue;  // a cycle of parents: each span is fitted once
    visited[parent] = true;
    auto it = children.find(spans[parent].span_id());
    if (it == children.end()) continue;
    const uint64_t start = spans[parent].start_time_unix_nano();
    const uint64_t end = spans[parent].end_time_unix_nano();
    for (size_t child_index : it->second) {
      meshtel::v1::Span& child = spans[child_index];
      pending.push_back(child_index);
      if (end < start || child.end_time_unix_nano() < child.start_time_unix_nano()) continue;
      const uint64_t fitted_start = std::clamp<uint64_t>(child.start_time_unix_nano(), start, end);
      const uint64_t fitted_end =
          std::clamp<uint64_t>(child.end_time_unix_nano(), fitted_start, end);
      const uint64_t trimmed =
          (fitted_start - child.start_time_unix_nano()) + (child.end_time_unix_nano() - fitted_end);
      if (trimmed == 0) continue;
      child.set_start_time_unix_nano(fitted_start);
      child.set_end_time_unix_nano(fitted_end);
      meshtel::v1::SpanAttribute* mark = child.add_attributes();
      mark->set_key("meshtel.fitted_to_parent_ns");
      mark->set_int_value(static_cast<int64_t>(trimmed));
      fitted_.Increment();
    }
  }
}

}  // namespace meshtel::collector
