#include "proxy/reporter/record_reporter.h"

#include <algorithm>
#include <utility>

#include "spdlog/spdlog.h"

namespace meshtel::proxy {
namespace {

using Clock = std::chrono::steady_clock;

uint64_t Fnv1a(uint64_t hash, std::string_view bytes) {
  for (unsigned char byte : bytes) {
    hash ^= byte;
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

// splitmix64's finalizer: spreads FNV's weak low bits over the whole word.
uint64_t Mix(uint64_t value) {
  value ^= value >> 30;
  value *= 0xbf58476d1ce4e5b9ULL;
  value ^= value >> 27;
  value *= 0x94d049bb133111ebULL;
  value ^= value >> 31;
  return value;
}

}  // namespace

uint64_t RendezvousWeight(std::string_view trace_id, std::string_view collector) {
  uint64_t hash = Fnv1a(0xcbf29ce484222325ULL, collector);
  hash = Fnv1a(hash ^ 0xff, trace_id);
  return Mix(hash);
}

RecordReporter::RecordReporter(const ReporterConfig& config, std::string instance_id,
                               AccessLogWriter* access_log)
    : config_(config),
      instance_id_(std::move(instance_id)),
      access_log_(access_log),
      queue_(config.max_queued_records) {
  const size_t count = config.collectors.size();
  const uint64_t share = std::max<uint64_t>(config.max_unacked_bytes / count, 64 << 10);
  for (const common::HostPort& address : config.collectors) {
    std::string stream_instance =
        count == 1 ? instance_id_ : instance_id_ + "@" + address.ToString();
    streams_.push_back(std::make_unique<CollectorStream>(
        config, address, std::move(stream_instance), share, counters_));
  }
  batcher_thread_ = std::thread([this] { BatcherLoop(); });
}

RecordReporter::~RecordReporter() { Shutdown(absl::ZeroDuration()); }

void RecordReporter::Submit(const meshtel::v1::RequestRecord& record) {
  submitted_records_.fetch_add(1, std::memory_order_relaxed);
  thread_local QueuedRecord encoded;
  if (!stopping_.load(std::memory_order_relaxed)) encoded.Encode(record);
  if (stopping_.load(std::memory_order_relaxed) || !queue_.TryPush(std::move(encoded))) {
    queue_drops_.fetch_add(1, std::memory_order_relaxed);
    counters_.dropped.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  // A full batch is waiting: wake the batcher (cheap when it is not asleep).
  if (queue_.ApproximateSize() == config_.max_batch_records) wake_.notify_one();
}

uint64_t RecordReporter::unacked_bytes() const {
  uint64_t bytes = 0;
  for (const auto& stream : streams_) bytes += stream->unacked_bytes();
  return bytes;
}

bool RecordReporter::connected() const {
  return std::any_of(streams_.begin(), streams_.end(),
                     [](const auto& stream) { return stream->connected(); });
}

std::vector<RecordReporter::CollectorStatus> RecordReporter::collectors() const {
  std::vector<CollectorStatus> statuses;
  for (const auto& stream : streams_) {
    statuses.push_back({stream->address(), stream->connected(), stream->unacked_bytes()});
  }
  return statuses;
}

void RecordReporter::BatcherLoop() {
  const auto flush_interval = absl::ToChronoMicroseconds(config_.flush_interval);
  while (!stopping_.load()) {
    {
      std::unique_lock<std::mutex> lock(wake_mutex_);
      wake_.wait_for(lock, flush_interval, [this] {
        return stopping_.load() || queue_.ApproximateSize() >= config_.max_batch_records;
      });
    }
    FailOver();
    CutBatches();
  }
  FailOver();
  CutBatches();
}

std::vector<size_t> RecordReporter::LiveStreams() const {
  const auto now = Clock::now();
  const auto failover_after = absl::ToChronoMicroseconds(config_.failover_after);
  std::vector<size_t> live;
  for (size_t i = 0; i < streams_.size(); ++i) {
    if (now - streams_[i]->last_connected() < failover_after) live.push_back(i);
  }
  return live;
}

size_t RecordReporter::Route(const QueuedRecord& record, const std::vector<size_t>& live) {
  if (live.size() == 1) return live.front();
  if (record.sampled && record.trace_id_size > 0) {
    size_t best = live.front();
    uint64_t best_weight = 0;
    for (size_t index : live) {
      const uint64_t weight = RendezvousWeight(record.TraceId(), streams_[index]->address());
      if (weight >= best_weight) {
        best_weight = weight;
        best = index;
      }
    }
    return best;
  }
  return live[next_spread_++ % live.size()];
}

void RecordReporter::CutBatches() {
  std::vector<size_t> live = LiveStreams();
  if (live.empty()) {
    for (size_t i = 0; i < streams_.size(); ++i) live.push_back(i);
  }
  // Records dropped at the queue are reported with the next batch of a live stream.
  const uint64_t queue_drops = queue_drops_.load();
  if (queue_drops > queue_drops_reported_) {
    streams_[live.front()]->AddDropped(queue_drops - queue_drops_reported_);
    if (access_log_ != nullptr) access_log_->CountDropped(queue_drops - queue_drops_reported_);
    queue_drops_reported_ = queue_drops;
  }
  // At most one queue's worth per pass, so that a steady stream of records cannot starve
  // failover.
  std::vector<QueuedRecord> records;
  QueuedRecord record;
  while (records.size() < queue_.capacity() && queue_.TryPop(record)) {
    records.push_back(std::move(record));
  }
  if (access_log_ != nullptr) {
    for (const QueuedRecord& queued : records) access_log_->AppendSerialized(queued.bytes);
    access_log_->Publish();
  }
  Distribute(records, live);
}

void RecordReporter::Distribute(std::vector<QueuedRecord>& records,
                                const std::vector<size_t>& live) {
  std::vector<std::vector<std::string>> batches(streams_.size());
  for (QueuedRecord& queued : records) {
    const size_t index = Route(queued, live);
    batches[index].push_back(std::move(queued.bytes));
    if (batches[index].size() >= config_.max_batch_records) {
      streams_[index]->Enqueue(std::move(batches[index]));
      batches[index].clear();
    }
  }
  for (size_t index = 0; index < streams_.size(); ++index) {
    if (!batches[index].empty()) streams_[index]->Enqueue(std::move(batches[index]));
  }
}

void RecordReporter::FailOver() {
  if (streams_.size() < 2) return;
  const std::vector<size_t> live = LiveStreams();
  if (live.empty()) return;  // nowhere to go: records stay where they are
  for (size_t dead = 0; dead < streams_.size(); ++dead) {
    if (std::find(live.begin(), live.end(), dead) != live.end()) continue;
    if (streams_[dead]->unacked_records() == 0) continue;
    std::vector<QueuedRecord> records = streams_[dead]->TakeUnacked();
    spdlog::warn("collector {} is down: {} unacknowledged records go to the other collectors",
                 streams_[dead]->address(), records.size());
    failed_over_records_.fetch_add(records.size());
    Distribute(records, live);
  }
}

uint64_t RecordReporter::Shutdown(absl::Duration deadline) {
  if (shut_down_.exchange(true)) return 0;
  {
    std::lock_guard<std::mutex> lock(wake_mutex_);
    stopping_.store(true);
  }
  wake_.notify_all();
  batcher_thread_.join();  // its last pass batches what was queued

  const absl::Time end = absl::Now() + deadline;
  uint64_t unacked_records = 0;
  for (const auto& stream : streams_) {
    unacked_records += stream->WaitForAcks(std::max(end - absl::Now(), absl::ZeroDuration()));
  }
  for (const auto& stream : streams_) stream->Stop();
  if (unacked_records > 0) {
    spdlog::warn("{} records were not acknowledged by the collector before shutdown",
                 unacked_records);
  }
  return unacked_records;
}

}  // namespace meshtel::proxy
