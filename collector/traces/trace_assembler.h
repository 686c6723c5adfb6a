#pragma once
// TraceAssembler: groups spans by trace id in memory and decides when each trace is complete.
//
// It holds span summaries (span_summary.h: ids, times, error, marks), never spans: per record
// added, the summaries of its spans and the record itself (TraceRecord: its store key and its
// serialized bytes), from which the trace pipeline builds the spans of a trace once it is kept.
// The marks and the fitting below are made on the summaries; AssembledTrace::fits says which
// span got which meshtel.fitted_to_parent_ns attribute.
//
// A trace is decided
//   - once its root span (a span without a parent) has arrived and no span of the trace arrived
//     for assembly.idle_timeout: a proxy reports a hop when it has finished, so the root's hop is
//     over and the idle time lets the records of the other hops (other proxies, other batches)
//     come in — a short trace is decided quickly, a long one waits for its own spans;
//   - or assembly.max_wait after its first span arrived, root or not (a trace whose root hop is
//     outside the mesh);
//   - or early, when holding it would pass assembly.max_traces or assembly.max_spans: the oldest
//     trace goes first, its spans marked SPAN_ANOMALY_TRACE_EVICTED, counted.
// A decided trace's spans are checked and marked, never dropped: a span ending before it starts,
// a span id seen twice in the trace, a span whose parent is not in the trace (an orphan) — each
// counted in meshtel_trace_span_anomalies_total{anomaly}. Spans of a trace that arrive after it
// was decided form a new trace (their spans are then orphans).
// Each child is then fitted into its parent's time window, parents first: the two proxies of a
// hop each time its end (the server side when its last write completes, the client side when it
// has read the last byte), so on a busy host the server span can end a little after the client
// span that caused it. A fitted span is trimmed to the window and carries the attribute
// meshtel.fitted_to_parent_ns (the nanoseconds trimmed), counted in
// meshtel_trace_spans_fitted_total — as Jaeger's and Zipkin's clock-skew adjusters do, at
// assembly instead of at display.
//
// Progress: OldestPendingKey() is the store key of the first record of the oldest trace still
// pending, so a reader of the store can resume there after a restart and lose no trace.
//
// Threading: not thread-safe; one thread (the trace pipeline's) calls everything. Time is passed
// in, so tests drive it. Ownership: the assembler owns the summaries and records it holds.

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/time/time.h"
#include "collector/store/store_key.h"
#include "collector/traces/span_summary.h"
#include "collector/traces/traces_config.h"
#include "meshtel/v1/span.pb.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"

namespace meshtel::collector {

// Why a trace was decided.
enum class TraceDecidedBy { kRootIdle, kMaxWait, kEvicted };

struct CompiledPolicy;

// One stored record of a trace: what its spans are built from if the trace is kept.
struct TraceRecord {
  StoreKey key;
  std::string bytes;  // the stored meshtel.v1.RequestRecord, serialized
  // The telemetry policy its spans were summarized under (null without one), so they are built
  // under the same one.
  std::shared_ptr<const CompiledPolicy> policy;
};

struct AssembledTrace {
  std::string trace_id;
  // In arrival order (a record's spans in SpanBuilder's order); marked and fitted.
  std::vector<SpanSummary> spans;
  std::vector<TraceRecord> records;  // in arrival order; SpanSummary::record indexes it
  std::vector<SpanFit> fits;         // in the order they were made
  bool head_sampled = false;  // a proxy sampled some hop of it, or a received span was sampled
  TraceDecidedBy decided_by = TraceDecidedBy::kRootIdle;
};

class TraceAssembler {
 public:
  // Registers the assembler's metrics in `registry`, which must outlive it.
  TraceAssembler(const TraceAssemblyConfig& config, prometheus::Registry& registry);
  ~TraceAssembler();

  TraceAssembler(const TraceAssembler&) = delete;
  TraceAssembler& operator=(const TraceAssembler&) = delete;

  // Adds the summaries of the spans of one record (`record`, keys passed in increasing order)
  // of trace `trace_id` (16 bytes) that arrived at `now`. May decide older traces early (memory
  // bound); they come out of the next TakeDecided(). Nothing is added without a span.
  void Add(std::string_view trace_id, std::span<const SpanSummary> spans, TraceRecord record,
           bool head_sampled, absl::Time now);
  // Appends the traces decided by `now` to `out`.
  void TakeDecided(absl::Time now, std::vector<AssembledTrace>& out);

  // The key of the first record of the oldest pending trace; nullopt when none is pending.
  std::optional<StoreKey> OldestPendingKey() const;
  size_t traces_in_flight() const { return traces_.size(); }
  size_t spans_in_flight() const { return spans_in_flight_; }

 private:
  struct Pending;
  void Decide(Pending& pending, TraceDecidedBy by);
  void MarkAnomalies(AssembledTrace& trace);
  // `in_trace`: whether a span id is one of the trace's.
  void FitChildrenInParents(AssembledTrace& trace, absl::FunctionRef<bool(uint64_t)> in_trace);

  using TraceKey = std::pair<uint64_t, uint64_t>;  // the 16 id bytes, big-endian halves
  static TraceKey KeyOf(std::string_view trace_id);

  // A list of pending traces linked through the traces themselves (no node to allocate).
  struct PendingList {
    Pending* front = nullptr;
    Pending* back = nullptr;
  };
  // Appends `pending` to `list` / takes it out, through its link `link` (age or idle).
  template <typename Link>
  static void PushBack(PendingList& list, Pending* pending, Link Pending::*link);
  template <typename Link>
  static void Unlink(PendingList& list, Pending* pending, Link Pending::*link);

  const TraceAssemblyConfig config_;
  absl::flat_hash_map<TraceKey, std::unique_ptr<Pending>> traces_;
  PendingList by_age_;   // creation order (so also first-key order)
  PendingList by_idle_;  // least recently updated first; rootless idle traces leave it
  // Decided traces' objects, kept for the next new traces (up to kSparePending).
  std::vector<std::unique_ptr<Pending>> spare_;
  size_t spans_in_flight_ = 0;
  std::vector<AssembledTrace> decided_;  // decided early, waiting for TakeDecided()
  std::vector<uint32_t> fit_pending_;    // scratch of FitChildrenInParents
  std::vector<uint8_t> fit_visited_;     // scratch of FitChildrenInParents

  prometheus::Family<prometheus::Counter>& decided_total_;
  prometheus::Counter& decided_root_idle_;
  prometheus::Counter& decided_max_wait_;
  prometheus::Counter& decided_evicted_;
  prometheus::Family<prometheus::Counter>& anomalies_total_;
  prometheus::Counter& ends_before_start_;
  prometheus::Counter& duplicate_span_id_;
  prometheus::Counter& orphan_;
  prometheus::Counter& fitted_;
  prometheus::Gauge& traces_gauge_;
  prometheus::Gauge& spans_gauge_;
};

}  // namespace meshtel::collector
