#include "collector/metrics/request_metrics.h"

#include <time.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <mutex>
#include <span>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/hash/hash.h"
#include "absl/strings/string_view.h"
#include "collector/metrics/istio_labels.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "spdlog/spdlog.h"

namespace meshtel::collector {
namespace {

constexpr std::string_view kRequestsTotal = "istio_requests_total";
constexpr std::string_view kDuration = "istio_request_duration_milliseconds";
constexpr std::string_view kRequestBytes = "istio_request_bytes";
constexpr std::string_view kResponseBytes = "istio_response_bytes";
constexpr std::string_view kRequestMessages = "istio_request_messages_total";
constexpr std::string_view kResponseMessages = "istio_response_messages_total";
constexpr std::string_view kTcpSentBytes = "istio_tcp_sent_bytes_total";
constexpr std::string_view kTcpReceivedBytes = "istio_tcp_received_bytes_total";
constexpr std::string_view kTcpOpened = "istio_tcp_connections_opened_total";
constexpr std::string_view kTcpClosed = "istio_tcp_connections_closed_total";

constexpr std::array<IstioMetric, 4> kRequestTableMetrics = {
    IstioMetric::kRequestCount, IstioMetric::kRequestDuration, IstioMetric::kRequestSize,
    IstioMetric::kResponseSize};
constexpr std::array<IstioMetric, 2> kMessageTableMetrics = {IstioMetric::kGrpcRequestMessages,
                                                             IstioMetric::kGrpcResponseMessages};
constexpr std::array<IstioMetric, 4> kTcpTableMetrics = {
    IstioMetric::kTcpSentBytes, IstioMetric::kTcpReceivedBytes, IstioMetric::kTcpOpenedConnections,
    IstioMetric::kTcpClosedConnections};

// Series key: the plan's name-set id (series of different label names never share a key), then
// each label value prefixed by its length, so distinct tuples never collide. Sized once and
// filled with memcpy: `key` is a reused buffer, so this allocates only when it grows.
void BuildSeriesKey(uint32_t name_set_id, std::span<const std::string_view> values,
                    std::string& key) {
  size_t total = sizeof(name_set_id);
  for (std::string_view value : values) total += sizeof(uint32_t) + value.size();
  key.resize(total);
  char* out = key.data();
  std::memcpy(out, &name_set_id, sizeof(name_set_id));
  out += sizeof(name_set_id);
  for (std::string_view value : values) {
    const uint32_t size = static_cast<uint32_t>(value.size());
    std::memcpy(out, &size, sizeof(size));
    out += sizeof(size);
    std::memcpy(out, value.data(), value.size());
    out += value.size();
  }
}

// True when no byte of `text` has its high bit set, eight bytes at a time. On a series key this
// means every value is ASCII (a length prefix or name-set id has a high bit only from 128 up,
// which then takes the slow path).
bool IsAsciiText(std::string_view text) {
  uint64_t seen = 0;
  size_t i = 0;
  for (; i + 8 <= text.size(); i += 8) {
    uint64_t word;
    std::memcpy(&word, text.data() + i, sizeof(word));
    seen |= word;
  }
  for (; i < text.size(); ++i) seen |= static_cast<unsigned char>(text[i]);
  return (seen & 0x8080808080808080ull) == 0;
}

// The label values of a key, in order.
void DecodeSeriesKey(std::string_view key, std::span<std::string_view> values) {
  size_t at = sizeof(uint32_t);  // the name-set id
  for (std::string_view& value : values) {
    uint32_t size = 0;
    std::memcpy(&size, key.data() + at, sizeof(size));
    at += sizeof(size);
    value = key.substr(at, size);
    at += size;
  }
}

std::string RenderLabels(std::span<const std::string> names,
                         std::span<const std::string_view> values) {
  std::string text;
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) text.push_back(',');
    text.append(names[i]);
    text.append("=\"");
    AppendEscapedLabelValue(values[i], text);
    text.push_back('"');
  }
  return text;
}

// The `le` values of kIstioHistogramBounds plus "+Inf", per format.
const std::vector<std::string>& LeTexts(ExpositionFormat format) {
  static const auto make = [](ExpositionFormat f) {
    std::vector<std::string> texts;
    for (double bound : kIstioHistogramBounds) {
      std::string text;
      AppendLeValue(f, bound, text);
      texts.push_back(text);
    }
    texts.push_back("+Inf");
    return texts;
  };
  static const std::vector<std::string> text = make(ExpositionFormat::kPrometheusText);
  static const std::vector<std::string> open_metrics = make(ExpositionFormat::kOpenMetrics);
  return format == ExpositionFormat::kOpenMetrics ? open_metrics : text;
}

struct RequestValues {
  uint64_t requests = 0;
  HistogramCounts duration_ms;
  HistogramCounts request_bytes;
  HistogramCounts response_bytes;
};

struct MessageValues {
  uint64_t request_messages = 0;
  uint64_t response_messages = 0;
};

struct TcpValues {
  uint64_t sent_bytes = 0;
  uint64_t received_bytes = 0;
  uint64_t opened = 0;
  uint64_t closed = 0;
};

// Label text shared by the live series and every snapshot that copied it.
struct SeriesLabels {
  const std::vector<std::string>* names = nullptr;  // LabelNameSet(): lives as long as the process
  std::string key;   // name-set id and length-prefixed values (series_key)
  std::string text;  // rendered once: reporter="source",source_workload="...",...
};

template <class Values>
struct SnapshotRow {
  std::shared_ptr<const SeriesLabels> labels;
  Values values;
  uint16_t metrics = 0;  // MetricBit()s of the metrics this series has numbers for
};

// The series of one metric family (the request metrics, the message counters or the TCP
// metrics): sharded series keyed by label set, each holding the whole family's numbers and the
// set of metrics that have counted into it; per metric a limit of label sets; one overflow
// series per label-name set.
template <class Values>
class SeriesTable {
 public:
  SeriesTable(std::span<const IstioMetric> metrics, size_t shard_count, uint64_t max_series,
              prometheus::Family<prometheus::Counter>* overflow_family,
              prometheus::Family<prometheus::Gauge>* series_family)
      : metrics_(metrics.begin(), metrics.end()), max_series_(max_series), counts_(metrics.size()) {
    shards_.reserve(shard_count);
    for (size_t i = 0; i < shard_count; ++i) shards_.push_back(std::make_unique<Shard>());
    for (IstioMetric metric : metrics) {
      const std::string name(MetricName(metric));
      overflow_counters_.push_back(
          overflow_family != nullptr ? &overflow_family->Add({{"metric", name}}) : nullptr);
      series_gauges_.push_back(series_family != nullptr ? &series_family->Add({{"metric", name}})
                                                        : nullptr);
    }
  }

  // Applies `update(values, metrics)` for the metrics `metrics` (MetricBit()s of this family) to
  // the series of `values` (valid UTF-8, named by plan.names; `series_key` is
  // BuildSeriesKey(plan.name_set_id, values)), creating it, or for the metrics whose limit is
  // reached falling back to the overflow series of the plan's label names.
  template <class Fn>
  void Update(std::span<const std::string_view> values, const LabelPlan& plan,
              std::string_view series_key, int64_t now_ms, uint16_t metrics, const Fn& update) {
    // absl's own string hash: std::string_view would hash through std::hash (Debian's Abseil
    // keeps its own string_view type), several times slower on 400-byte keys.
    const absl::string_view key(series_key.data(), series_key.size());
    Shard& shard = *shards_[absl::HashOf(key) % shards_.size()];
    uint16_t rest = metrics;
    {
      std::lock_guard<std::mutex> lock(shard.mutex);
      auto it = shard.series.find(key);
      if (it == shard.series.end()) {
        if (Reserve(metrics)) {
          auto series = std::make_unique<Series>();
          series->labels = MakeLabels(plan, values);
          const std::string& stored = series->labels->key;
          it = shard.series
                   .emplace(absl::string_view(stored.data(), stored.size()), std::move(series))
                   .first;
          it->second->metrics = metrics;
        }
      } else {
        const uint16_t missing = metrics & static_cast<uint16_t>(~it->second->metrics);
        if (missing != 0 && Reserve(missing)) it->second->metrics |= missing;
      }
      if (it != shard.series.end()) {
        const uint16_t granted = metrics & it->second->metrics;
        update(it->second->values, granted);
        it->second->last_update_ms = now_ms;
        rest = metrics & static_cast<uint16_t>(~granted);
        if (rest == 0) return;
      }
    }
    // A metric's limit is reached and this label set is new to it.
    for (size_t i = 0; i < metrics_.size(); ++i) {
      if ((rest & MetricBit(metrics_[i])) != 0 && overflow_counters_[i] != nullptr) {
        overflow_counters_[i]->Increment();
      }
    }
    if (!overflow_warned_.exchange(true, std::memory_order_relaxed)) {
      spdlog::warn(
          "metrics: {} reached {} label sets; new label sets now update the series labelled "
          "\"{}\" (see meshtel_metrics_series_overflow_total)",
          MetricName(FirstMetric(rest)), max_series_, kOverflowLabelValue);
    }
    std::lock_guard<std::mutex> lock(overflow_mutex_);
    std::unique_ptr<Series>& overflow = overflow_[plan.name_set_id];
    if (!overflow) {
      overflow = std::make_unique<Series>();
      std::vector<std::string_view> overflow_values(plan.names.size(), kOverflowLabelValue);
      overflow->labels = MakeLabels(plan, overflow_values);
    }
    overflow->metrics |= rest;
    update(overflow->values, rest);
    overflow->last_update_ms = now_ms;
  }

  size_t ExpireIdle(int64_t cutoff_ms) {
    size_t removed = 0;
    std::vector<uint64_t> released(metrics_.size(), 0);
    for (const auto& shard : shards_) {
      std::lock_guard<std::mutex> lock(shard->mutex);
      removed += absl::erase_if(shard->series, [&](const auto& entry) {
        if (entry.second->last_update_ms >= cutoff_ms) return false;
        for (size_t i = 0; i < metrics_.size(); ++i) {
          if ((entry.second->metrics & MetricBit(metrics_[i])) != 0) ++released[i];
        }
        return true;
      });
    }
    for (size_t i = 0; i < metrics_.size(); ++i) {
      if (released[i] == 0) continue;
      counts_[i].fetch_sub(released[i], std::memory_order_relaxed);
      if (series_gauges_[i] != nullptr) {
        series_gauges_[i]->Decrement(static_cast<double>(released[i]));
      }
    }
    std::lock_guard<std::mutex> lock(overflow_mutex_);
    removed += absl::erase_if(overflow_, [cutoff_ms](const auto& entry) {
      return entry.second->last_update_ms < cutoff_ms;
    });
    return removed;
  }

  // Every series (overflow last), ordered by label text.
  std::vector<SnapshotRow<Values>> Snapshot() const {
    std::vector<SnapshotRow<Values>> rows;
    rows.reserve(size(metrics_.front()) + 1);  // a guess: series come and go meanwhile
    for (const auto& shard : shards_) {
      std::lock_guard<std::mutex> lock(shard->mutex);
      for (const auto& [key, series] : shard->series) {
        rows.push_back({series->labels, series->values, series->metrics});
      }
    }
    std::sort(rows.begin(), rows.end(),
              [](const SnapshotRow<Values>& a, const SnapshotRow<Values>& b) {
                return a.labels->text < b.labels->text;
              });
    std::lock_guard<std::mutex> lock(overflow_mutex_);
    const size_t first_overflow = rows.size();
    for (const auto& [id, series] : overflow_) {
      rows.push_back({series->labels, series->values, series->metrics});
    }
    std::sort(rows.begin() + static_cast<ptrdiff_t>(first_overflow), rows.end(),
              [](const SnapshotRow<Values>& a, const SnapshotRow<Values>& b) {
                return a.labels->text < b.labels->text;
              });
    return rows;
  }

  // Label sets of `metric` counted against the limit.
  size_t size(IstioMetric metric) const {
    for (size_t i = 0; i < metrics_.size(); ++i) {
      if (metrics_[i] == metric) return counts_[i].load(std::memory_order_relaxed);
    }
    return 0;
  }

 private:
  struct Series {
    std::shared_ptr<const SeriesLabels> labels;
    Values values;
    int64_t last_update_ms = 0;
    uint16_t metrics = 0;
  };
  struct Shard {
    mutable std::mutex mutex;
    // Keys view into the series' own SeriesLabels::key, which never moves.
    absl::flat_hash_map<absl::string_view, std::unique_ptr<Series>> series ABSL_GUARDED_BY(mutex);
  };

  static IstioMetric FirstMetric(uint16_t bits) {
    for (size_t metric = 0; metric < kIstioMetricCount; ++metric) {
      if ((bits & MetricBit(static_cast<IstioMetric>(metric))) != 0) {
        return static_cast<IstioMetric>(metric);
      }
    }
    return IstioMetric::kRequestCount;
  }

  static std::shared_ptr<const SeriesLabels> MakeLabels(const LabelPlan& plan,
                                                        std::span<const std::string_view> values) {
    auto labels = std::make_shared<SeriesLabels>();
    labels->names = &LabelNameSet(plan.name_set_id);
    BuildSeriesKey(plan.name_set_id, values, labels->key);
    labels->text = RenderLabels(plan.names, values);
    return labels;
  }

  // Counts one more label set for each metric of `bits` if every one of their limits allows it
  // (else counts none).
  bool Reserve(uint16_t bits) {
    size_t reserved = 0;
    for (; reserved < metrics_.size(); ++reserved) {
      if ((bits & MetricBit(metrics_[reserved])) == 0) continue;
      std::atomic<uint64_t>& count = counts_[reserved];
      uint64_t current = count.load(std::memory_order_relaxed);
      bool taken = true;
      do {
        if (current >= max_series_) {
          taken = false;
          break;
        }
      } while (!count.compare_exchange_weak(current, current + 1, std::memory_order_relaxed));
      if (!taken) break;
    }
    if (reserved < metrics_.size()) {
      for (size_t i = 0; i < reserved; ++i) {
        if ((bits & MetricBit(metrics_[i])) != 0)
          counts_[i].fetch_sub(1, std::memory_order_relaxed);
      }
      return false;
    }
    for (size_t i = 0; i < metrics_.size(); ++i) {
      if ((bits & MetricBit(metrics_[i])) != 0 && series_gauges_[i] != nullptr) {
        series_gauges_[i]->Increment();
      }
    }
    return true;
  }

  const std::vector<IstioMetric> metrics_;
  const uint64_t max_series_;
  std::vector<std::unique_ptr<Shard>> shards_;
  std::vector<std::atomic<uint64_t>> counts_;  // per metric (metrics_ order)
  std::atomic<bool> overflow_warned_{false};
  std::vector<prometheus::Counter*> overflow_counters_;  // per metric; null without a registry
  std::vector<prometheus::Gauge*> series_gauges_;        // per metric; null without a registry
  mutable std::mutex overflow_mutex_;
  // By LabelPlan::name_set_id: one overflow series per set of label names.
  absl::flat_hash_map<uint32_t, std::unique_ptr<Series>> overflow_ ABSL_GUARDED_BY(overflow_mutex_);
};

// Writes a render through a buffer that stays in the CPU cache: the pieces of a line are copied
// with memcpy at a moving pointer (no per-piece capacity checks or calls into std::string), and
// `out` grows by one append per buffer. A row larger than the buffer (label values of tens of
// KiB) gets a larger buffer for itself.
class RenderWriter {
 public:
  explicit RenderWriter(std::string& out) : out_(out), buffer_(new char[kBufferBytes]) {
    begin_ = cursor_ = buffer_.get();
    end_ = begin_ + kBufferBytes;
  }
  ~RenderWriter() { Flush(); }
  RenderWriter(const RenderWriter&) = delete;
  RenderWriter& operator=(const RenderWriter&) = delete;

  // A pointer with room for `bytes`; write up to that many, then Commit() the end.
  char* Reserve(size_t bytes) {
    if (bytes > static_cast<size_t>(end_ - cursor_)) Grow(bytes);
    return cursor_;
  }
  void Commit(char* end) { cursor_ = end; }
  void Flush() {
    out_.append(begin_, static_cast<size_t>(cursor_ - begin_));
    cursor_ = begin_;
  }

 private:
  static constexpr size_t kBufferBytes = 256 * 1024;

  void Grow(size_t bytes) {
    Flush();
    if (bytes > static_cast<size_t>(end_ - begin_)) {
      buffer_.reset(new char[bytes]);
      begin_ = cursor_ = buffer_.get();
      end_ = begin_ + bytes;
    }
  }

  std::string& out_;
  std::unique_ptr<char[]> buffer_;
  char* begin_;
  char* cursor_;
  char* end_;
};

char* Put(char* at, std::string_view text) {
  std::memcpy(at, text.data(), text.size());
  return at + text.size();
}

constexpr size_t kMaxUintText = 20;

char* PutUint(char* at, uint64_t value) { return std::to_chars(at, at + kMaxUintText, value).ptr; }

// The end of each bucket line before its count, per bound: `le="0.5"} `.
const std::vector<std::string>& LeSuffixes(ExpositionFormat format) {
  static const auto make = [](ExpositionFormat f) {
    std::vector<std::string> suffixes;
    for (const std::string& le : LeTexts(f)) suffixes.push_back("le=\"" + le + "\"} ");
    return suffixes;
  };
  static const std::vector<std::string> text = make(ExpositionFormat::kPrometheusText);
  static const std::vector<std::string> open_metrics = make(ExpositionFormat::kOpenMetrics);
  return format == ExpositionFormat::kOpenMetrics ? open_metrics : text;
}

// One histogram family: _bucket (cumulative, le ascending, +Inf last), _sum, _count. A series
// without labels prints `name_bucket{le="..."}` and `name_sum value`, as prometheus-cpp does.
template <class Rows>
bool AnyRowOf(const Rows& rows, uint16_t bit) {
  return std::any_of(rows.begin(), rows.end(),
                     [bit](const auto& row) { return (row.metrics & bit) != 0; });
}

void RenderHistogram(ExpositionFormat format, std::string_view name, std::string_view help,
                     std::string_view unit, const std::vector<SnapshotRow<RequestValues>>& rows,
                     IstioMetric metric, HistogramCounts RequestValues::*member, std::string& out) {
  const uint16_t bit = MetricBit(metric);
  if (!AnyRowOf(rows, bit)) return;
  AppendMetadata(format, name, MetricKind::kHistogram, help, unit, out);
  const std::vector<std::string>& suffixes = LeSuffixes(format);
  size_t max_suffix = 0;
  for (const std::string& suffix : suffixes) max_suffix = std::max(max_suffix, suffix.size());
  const std::string bucket = std::string(name) + "_bucket{";
  const std::string sum = std::string(name) + "_sum";
  const std::string count = std::string(name) + "_count";
  constexpr size_t kBuckets = kIstioHistogramBounds.size() + 1;

  RenderWriter writer(out);
  for (const auto& row : rows) {
    if ((row.metrics & bit) == 0) continue;
    const std::string_view labels = row.labels->text;
    const HistogramCounts& histogram = row.values.*member;
    // Every line of the row at once: buckets, then _sum and _count.
    const size_t bucket_line = bucket.size() + labels.size() + 1 + max_suffix + kMaxUintText + 1;
    const size_t total_line = count.size() + labels.size() + 3 + kMaxDoubleText + 1;
    char* at = writer.Reserve(kBuckets * bucket_line + 2 * total_line);
    uint64_t cumulative = 0;
    for (size_t i = 0; i < kBuckets; ++i) {
      cumulative += histogram.counts[i];
      at = Put(at, bucket);
      if (!labels.empty()) {
        at = Put(at, labels);
        *at++ = ',';
      }
      at = Put(at, suffixes[i]);
      at = PutUint(at, cumulative);
      *at++ = '\n';
    }
    at = Put(at, sum);
    if (!labels.empty()) {
      *at++ = '{';
      at = Put(at, labels);
      *at++ = '}';
    }
    *at++ = ' ';
    at = WritePrometheusDouble(histogram.sum, at);
    *at++ = '\n';
    at = Put(at, count);
    if (!labels.empty()) {
      *at++ = '{';
      at = Put(at, labels);
      *at++ = '}';
    }
    *at++ = ' ';
    at = PutUint(at, histogram.count);
    *at++ = '\n';
    writer.Commit(at);
  }
}

template <class Rows, class Value>
void RenderCounter(ExpositionFormat format, std::string_view name, std::string_view help,
                   const Rows& rows, IstioMetric metric, Value member, std::string& out) {
  const uint16_t bit = MetricBit(metric);
  if (!AnyRowOf(rows, bit)) return;
  AppendMetadata(format, name, MetricKind::kCounter, help, "", out);
  RenderWriter writer(out);
  for (const auto& row : rows) {
    if ((row.metrics & bit) == 0) continue;
    const std::string_view labels = row.labels->text;
    char* at = writer.Reserve(name.size() + labels.size() + 3 + kMaxUintText + 1);
    at = Put(at, name);
    if (!labels.empty()) {  // no labels: "name value", as prometheus-cpp prints it
      *at++ = '{';
      at = Put(at, labels);
      *at++ = '}';
    }
    *at++ = ' ';
    at = PutUint(at, row.values.*member);
    *at++ = '\n';
    writer.Commit(at);
  }
}

// The label values of `plan` for one record: the standard values themselves when the plan is a
// prefix of them, else evaluated into `buffer` (sized for every plan beforehand).
std::span<const std::string_view> PlanValues(const LabelPlan& plan,
                                             const meshtel::v1::RequestRecord& record,
                                             std::span<const std::string_view> standard,
                                             const IstioLabelScratch& scratch,
                                             std::vector<std::string_view>& buffer) {
  if (plan.standard_prefix) return standard.subspan(0, plan.names.size());
  for (size_t i = 0; i < plan.sources.size(); ++i) {
    buffer[i] = EvaluateLabel(plan.sources[i], record, standard, scratch);
  }
  return std::span<const std::string_view>(buffer.data(), plan.sources.size());
}

// Builds the series key of `values`; when a value is not valid UTF-8, repairs the values into
// `repaired` (views in `buffer`, which `values` may already be) and rebuilds the key.
std::span<const std::string_view> KeyValues(const LabelPlan& plan,
                                            std::span<const std::string_view> values,
                                            std::vector<std::string>& repaired,
                                            std::vector<std::string_view>& buffer,
                                            std::string& key) {
  BuildSeriesKey(plan.name_set_id, values, key);
  if (IsAsciiText(key)) return values;
  bool changed = false;
  for (size_t i = 0; i < values.size(); ++i) {
    std::string_view value = values[i];
    if (!IsValidUtf8(value)) {
      repaired[i].clear();
      AppendUtf8Repaired(value, repaired[i]);
      value = repaired[i];
      changed = true;
    }
    buffer[i] = value;
  }
  if (!changed) return values;
  values = std::span<const std::string_view>(buffer.data(), values.size());
  BuildSeriesKey(plan.name_set_id, values, key);
  return values;
}

}  // namespace

std::string_view MetricName(IstioMetric metric) {
  switch (metric) {
    case IstioMetric::kRequestCount:
      return kRequestsTotal;
    case IstioMetric::kRequestDuration:
      return kDuration;
    case IstioMetric::kRequestSize:
      return kRequestBytes;
    case IstioMetric::kResponseSize:
      return kResponseBytes;
    case IstioMetric::kGrpcRequestMessages:
      return kRequestMessages;
    case IstioMetric::kGrpcResponseMessages:
      return kResponseMessages;
    case IstioMetric::kTcpSentBytes:
      return kTcpSentBytes;
    case IstioMetric::kTcpReceivedBytes:
      return kTcpReceivedBytes;
    case IstioMetric::kTcpOpenedConnections:
      return kTcpOpened;
    case IstioMetric::kTcpClosedConnections:
      return kTcpClosed;
  }
  return {};
}

struct RequestMetrics::Tables {
  Tables(const RequestMetricsOptions& options, prometheus::Family<prometheus::Counter>* overflow,
         prometheus::Family<prometheus::Gauge>* series)
      : requests(kRequestTableMetrics, options.shard_count, options.max_series_per_metric, overflow,
                 series),
        messages(kMessageTableMetrics, options.shard_count, options.max_series_per_metric, overflow,
                 series),
        tcp(kTcpTableMetrics, options.shard_count, options.max_series_per_metric, overflow,
            series) {}

  SeriesTable<RequestValues> requests;
  SeriesTable<MessageValues> messages;
  SeriesTable<TcpValues> tcp;
};

void HistogramCounts::Observe(double value) {
  const auto it =
      std::lower_bound(kIstioHistogramBounds.begin(), kIstioHistogramBounds.end(), value);
  ++counts[static_cast<size_t>(it - kIstioHistogramBounds.begin())];
  sum += value;
  ++count;
}

RequestMetrics::RequestMetrics(RequestMetricsOptions options) : options_(std::move(options)) {
  options_.shard_count = std::max<size_t>(options_.shard_count, 1);
  options_.max_series_per_metric = std::max<uint64_t>(options_.max_series_per_metric, 1);
  if (!options_.label_plans) options_.label_plans = std::make_shared<const MetricLabelPlans>();
  prometheus::Family<prometheus::Counter>* overflow = nullptr;
  prometheus::Family<prometheus::Gauge>* series = nullptr;
  if (options_.registry != nullptr) {
    overflow = &prometheus::BuildCounter()
                    .Name("meshtel_metrics_series_overflow_total")
                    .Help(
                        "Updates that went to a metric's overflow series because the metric "
                        "held metrics.max_series_per_metric label sets.")
                    .Register(*options_.registry);
    series = &prometheus::BuildGauge()
                  .Name("meshtel_metrics_series")
                  .Help(
                      "Label sets a metric holds, counted against metrics.max_series_per_metric "
                      "(the overflow series not included).")
                  .Register(*options_.registry);
  }
  tables_ = std::make_unique<Tables>(options_, overflow, series);
}

RequestMetrics::~RequestMetrics() = default;

int64_t RequestMetrics::NowMs() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
  return static_cast<int64_t>(now.tv_sec) * 1000 + now.tv_nsec / 1'000'000;
}

void RequestMetrics::Record(const meshtel::v1::RequestRecord& record, int64_t now_ms) {
  Record(record, *options_.label_plans, now_ms);
}

void RequestMetrics::Record(const meshtel::v1::RequestRecord& record, const MetricLabelPlans& plans,
                            int64_t now_ms) {
  thread_local IstioLabelScratch scratch;
  thread_local std::vector<std::string> repaired;
  thread_local std::vector<std::string_view> buffer;
  thread_local std::string key;
  // Sized before any view into them is taken; grows only for plans with more labels.
  if (buffer.size() < plans.max_labels()) {
    buffer.resize(plans.max_labels());
    repaired.resize(plans.max_labels());
  }
  const auto standard = IstioRequestLabelValues(record, scratch);
  const RecordMode mode = RecordModeOf(record);
  const auto each_group = [&](MetricFamily family, auto& table, const auto& update) {
    for (const PlanGroup& group : plans.groups(family, mode)) {
      const LabelPlan& plan = plans.plan(group.metric, mode);
      auto values = PlanValues(plan, record, standard, scratch, buffer);
      values = KeyValues(plan, values, repaired, buffer, key);
      table.Update(values, plan, key, now_ms, group.metrics, update);
    }
  };

  if (record.request_protocol() == meshtel::v1::REQUEST_PROTOCOL_TCP) {
    // One closed connection (Envoy's final TCP entry); the bytes of its whole life.
    each_group(MetricFamily::kTcp, tables_->tcp, [&record](TcpValues& series, uint16_t metrics) {
      if (metrics & MetricBit(IstioMetric::kTcpSentBytes)) {
        series.sent_bytes += record.response_bytes();
      }
      if (metrics & MetricBit(IstioMetric::kTcpReceivedBytes)) {
        series.received_bytes += record.request_bytes();
      }
      if (metrics & MetricBit(IstioMetric::kTcpOpenedConnections)) ++series.opened;
      if (metrics & MetricBit(IstioMetric::kTcpClosedConnections)) ++series.closed;
    });
    return;
  }

  each_group(MetricFamily::kRequest, tables_->requests,
             [&record](RequestValues& series, uint16_t metrics) {
               if (metrics & MetricBit(IstioMetric::kRequestCount)) ++series.requests;
               if (metrics & MetricBit(IstioMetric::kRequestDuration)) {
                 series.duration_ms.Observe(static_cast<double>(record.duration_ns()) / 1e6);
               }
               if (metrics & MetricBit(IstioMetric::kRequestSize)) {
                 series.request_bytes.Observe(static_cast<double>(record.request_bytes()));
               }
               if (metrics & MetricBit(IstioMetric::kResponseSize)) {
                 series.response_bytes.Observe(static_cast<double>(record.response_bytes()));
               }
             });

  if (record.request_protocol() == meshtel::v1::REQUEST_PROTOCOL_GRPC) {
    each_group(MetricFamily::kMessage, tables_->messages,
               [&record](MessageValues& series, uint16_t metrics) {
                 if (metrics & MetricBit(IstioMetric::kGrpcRequestMessages)) {
                   series.request_messages += record.request_messages();
                 }
                 if (metrics & MetricBit(IstioMetric::kGrpcResponseMessages)) {
                   series.response_messages += record.response_messages();
                 }
               });
  }
}

size_t RequestMetrics::ExpireIdle(int64_t now_ms, int64_t idle_ms) {
  const int64_t cutoff = now_ms - idle_ms;
  size_t removed = 0;
  removed += tables_->requests.ExpireIdle(cutoff);
  removed += tables_->messages.ExpireIdle(cutoff);
  removed += tables_->tcp.ExpireIdle(cutoff);
  return removed;
}

size_t RequestMetrics::series_count() const {
  return tables_->requests.size(IstioMetric::kRequestCount);
}

size_t RequestMetrics::message_series_count() const {
  return tables_->messages.size(IstioMetric::kGrpcRequestMessages);
}

const MetricLabelPlans& RequestMetrics::label_plans() const { return *options_.label_plans; }

void RequestMetrics::Render(ExpositionFormat format, std::string& out) const {
  const std::vector<SnapshotRow<RequestValues>> requests = tables_->requests.Snapshot();
  const std::vector<SnapshotRow<MessageValues>> messages = tables_->messages.Snapshot();
  const std::vector<SnapshotRow<TcpValues>> tcp = tables_->tcp.Snapshot();
  // The whole text at once, so `out` grows once: an upper bound per sample line of its label text
  // plus the name, `le` and number, which stay under 120 bytes.
  size_t bound = 4096;
  const auto add_rows = [&bound](const auto& rows, IstioMetric metric, size_t lines) {
    for (const auto& row : rows) {
      if ((row.metrics & MetricBit(metric)) != 0) bound += lines * (row.labels->text.size() + 120);
    }
  };
  add_rows(requests, IstioMetric::kRequestCount, 1);
  add_rows(requests, IstioMetric::kRequestDuration, kIstioHistogramBounds.size() + 3);
  add_rows(requests, IstioMetric::kRequestSize, kIstioHistogramBounds.size() + 3);
  add_rows(requests, IstioMetric::kResponseSize, kIstioHistogramBounds.size() + 3);
  add_rows(messages, IstioMetric::kGrpcRequestMessages, 1);
  add_rows(messages, IstioMetric::kGrpcResponseMessages, 1);
  add_rows(tcp, IstioMetric::kTcpSentBytes, 1);
  add_rows(tcp, IstioMetric::kTcpReceivedBytes, 1);
  add_rows(tcp, IstioMetric::kTcpOpenedConnections, 1);
  add_rows(tcp, IstioMetric::kTcpClosedConnections, 1);
  ReserveBody(out, bound);
  RenderCounter(format, kRequestsTotal, "Requests handled, by Istio's standard labels.", requests,
                IstioMetric::kRequestCount, &RequestValues::requests, out);
  RenderHistogram(
      format, kDuration,
      "Request duration from the first downstream byte to the end of the response, in ms.",
      "milliseconds", requests, IstioMetric::kRequestDuration, &RequestValues::duration_ms, out);
  RenderHistogram(format, kRequestBytes, "Request size as received from the downstream, in bytes.",
                  "bytes", requests, IstioMetric::kRequestSize, &RequestValues::request_bytes, out);
  RenderHistogram(format, kResponseBytes, "Response size as sent to the downstream, in bytes.",
                  "bytes", requests, IstioMetric::kResponseSize, &RequestValues::response_bytes,
                  out);
  RenderCounter(format, kRequestMessages, "gRPC messages sent by the client.", messages,
                IstioMetric::kGrpcRequestMessages, &MessageValues::request_messages, out);
  RenderCounter(format, kResponseMessages, "gRPC messages sent by the server.", messages,
                IstioMetric::kGrpcResponseMessages, &MessageValues::response_messages, out);
  RenderCounter(format, kTcpSentBytes, "Bytes sent to the downstream over TCP connections.", tcp,
                IstioMetric::kTcpSentBytes, &TcpValues::sent_bytes, out);
  RenderCounter(format, kTcpReceivedBytes,
                "Bytes received from the downstream over TCP connections.", tcp,
                IstioMetric::kTcpReceivedBytes, &TcpValues::received_bytes, out);
  RenderCounter(format, kTcpOpened, "TCP connections opened.", tcp,
                IstioMetric::kTcpOpenedConnections, &TcpValues::opened, out);
  RenderCounter(format, kTcpClosed, "TCP connections closed.", tcp,
                IstioMetric::kTcpClosedConnections, &TcpValues::closed, out);
  if (!options_.build_tag.empty()) {
    AppendMetadata(format, "istio_build", MetricKind::kGauge,
                   "The build of the meshtel proxies reporting to this collector.", "", out);
    out.append("istio_build{component=\"proxy\",tag=\"");
    std::string tag;
    AppendUtf8Repaired(options_.build_tag, tag);
    AppendEscapedLabelValue(tag, out);
    out.append("\"} 1\n");
  }
}

void RequestMetrics::VisitSamples(const std::function<void(const MetricSample&)>& visit) const {
  const std::vector<std::string>& le_texts = LeTexts(ExpositionFormat::kPrometheusText);
  std::vector<SampleLabel> labels;
  std::vector<std::string_view> values;
  // The labels of one row, `labels[0, count)`; `count` is returned.
  const auto row_labels = [&](const SeriesLabels& series) {
    const std::vector<std::string>& names = *series.names;
    if (labels.size() < names.size() + 1) labels.resize(names.size() + 1);
    if (values.size() < names.size()) values.resize(names.size());
    const std::span<std::string_view> row_values(values.data(), names.size());
    DecodeSeriesKey(series.key, row_values);
    for (size_t i = 0; i < names.size(); ++i) labels[i] = {names[i], row_values[i]};
    return names.size();
  };
  const auto histogram = [&](std::string_view prefix, size_t count, const HistogramCounts& counts) {
    const std::span<const SampleLabel> base(labels.data(), count);
    const std::string bucket = std::string(prefix) + "_bucket";
    uint64_t cumulative = 0;
    for (size_t i = 0; i < counts.counts.size(); ++i) {
      cumulative += counts.counts[i];
      labels[count] = {"le", le_texts[i]};
      visit({bucket, std::span<const SampleLabel>(labels.data(), count + 1),
             static_cast<double>(cumulative)});
    }
    visit({std::string(prefix) + "_sum", base, counts.sum});
    visit({std::string(prefix) + "_count", base, static_cast<double>(counts.count)});
  };
  const auto counter = [&](const auto& rows, IstioMetric metric, std::string_view name,
                           auto member) {
    for (const auto& row : rows) {
      if ((row.metrics & MetricBit(metric)) == 0) continue;
      const size_t count = row_labels(*row.labels);
      visit({name, std::span<const SampleLabel>(labels.data(), count),
             static_cast<double>(row.values.*member)});
    }
  };
  const auto histograms = [&](const auto& rows, IstioMetric metric, std::string_view name,
                              HistogramCounts RequestValues::*member) {
    for (const auto& row : rows) {
      if ((row.metrics & MetricBit(metric)) == 0) continue;
      histogram(name, row_labels(*row.labels), row.values.*member);
    }
  };

  const std::vector<SnapshotRow<RequestValues>> requests = tables_->requests.Snapshot();
  counter(requests, IstioMetric::kRequestCount, kRequestsTotal, &RequestValues::requests);
  histograms(requests, IstioMetric::kRequestDuration, kDuration, &RequestValues::duration_ms);
  histograms(requests, IstioMetric::kRequestSize, kRequestBytes, &RequestValues::request_bytes);
  histograms(requests, IstioMetric::kResponseSize, kResponseBytes, &RequestValues::response_bytes);

  const std::vector<SnapshotRow<MessageValues>> messages = tables_->messages.Snapshot();
  counter(messages, IstioMetric::kGrpcRequestMessages, kRequestMessages,
          &MessageValues::request_messages);
  counter(messages, IstioMetric::kGrpcResponseMessages, kResponseMessages,
          &MessageValues::response_messages);

  const std::vector<SnapshotRow<TcpValues>> tcp = tables_->tcp.Snapshot();
  counter(tcp, IstioMetric::kTcpSentBytes, kTcpSentBytes, &TcpValues::sent_bytes);
  counter(tcp, IstioMetric::kTcpReceivedBytes, kTcpReceivedBytes, &TcpValues::received_bytes);
  counter(tcp, IstioMetric::kTcpOpenedConnections, kTcpOpened, &TcpValues::opened);
  counter(tcp, IstioMetric::kTcpClosedConnections, kTcpClosed, &TcpValues::closed);

  if (!options_.build_tag.empty()) {
    std::string tag;
    AppendUtf8Repaired(options_.build_tag, tag);
    const SampleLabel build[] = {{"component", "proxy"}, {"tag", tag}};
    visit({"istio_build", build, 1});
  }
}

}  // namespace meshtel::collector
