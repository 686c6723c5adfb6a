#include "proxy/access_log/access_log_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "fmt/format.h"
#include "spdlog/spdlog.h"

namespace meshtel::proxy {
namespace {

// Opens `path` for appending: descriptors 1 and 2 for /dev/stdout and /dev/stderr (dup'ed, so
// that they also work when stdout is a socket, which /dev/stdout cannot reopen). -1 and errno
// on failure.
int OpenPath(const std::string& path) {
  if (path == "/dev/stdout") return fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
  if (path == "/dev/stderr") return fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
  int fd;
  do {
    fd = open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  } while (fd < 0 && errno == EINTR);
  return fd;
}

bool IsStandardStream(const std::string& path) {
  return path == "/dev/stdout" || path == "/dev/stderr";
}

}  // namespace

absl::StatusOr<std::unique_ptr<AccessLogWriter>> AccessLogWriter::Open(
    const AccessLogConfig& config) {
  if (config.path.empty()) return absl::InvalidArgumentError("access_log.path: is empty");
  absl::StatusOr<collector::AccessLogFormat> format = config.render.Compile("access_log");
  if (!format.ok()) return format.status();
  const int fd = OpenPath(config.path);
  if (fd < 0) {
    return absl::InvalidArgumentError(
        fmt::format("access_log.path: cannot open '{}': {}", config.path, std::strerror(errno)));
  }
  return std::unique_ptr<AccessLogWriter>(
      new AccessLogWriter(config.path, config.max_buffered_bytes, *std::move(format), fd));
}

AccessLogWriter::AccessLogWriter(std::string path, uint64_t max_buffered_bytes,
                                 collector::AccessLogFormat format, int fd)
    : path_(std::move(path)),
      max_buffered_bytes_(max_buffered_bytes),
      format_(std::move(format)),
      fd_(fd) {
  writer_thread_ = std::thread([this] { WriterLoop(); });
}

AccessLogWriter::~AccessLogWriter() { Shutdown(); }

void AccessLogWriter::Append(const meshtel::v1::RequestRecord& record) {
  format_.Render(record, staged_);
  if (staged_.empty() || staged_.back() != '\n') staged_.push_back('\n');
  staged_ends_.push_back(staged_.size());
  // A large pass of the batcher must not stage more than the buffer could take anyway.
  if (staged_.size() >= max_buffered_bytes_) Publish();
}

void AccessLogWriter::AppendSerialized(std::string_view bytes) {
  if (!scratch_record_.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  Append(scratch_record_);
}

void AccessLogWriter::CountDropped(uint64_t lines) {
  dropped_.fetch_add(lines, std::memory_order_relaxed);
}

void AccessLogWriter::Publish() {
  if (staged_ends_.empty()) return;
  size_t fitting = 0;  // lines that fit
  {
    std::lock_guard<std::mutex> lock(mutex_);
    const uint64_t room =
        pending_.size() < max_buffered_bytes_ ? max_buffered_bytes_ - pending_.size() : 0;
    // Whole lines only: the first `fitting` lines end at or before `room`.
    fitting = static_cast<size_t>(std::upper_bound(staged_ends_.begin(), staged_ends_.end(), room) -
                                  staged_ends_.begin());
    if (fitting > 0) {
      const size_t base = pending_.size();
      const size_t bytes = staged_ends_[fitting - 1];
      pending_.append(staged_, 0, bytes);
      for (size_t i = 0; i < fitting; ++i) pending_ends_.push_back(base + staged_ends_[i]);
      ++published_generation_;
    }
  }
  if (fitting > 0) wake_.notify_one();
  if (fitting < staged_ends_.size()) {
    dropped_.fetch_add(staged_ends_.size() - fitting, std::memory_order_relaxed);
  }
  staged_.clear();
  staged_ends_.clear();
  // Keep the buffer's memory only while it stays modest (a burst must not pin it forever).
  if (staged_.capacity() > max_buffered_bytes_) std::string().swap(staged_);
}

void AccessLogWriter::Reopen() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    reopen_requested_ = true;
  }
  wake_.notify_one();
}

void AccessLogWriter::Flush() {
  std::unique_lock<std::mutex> lock(mutex_);
  const uint64_t target = published_generation_;
  flushed_.wait(lock, [&] { return done_generation_ >= target || writer_done_; });
}

void AccessLogWriter::Shutdown() {
  if (shut_down_.exchange(true)) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  writer_thread_.join();
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

void AccessLogWriter::WriterLoop() {
  std::string writing;
  std::vector<size_t> writing_ends;
  for (;;) {
    bool reopen = false;
    bool stopping = false;
    uint64_t generation = 0;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [this] { return !pending_ends_.empty() || reopen_requested_ || stopping_; });
      writing.swap(pending_);
      writing_ends.swap(pending_ends_);
      reopen = std::exchange(reopen_requested_, false);
      stopping = stopping_ && pending_ends_.empty();
      generation = published_generation_;
    }
    if (reopen) ReopenFile();
    if (!writing_ends.empty()) WriteOut(writing, writing_ends);
    writing.clear();
    writing_ends.clear();
    if (writing.capacity() > max_buffered_bytes_) std::string().swap(writing);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      done_generation_ = generation;
      if (stopping) writer_done_ = true;
    }
    flushed_.notify_all();
    if (stopping) return;
  }
}

void AccessLogWriter::WriteOut(const std::string& bytes, const std::vector<size_t>& ends) {
  size_t done = 0;
  int error = 0;
  while (done < bytes.size()) {
    const ssize_t n = write(fd_, bytes.data() + done, bytes.size() - done);
    if (n > 0) {
      done += static_cast<size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      error = n < 0 ? errno : EIO;
      break;
    }
  }
  const size_t whole =
      static_cast<size_t>(std::upper_bound(ends.begin(), ends.end(), done) - ends.begin());
  written_.fetch_add(whole, std::memory_order_relaxed);
  if (whole < ends.size()) dropped_.fetch_add(ends.size() - whole, std::memory_order_relaxed);
  if (error != 0 && !failing_) {
    spdlog::error("access log {}: write failed ({}); lines are dropped until writes succeed", path_,
                  std::strerror(error));
  } else if (error == 0 && failing_) {
    spdlog::info("access log {}: writes succeed again", path_);
  }
  failing_ = error != 0;
}

void AccessLogWriter::ReopenFile() {
  if (IsStandardStream(path_)) return;
  const int fd = OpenPath(path_);
  if (fd < 0) {
    spdlog::error("access log {}: cannot reopen ({}); still writing to the file already open",
                  path_, std::strerror(errno));
    return;
  }
  close(fd_);
  fd_ = fd;
  reopens_.fetch_add(1, std::memory_order_relaxed);
  spdlog::info("access log {}: reopened", path_);
}

}  // namespace meshtel::proxy
