#pragma once
// ConfigReloader: applies changes of the collector's config file and policy file while the
// collector runs — on SIGHUP (ReloadNow) and, when policy.watch_interval is not 0, when either
// file changes (checked every watch_interval by its modification time, size and inode, so an
// atomic rename or a Kubernetes ConfigMap symlink swap counts too).
//
// Policy file: parsed and validated in full (TelemetryPolicy::Load, then `check_policy`); a
// valid file with a new digest replaces the policy in force (PolicySource::Replace, which
// pushes it to the proxies and the collector's enforcement); an invalid one is rejected with the
// reason logged, and the previous policy stays in force.
// Config file: loaded and validated in full with `load_config`; an invalid one is rejected and
// nothing of it applies. Of a valid one, the top-level keys `log_level` and `policy` apply at
// once (a new policy.file is loaded as above; a new watch_interval takes effect after the next
// check); any other top-level key that differs from the running file is named in a warning
// ("needs a restart") and keeps its running value.
//
// Counters (registry): meshtel_config_reloads_total{file="config"|"policy",
// result="applied"|"restart_required"|"unchanged"|"rejected"} and
// meshtel_config_last_reload_successful{file} (1 after an accepted reload, 0 after a rejected
// one, as Prometheus's own gauge). status() gives the same as JSON for GET /api/policy.
//
// Threading: one watch thread (Start/Stop); ReloadNow() may be called from any thread; reloads
// are serialized. The PolicySource and the registry must outlive the reloader.

#include <sys/types.h>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "collector/config/collector_config.h"
#include "collector/policy/policy_source.h"
#include "collector/policy/telemetry_policy.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"

namespace meshtel::collector {

struct ConfigReloaderOptions {
  // The collector's config file; empty: only the policy file is followed.
  std::string config_path;
  // Loads and validates a config file (the program's own loader, exporters checked too).
  std::function<absl::StatusOr<CollectorConfig>(const std::string&)> load_config;
  // Extra checks of a parsed policy against the running collector (its exporters).
  std::function<absl::Status(const TelemetryPolicy&)> check_policy;
  // Applies a new log level (a valid one: the config was validated).
  std::function<void(const std::string&)> apply_log_level;
};

class ConfigReloader {
 public:
  // `running` is the config the collector started with; `policy` holds the policy in force
  // (loaded from running.policy.file by the caller).
  ConfigReloader(ConfigReloaderOptions options, const CollectorConfig& running,
                 PolicySource& policy, prometheus::Registry& registry);
  ~ConfigReloader();

  ConfigReloader(const ConfigReloader&) = delete;
  ConfigReloader& operator=(const ConfigReloader&) = delete;

  // Starts the watch thread (a no-op when watch_interval is 0, until a reload sets one).
  void Start();
  void Stop();

  // Reloads both files now (the config file first); `reason` is logged ("SIGHUP").
  void ReloadNow(std::string_view reason);

  // {"policy_file": ..., "policy_digest": ..., "policy_generation": N, "resources": N,
  //  "watch_interval": "1s", "last_reloads": {"config": R, "policy": R}} as JSON, where R is
  //  {"result": ..., "message": ..., "time": RFC 3339} of that file's last reload, or null.
  std::string StatusJson() const;

 private:
  struct FileStamp {
    bool exists = false;
    int64_t mtime_ns = 0;
    int64_t size = 0;
    ino_t inode = 0;
    bool operator==(const FileStamp&) const = default;
  };
  static FileStamp Stamp(const std::string& path);

  // Both need reload_mutex_ held.
  void ReloadConfigLocked(std::string_view reason);
  void ReloadPolicyLocked(std::string_view reason);
  void Count(std::string_view file, std::string_view result, std::string message);
  void WatchLoop();

  const ConfigReloaderOptions options_;
  PolicySource& policy_;
  prometheus::Family<prometheus::Counter>& reloads_;
  prometheus::Family<prometheus::Gauge>& last_successful_;

  mutable std::mutex reload_mutex_;  // serializes reloads; guards the fields below
  std::string running_config_text_;  // the config file as last accepted
  std::string policy_path_;
  absl::Duration watch_interval_;
  FileStamp config_stamp_;
  FileStamp policy_stamp_;
  struct LastReload {
    std::string result;  // empty: none yet
    std::string message;
    absl::Time time;
  };
  LastReload last_config_reload_, last_policy_reload_;

  std::mutex wake_mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;  // guarded by wake_mutex_
  std::thread watcher_;
};

}  // namespace meshtel::collector
