#include "collector/traces/trace_assembler.h"

#include <algorithm>
#include <utility>

namespace meshtel::collector {
namespace {

// Traces of at most this many spans are marked and fitted by scans, without hash maps.
constexpr size_t kSmallTrace = 32;
// Decided traces' objects kept for new ones; room reserved in a new trace for its first records
// and spans (a hop's two records and their spans, without growing).
constexpr size_t kSparePending = 4096;
constexpr size_t kReservedRecords = 4;
constexpr size_t kReservedSpans = 4;

}  // namespace

struct TraceAssembler::Pending {
  struct Link {
    Pending* previous = nullptr;
    Pending* next = nullptr;
  };

  TraceKey trace_id;
  std::vector<SpanSummary> spans;
  std::vector<TraceRecord> records;
  StoreKey first_key;
  absl::Time first_arrival;
  absl::Time last_arrival;
  bool has_root = false;
  bool head_sampled = false;
  bool parked = false;  // idle without a root: out of by_idle_, waiting for max_wait
  Link age;             // in by_age_
  Link idle;            // in by_idle_ (unless parked)
};

template <typename Link>
void TraceAssembler::PushBack(PendingList& list, Pending* pending, Link Pending::*link) {
  (pending->*link).previous = list.back;
  (pending->*link).next = nullptr;
  if (list.back != nullptr) {
    (list.back->*link).next = pending;
  } else {
    list.front = pending;
  }
  list.back = pending;
}

template <typename Link>
void TraceAssembler::Unlink(PendingList& list, Pending* pending, Link Pending::*link) {
  Link& own = pending->*link;
  if (own.previous != nullptr) {
    (own.previous->*link).next = own.next;
  } else {
    list.front = own.next;
  }
  if (own.next != nullptr) {
    (own.next->*link).previous = own.previous;
  } else {
    list.back = own.previous;
  }
  own = Link{};
}

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

TraceAssembler::TraceKey TraceAssembler::KeyOf(std::string_view trace_id) {
  TraceKey key{0, 0};
  for (size_t i = 0; i < trace_id.size() && i < 16; ++i) {
    uint64_t& half = i < 8 ? key.first : key.second;
    half = (half << 8) | static_cast<unsigned char>(trace_id[i]);
  }
  return key;
}

void TraceAssembler::Add(std::string_view trace_id, std::span<const SpanSummary> spans,
                         TraceRecord record, bool head_sampled, absl::Time now) {
  if (spans.empty()) return;
  const TraceKey trace_key = KeyOf(trace_id);
  auto [it, inserted] = traces_.try_emplace(trace_key);
  if (inserted) {
    if (spare_.empty()) {
      it->second = std::make_unique<Pending>();
    } else {
      it->second = std::move(spare_.back());
      spare_.pop_back();
    }
    Pending& created = *it->second;
    created.trace_id = trace_key;
    created.first_key = record.key;
    created.first_arrival = now;
    created.records.reserve(kReservedRecords);
    created.spans.reserve(std::max(kReservedSpans, spans.size()));
    PushBack(by_age_, &created, &Pending::age);
    PushBack(by_idle_, &created, &Pending::idle);
  }
  Pending& pending = *it->second;
  pending.last_arrival = now;
  pending.head_sampled = pending.head_sampled || head_sampled;
  if (pending.parked) {
    pending.parked = false;
    PushBack(by_idle_, &pending, &Pending::idle);
  } else if (!inserted && by_idle_.back != &pending) {
    Unlink(by_idle_, &pending, &Pending::idle);
    PushBack(by_idle_, &pending, &Pending::idle);
  }
  spans_in_flight_ += spans.size();
  const uint32_t record_index = static_cast<uint32_t>(pending.records.size());
  pending.records.push_back(std::move(record));
  for (const SpanSummary& span : spans) {
    if (span.parent_span_id == 0) pending.has_root = true;
    SpanSummary& held = pending.spans.emplace_back(span);
    held.record = record_index;
    held.anomalies = 0;
  }
  // Memory bound: decide the oldest traces (never the one just added while others remain).
  while ((traces_.size() > config_.max_traces || spans_in_flight_ > config_.max_spans) &&
         by_age_.front != nullptr) {
    Pending* oldest = by_age_.front;
    if (oldest == &pending && oldest->age.next == nullptr) break;  // the only one
    if (oldest == &pending) oldest = oldest->age.next;
    Decide(*oldest, TraceDecidedBy::kEvicted);
  }
}

void TraceAssembler::TakeDecided(absl::Time now, std::vector<AssembledTrace>& out) {
  while (by_age_.front != nullptr && now - by_age_.front->first_arrival >= config_.max_wait) {
    Decide(*by_age_.front, TraceDecidedBy::kMaxWait);
  }
  while (by_idle_.front != nullptr && now - by_idle_.front->last_arrival >= config_.idle_timeout) {
    Pending& idle = *by_idle_.front;
    if (idle.has_root) {
      Decide(idle, TraceDecidedBy::kRootIdle);
    } else {
      Unlink(by_idle_, &idle, &Pending::idle);
      idle.parked = true;
    }
  }
  for (AssembledTrace& trace : decided_) out.push_back(std::move(trace));
  decided_.clear();
  traces_gauge_.Set(static_cast<double>(traces_.size()));
  spans_gauge_.Set(static_cast<double>(spans_in_flight_));
}

std::optional<StoreKey> TraceAssembler::OldestPendingKey() const {
  if (by_age_.front == nullptr) return std::nullopt;
  return by_age_.front->first_key;
}

void TraceAssembler::Decide(Pending& pending, TraceDecidedBy by) {
  Unlink(by_age_, &pending, &Pending::age);
  if (!pending.parked) Unlink(by_idle_, &pending, &Pending::idle);
  spans_in_flight_ -= pending.spans.size();
  AssembledTrace& trace = decided_.emplace_back();
  trace.trace_id = SpanIdBytes(pending.trace_id.first) + SpanIdBytes(pending.trace_id.second);
  trace.spans = std::move(pending.spans);
  trace.records = std::move(pending.records);
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
      for (SpanSummary& span : trace.spans) {
        span.anomalies |= 1u << meshtel::v1::SPAN_ANOMALY_TRACE_EVICTED;
      }
      break;
  }
  MarkAnomalies(trace);
  // `pending` is kept for a later trace (its vectors were moved out, so it holds no memory).
  auto it = traces_.find(pending.trace_id);
  if (spare_.size() < kSparePending) {
    pending.spans.clear();
    pending.records.clear();
    pending.has_root = false;
    pending.head_sampled = false;
    pending.parked = false;
    spare_.push_back(std::move(it->second));
  }
  traces_.erase(it);
}

void TraceAssembler::MarkAnomalies(AssembledTrace& trace) {
  std::vector<SpanSummary>& spans = trace.spans;
  // Each span id's first position in the trace: duplicates and orphans here, parents below. A
  // small trace (the usual) is searched in place instead, allocating nothing.
  const bool small = spans.size() <= kSmallTrace;
  absl::flat_hash_map<uint64_t, uint32_t> index;
  if (!small) index.reserve(spans.size());
  for (size_t i = 0; i < spans.size(); ++i) {
    SpanSummary& span = spans[i];
    if (span.end_time_unix_nano < span.start_time_unix_nano) {
      span.anomalies |= 1u << meshtel::v1::SPAN_ANOMALY_ENDS_BEFORE_START;
      ends_before_start_.Increment();
    }
    bool duplicate = false;
    if (small) {
      for (size_t j = 0; j < i && !duplicate; ++j) duplicate = spans[j].span_id == span.span_id;
    } else {
      duplicate = !index.try_emplace(span.span_id, static_cast<uint32_t>(i)).second;
    }
    if (duplicate) {
      span.anomalies |= 1u << meshtel::v1::SPAN_ANOMALY_DUPLICATE_SPAN_ID;
      duplicate_span_id_.Increment();
    }
  }
  const auto in_trace = [&](uint64_t span_id) {
    if (!small) return index.contains(span_id);
    for (const SpanSummary& span : spans) {
      if (span.span_id == span_id) return true;
    }
    return false;
  };
  for (SpanSummary& span : spans) {
    if (span.parent_span_id != 0 && !in_trace(span.parent_span_id)) {
      span.anomalies |= 1u << meshtel::v1::SPAN_ANOMALY_ORPHAN;
      orphan_.Increment();
    }
  }
  FitChildrenInParents(trace, in_trace);
}

void TraceAssembler::FitChildrenInParents(AssembledTrace& trace,
                                          absl::FunctionRef<bool(uint64_t)> in_trace) {
  std::vector<SpanSummary>& spans = trace.spans;
  const bool small = spans.size() <= kSmallTrace;
  // Parents first: a span fitted into its parent then holds its own children (in trace order;
  // a small trace's are found by a scan).
  absl::flat_hash_map<uint64_t, std::vector<uint32_t>> children;
  std::vector<uint32_t>& pending = fit_pending_;
  pending.clear();
  for (size_t i = 0; i < spans.size(); ++i) {
    const uint64_t parent = spans[i].parent_span_id;
    if (parent != 0 && !small) children[parent].push_back(static_cast<uint32_t>(i));
    if (parent == 0 || !in_trace(parent)) pending.push_back(static_cast<uint32_t>(i));
  }
  std::vector<uint8_t>& visited = fit_visited_;
  visited.assign(spans.size(), 0);
  const auto fit = [&](uint32_t child_index, uint64_t start, uint64_t end) {
    SpanSummary& child = spans[child_index];
    pending.push_back(child_index);
    if (end < start || child.end_time_unix_nano < child.start_time_unix_nano) return;
    const uint64_t fitted_start = std::clamp<uint64_t>(child.start_time_unix_nano, start, end);
    const uint64_t fitted_end = std::clamp<uint64_t>(child.end_time_unix_nano, fitted_start, end);
    const uint64_t trimmed =
        (fitted_start - child.start_time_unix_nano) + (child.end_time_unix_nano - fitted_end);
    if (trimmed == 0) return;
    child.start_time_unix_nano = fitted_start;
    child.end_time_unix_nano = fitted_end;
    trace.fits.push_back(SpanFit{child_index, trimmed});
    fitted_.Increment();
  };
  while (!pending.empty()) {
    const uint32_t parent = pending.back();
    pending.pop_back();
    if (visited[parent] != 0) continue;  // a cycle of parents: each span is fitted once
    visited[parent] = 1;
    const uint64_t parent_id = spans[parent].span_id;
    const uint64_t start = spans[parent].start_time_unix_nano;
    const uint64_t end = spans[parent].end_time_unix_nano;
    if (small) {
      for (size_t i = 0; i < spans.size(); ++i) {
        if (spans[i].parent_span_id == parent_id) fit(static_cast<uint32_t>(i), start, end);
      }
      continue;
    }
    auto it = children.find(parent_id);
    if (it == children.end()) continue;
    for (uint32_t child_index : it->second) fit(child_index, start, end);
  }
}

}  // namespace meshtel::collector
