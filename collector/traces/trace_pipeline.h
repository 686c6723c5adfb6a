#pragma once
// TracePipeline: turns stored proxy records and received spans into stored traces.
//
// One thread reads the logs family (the ingest log) in key order after its persisted cursor (like
// an exporter, with the store's visibility rule, so a late commit is never skipped), summarizes
// each proxy record's spans (SpanBuilder::Summarize) and each received span (an entry with only
// `received_span`, from OTLP), groups the summaries into traces with the records they came from,
// serialized (TraceAssembler), tail-samples each decided trace (TailSampler), builds the spans of
// each kept trace from its records (SpanBuilder::Encode of a RecordView of the held bytes — parsed
// only when a policy adds formatter tags —, or the received span as it is, with the marks and
// fitted times the assembler gave their summaries) and writes them to the spans family
// with their trace_index entries — where the trace exporters' delivery picks them up — in one
// write with its own progress. A dropped trace never has its spans built: memory per in-flight
// span is its summary and its share of its record's bytes, not a span message. A received span
// keeps its ids, times, attributes, resource and scope; a parent id that is no valid span id makes
// it a root; any anomaly bits it came with are cleared (the assembler sets its own); its W3C
// sampled flag is its head decision, as a proxy record's `sampled` is. One trace may mix
// proxy-built and received spans (an SDK's span as the child of the proxy's SERVER span). A
// received span without a valid trace or span id is left out and counted. Entries with only
// `received_log` are skipped (not counted as read). The records are read as their stored bytes;
// without a policy a proxy record's summary is taken from a few of its fields read from those
// bytes (record_summary_fields.h), anything else is parsed whole; a record that does not decode
// is left out and counted (meshtel_trace_records_undecodable_total).
//
// Policy (when a PolicyEnforcer is given): a proxy record whose workload's side has span
// reporting disabled gives no span (counted in meshtel_trace_records_unreported_total); phase
// spans follow the side's phase_spans; its formatter custom tags are added; its spans carry the
// span exporters its tracing providers name (Span.exporters).
//
// Durability: records are acknowledged to proxies once they are in the logs family, before any
// span exists; the pipeline's cursor (in cursors, as "@trace-assembly") stays before the first
// record of every trace still being assembled, so after a crash it reads those records again and
// no acknowledged hop is missing from its trace. Records it had already read before the crash
// (up to its stored read_high) whose spans are already stored are skipped, so a kept trace is
// not written twice. Retention counts records it deletes before the pipeline read them under
// exporter "@trace-assembly". A write that fails (disk full) is retried, holding the decided
// spans; ingest is never held back.
//
// Threading: Start() and Stop() from one controlling thread. Ownership: the store and registry
// must outlive the pipeline.

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string_view>
#include <thread>

#include "absl/status/status.h"
#include "collector/policy/policy_enforcer.h"
#include "collector/store/record_store.h"
#include "collector/traces/record_view.h"
#include "collector/traces/span_builder.h"
#include "collector/traces/tail_sampler.h"
#include "collector/traces/trace_assembler.h"
#include "collector/traces/traces_config.h"
#include "prometheus/counter.h"
#include "prometheus/registry.h"

namespace meshtel::collector {

class TracePipeline {
 public:
  // The name of the pipeline's cursor over the logs family.
  static constexpr std::string_view kReaderName = "@trace-assembly";

  // `policy` may be null (no telemetry policy); it must outlive the pipeline.
  TracePipeline(const TracesConfig& config, RecordStore& store, prometheus::Registry& registry,
                const PolicyEnforcer* policy = nullptr);
  ~TracePipeline();

  TracePipeline(const TracePipeline&) = delete;
  TracePipeline& operator=(const TracePipeline&) = delete;

  // Loads the pipeline's progress and starts its thread.
  absl::Status Start();
  // Stops the thread. Traces still being assembled are not written: the next start reads their
  // records again.
  void Stop();

 private:
  void Run();
  // Builds and assembles one batch of records; false when there was nothing to read.
  bool ReadOnce(absl::Time now);
  // Appends `received` to `out` as it is stored: a parent id that is no span id cleared, the
  // sender's anomaly bits replaced by the assembler's `marks` (with its fitted times).
  static void TakeReceivedSpan(const meshtel::v1::Span& received, const SpanMarks& marks,
                               SerializedSpans& out);
  // Appends the spans of the kept `trace` to kept_, built from its records.
  void BuildKept(const AssembledTrace& trace);
  // Appends the spans of one held record to kept_, with `marks`; false when its bytes no longer
  // parse.
  bool BuildHeld(const TraceRecord& held, const SpanMarks& marks);
  // The service name of span `span` of `trace` (from its record).
  std::string ServiceOf(const AssembledTrace& trace, size_t span);
  // Writes `kept_` and the progress; retries until it succeeds or the pipeline stops.
  void WriteKept();
  // Waits up to `duration`; false when stopping.
  bool Sleep(absl::Duration duration);

  const TracesConfig config_;
  RecordStore& store_;
  const PolicyEnforcer* const policy_;
  // Scratch, reused: formatter tags of a record's policy, summaries of a record's spans; a held
  // record read in place (view_) or, when the view cannot be used, parsed (parsed_) to build its
  // spans.
  std::vector<std::pair<std::string, const AccessLogFormat*>> formatter_tags_;
  std::vector<SpanSummary> summaries_;
  // The records of the last read, reused by the next (RecordStore::ReadInto), and the fields
  // of one that a summary needs (ReadSummaryFields).
  std::vector<StoredRecord> read_records_;
  meshtel::v1::RequestRecord summary_fields_;
  meshtel::v1::RequestRecord parsed_;
  RecordView view_;
  SpanBuilder builder_;
  TraceAssembler assembler_;
  TailSampler sampler_;

  StoreKey read_after_;          // the last record read
  StoreKey skip_written_up_to_;  // records up to here were read before a restart
  SerializedSpans kept_;         // the spans of kept traces, for the next write
  absl::Time last_progress_write_ = absl::InfinitePast();
  bool progress_dirty_ = false;

  prometheus::Counter& records_read_;
  prometheus::Counter& records_skipped_;
  prometheus::Counter& records_unreported_;
  prometheus::Counter& records_undecodable_;
  prometheus::Counter& received_spans_;
  prometheus::Counter& received_spans_invalid_;
  prometheus::Counter& spans_written_;
  prometheus::Counter& write_errors_;

  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::mutex sleep_mutex_;
  std::condition_variable sleep_wakeup_;
};

}  // namespace meshtel::collector
