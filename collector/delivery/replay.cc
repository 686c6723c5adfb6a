#include "collector/delivery/replay.h"

#include <algorithm>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "collector/delivery/batch_delivery.h"
#include "spdlog/spdlog.h"

namespace meshtel::collector {
namespace {

constexpr size_t kMaxReasons = 5;
constexpr uint64_t kCountCap = 1'000'000'000;

}  // namespace

struct ReplayManager::Job {
  ReplayRequest request;
  DeliveryTarget target;
  std::thread thread;
  std::atomic<bool> cancel{false};
  std::mutex sleep_mutex;
  std::condition_variable sleep_wakeup;
  mutable std::mutex mutex;  // guards status
  ReplayStatus status;
  bool finished = false;  // guarded by mutex

  bool Sleep(absl::Duration duration) {
    std::unique_lock<std::mutex> lock(sleep_mutex);
    sleep_wakeup.wait_for(lock, absl::ToChronoNanoseconds(duration),
                          [this] { return cancel.load(); });
    return !cancel.load();
  }
  void Cancel() {
    {
      std::lock_guard<std::mutex> lock(sleep_mutex);
      cancel.store(true);
    }
    sleep_wakeup.notify_all();
  }
};

ReplayManager::ReplayManager(RecordStore& store, TargetFactory factory)
    : store_(store), factory_(std::move(factory)) {}

ReplayManager::~ReplayManager() { StopAll(); }

absl::StatusOr<ReplayStatus> ReplayManager::Start(const ReplayRequest& request) {
  if (request.to_unix_nano <= request.from_unix_nano) {
    return absl::InvalidArgumentError("replay: 'to' must be after 'from'");
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& job : jobs_) {
      std::lock_guard<std::mutex> job_lock(job->mutex);
      if (job->request.exporter == request.exporter && !job->finished) {
        return absl::FailedPreconditionError(
            absl::StrCat("replay: one for exporter '", request.exporter,
                         "' is running; cancel it first or wait for it"));
      }
    }
  }
  absl::StatusOr<DeliveryTarget> target = factory_(request);
  if (!target.ok()) return target.status();
  auto job = std::make_unique<Job>();
  job->request = request;
  job->target = *std::move(target);
  job->status.exporter = request.exporter;
  job->status.family = std::string(RecordFamilyName(request.family));
  job->status.from_unix_nano = request.from_unix_nano;
  job->status.to_unix_nano = request.to_unix_nano;
  job->status.state = "checking";
  ReplayStatus started = job->status;
  Job* raw = job.get();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    jobs_.push_back(std::move(job));
  }
  raw->thread = std::thread([this, raw] { Run(*raw); });
  spdlog::info("replay to {}: {} from {} to {}", request.exporter, started.family,
               request.from_unix_nano, request.to_unix_nano);
  return started;
}

absl::Status ReplayManager::Cancel(const std::string& exporter) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& job : jobs_) {
    std::lock_guard<std::mutex> job_lock(job->mutex);
    if (job->request.exporter == exporter && !job->finished) {
      job->Cancel();
      return absl::OkStatus();
    }
  }
  return absl::NotFoundError(absl::StrCat("replay: none runs for exporter '", exporter, "'"));
}

std::vector<ReplayStatus> ReplayManager::List() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<ReplayStatus> statuses;
  for (const auto& job : jobs_) {
    std::lock_guard<std::mutex> job_lock(job->mutex);
    statuses.push_back(job->status);
  }
  return statuses;
}

void ReplayManager::StopAll() {
  std::vector<Job*> jobs;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& job : jobs_) jobs.push_back(job.get());
  }
  for (Job* job : jobs) job->Cancel();
  for (Job* job : jobs) {
    if (job->thread.joinable()) job->thread.join();
  }
}

void ReplayManager::Run(Job& job) {
  const RecordFamily family = job.request.family;
  const StoreKey end{job.request.to_unix_nano, 0};
  // The range's first key is at or after `begin`; reads start after the key just before it.
  const StoreKey before_begin = job.request.from_unix_nano == 0
                                    ? StoreKey{}
                                    : StoreKey{job.request.from_unix_nano - 1, ~0ull};
  Encoder& encoder = *job.target.exporter.encoder;
  Sender& sender = *job.target.exporter.sender;
  const size_t page = job.target.batch.max_records;
  const auto finish = [&job](const std::string& state, const std::string& error) {
    std::lock_guard<std::mutex> lock(job.mutex);
    job.status.state = state;
    if (!error.empty()) job.status.error = error;
    job.finished = true;
  };

  absl::StatusOr<uint64_t> total = store_.Count(family, before_begin, end, kCountCap);
  if (!total.ok()) return finish("failed", total.status().ToString());
  {
    std::lock_guard<std::mutex> lock(job.mutex);
    job.status.total = *total;
  }
  // Pass 1: what would the backend refuse?
  StoreKey cursor = before_begin;
  for (;;) {
    if (job.cancel.load()) return finish("cancelled", "");
    absl::StatusOr<std::vector<StoredRecord>> records = store_.Read(family, cursor, end, page);
    if (!records.ok()) return finish("failed", records.status().ToString());
    if (records->empty()) break;
    std::lock_guard<std::mutex> lock(job.mutex);
    for (const StoredRecord& stored : *records) {
      ++job.status.checked;
      if (!encoder.Delivers(stored)) {
        ++job.status.filtered;
        continue;
      }
      absl::StatusOr<size_t> size = encoder.Measure(stored);
      if (size.ok()) continue;
      ++job.status.refused_before_send;
      const std::string reason(size.status().message());
      auto& reasons = job.status.refusal_reasons;
      if (reasons.size() < kMaxReasons &&
          std::find(reasons.begin(), reasons.end(), reason) == reasons.end()) {
        reasons.push_back(reason);
      }
    }
    cursor = records->back().key;
  }
  {
    std::lock_guard<std::mutex> lock(job.mutex);
    job.status.state = "sending";
  }
  // Pass 2: send what the backend takes, in key order.
  DeliveryHooks hooks;
  hooks.delivered = [&job](size_t count) {
    std::lock_guard<std::mutex> lock(job.mutex);
    job.status.sent += count;
  };
  hooks.rejected = [&job](std::span<const StoredRecord> refused, const std::string& reason, bool) {
    std::lock_guard<std::mutex> lock(job.mutex);
    job.status.rejected += refused.size();
    job.status.error = reason;
  };
  hooks.retrying = [&job](size_t, bool retrying, const std::string& detail) {
    std::lock_guard<std::mutex> lock(job.mutex);
    if (retrying) job.status.error = detail;
  };
  hooks.sleep = [&job](absl::Duration duration) { return job.Sleep(duration); };
  std::mt19937_64 random{std::random_device{}()};
  std::vector<StoredRecord> batch;
  cursor = before_begin;
  for (;;) {
    if (job.cancel.load()) return finish("cancelled", "");
    absl::StatusOr<std::vector<StoredRecord>> records = store_.Read(family, cursor, end, page);
    if (!records.ok()) return finish("failed", records.status().ToString());
    if (records->empty()) break;
    batch.clear();
    uint64_t bytes = 0;
    StoreKey resolved = cursor;
    for (StoredRecord& stored : *records) {
      if (!encoder.Delivers(stored)) {  // counted in the first pass
        resolved = stored.key;
        continue;
      }
      absl::StatusOr<size_t> size = encoder.Measure(stored);
      if (!size.ok()) {  // counted in the first pass
        resolved = stored.key;
        continue;
      }
      if (!batch.empty() && bytes + *size > job.target.batch.max_bytes) break;
      bytes += *size;
      resolved = stored.key;
      batch.push_back(std::move(stored));
    }
    if (!DeliverBatch(encoder, sender, job.target.retry, random, batch, hooks)) {
      return finish("cancelled", "");
    }
    cursor = resolved;
  }
  spdlog::info("replay to {} done", job.request.exporter);
  finish("done", "");
}

}  // namespace meshtel::collector
