#pragma once
// AccessLogWriter: the proxy's own access log, like Envoy's file access log: one line per
// finished request, rendered from its RequestRecord with the collector's AccessLogFormat
// (collector/logs/access_log_format.h; Istio's default TEXT format unless configured), written
// to a file, or to the proxy's stdout or stderr.
//
// Off the request path: the IO threads never see this class. The reporter's batcher thread,
// which already takes every finished record from the lock-free record queue, hands the records
// to Append() (rendering happens there) and then Publish()es the lines to a writer thread of
// this class, which does the write(2) calls. Nothing ever waits for the disk but that writer
// thread: when more than max_buffered_bytes of lines are waiting for it (a slow, blocked or full
// disk), new lines are dropped and counted, never queued without bound. A failed write drops the
// lines it carried, counts them, and the next lines are tried again.
//
// Lines: a rendered line that does not end with '\n' gets one (as Istio does for a custom
// MeshConfig accessLogFormat), so the log is always one request per line.
//
// Files: opened with O_WRONLY|O_APPEND|O_CREAT (mode 0644), so a `copytruncate` rotation just
// works (the next line goes to the start of the truncated file). Reopen() (the proxy calls it on
// SIGUSR1) makes the writer thread open the path again, for rotation by rename; if that fails
// the writer keeps the file it has and logs the error. "/dev/stdout" and "/dev/stderr" write to
// the proxy's own descriptors 1 and 2. The proxy's own log (spdlog) also goes to stdout: its
// lines can land between access-log lines there, and inside a batch of lines larger than
// PIPE_BUF when stdout is a pipe; use a file or /dev/stderr where lines are parsed strictly.
//
// Errors: Open() returns InvalidArgument naming access_log.path when the file cannot be opened.
// Threading: Append(), AppendSerialized(), Publish() and CountDropped() from one thread at a
// time (the reporter's batcher); Reopen(), Flush() and the counters from any thread; Shutdown()
// once, after the last Publish(). Ownership: keeps a compiled copy of the format; reads records
// only during Append().

#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "collector/logs/access_log_format.h"
#include "meshtel/v1/record.pb.h"
#include "proxy/config/proxy_config.h"

namespace meshtel::proxy {

class AccessLogWriter {
 public:
  // Compiles the format, opens the path and starts the writer thread. config.path must be set.
  static absl::StatusOr<std::unique_ptr<AccessLogWriter>> Open(const AccessLogConfig& config);
  ~AccessLogWriter();  // Shutdown()
  AccessLogWriter(const AccessLogWriter&) = delete;
  AccessLogWriter& operator=(const AccessLogWriter&) = delete;

  // Renders the line of `record` into the lines not yet published (publishing them at once when
  // they reach max_buffered_bytes, so staging stays bounded too).
  void Append(const meshtel::v1::RequestRecord& record);
  // The same for a serialized RequestRecord; bytes that do not decode are counted as dropped.
  void AppendSerialized(std::string_view bytes);
  // Hands the appended lines to the writer thread, as many whole lines as fit under
  // max_buffered_bytes; the rest are dropped and counted. Never waits for the writer thread
  // beyond swapping a buffer.
  void Publish();
  // Counts `lines` that were never appended (records dropped before they reached the batcher).
  void CountDropped(uint64_t lines);

  // Asks the writer thread to open the path again (log rotation by rename). Returns at once.
  void Reopen();
  // Waits until every line published before the call is written or dropped.
  void Flush();
  // Writes what is published, stops the writer thread and closes the file. Idempotent.
  void Shutdown();

  const std::string& path() const { return path_; }
  uint64_t written_lines() const { return written_.load(std::memory_order_relaxed); }
  uint64_t dropped_lines() const { return dropped_.load(std::memory_order_relaxed); }
  // Times the path was opened again (Reopen() that succeeded).
  uint64_t reopens() const { return reopens_.load(std::memory_order_relaxed); }

 private:
  AccessLogWriter(std::string path, uint64_t max_buffered_bytes, collector::AccessLogFormat format,
                  int fd);
  void WriterLoop();
  // Writes `bytes` (whole lines ending at `ends`); counts written and dropped lines.
  void WriteOut(const std::string& bytes, const std::vector<size_t>& ends);
  void ReopenFile();

  const std::string path_;
  const uint64_t max_buffered_bytes_;
  const collector::AccessLogFormat format_;
  int fd_;  // used by the writer thread only once it runs; closed by Shutdown()

  // Batcher side (one thread at a time).
  meshtel::v1::RequestRecord scratch_record_;
  std::string staged_;
  std::vector<size_t> staged_ends_;  // end offset of each line in staged_

  // Shared with the writer thread, under mutex_.
  std::mutex mutex_;
  std::condition_variable wake_;     // the writer thread: lines, reopen or stop
  std::condition_variable flushed_;  // Flush(): a published generation is done
  std::string pending_;
  std::vector<size_t> pending_ends_;
  uint64_t published_generation_ = 0;  // bumped by each Publish() that handed over lines
  uint64_t done_generation_ = 0;       // the last generation the writer thread finished
  bool reopen_requested_ = false;
  bool stopping_ = false;
  bool writer_done_ = false;  // the writer thread has returned

  std::atomic<uint64_t> written_{0};
  std::atomic<uint64_t> dropped_{0};
  std::atomic<uint64_t> reopens_{0};
  bool failing_ = false;  // writer thread: the last write failed (log state changes only)
  std::atomic<bool> shut_down_{false};
  std::thread writer_thread_;
};

}  // namespace meshtel::proxy
