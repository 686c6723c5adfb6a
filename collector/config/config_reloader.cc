#include "collector/config/config_reloader.h"

#include <sys/stat.h>

#include <set>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "collector/common/yaml_map.h"
#include "collector/logs/json_escape.h"
#include "spdlog/spdlog.h"
#include "yaml-cpp/yaml.h"

namespace meshtel::collector {
namespace {

// The top-level keys whose YAML differs between two config texts (a text that does not parse
// differs in every key of the other).
std::vector<std::string> ChangedTopLevelKeys(const std::string& before, const std::string& after) {
  YAML::Node old_root, new_root;
  try {
    old_root = YAML::Load(before);
    new_root = YAML::Load(after);
  } catch (const YAML::Exception&) {
    return {"<document>"};
  }
  std::set<std::string> keys;
  for (const YAML::Node* root : {&old_root, &new_root}) {
    if (!root->IsMap()) continue;
    for (const auto& entry : *root) keys.insert(entry.first.as<std::string>());
  }
  std::vector<std::string> changed;
  for (const std::string& key : keys) {
    const YAML::Node old_value = old_root.IsMap() ? old_root[key] : YAML::Node();
    const YAML::Node new_value = new_root.IsMap() ? new_root[key] : YAML::Node();
    const std::string old_text = old_value.IsDefined() ? YAML::Dump(old_value) : "";
    const std::string new_text = new_value.IsDefined() ? YAML::Dump(new_value) : "";
    if (old_text != new_text) changed.push_back(key);
  }
  return changed;
}

void AppendJsonString(std::string& out, std::string_view text) {
  out += '"';
  AppendJsonEscaped(out, text);
  out += '"';
}

}  // namespace

ConfigReloader::ConfigReloader(ConfigReloaderOptions options, const CollectorConfig& running,
                               PolicySource& policy, prometheus::Registry& registry)
    : options_(std::move(options)),
      policy_(policy),
      reloads_(prometheus::BuildCounter()
                   .Name("meshtel_config_reloads_total")
                   .Help("Reloads of the config and policy files, by file and result "
                         "(applied, restart_required, unchanged, rejected)")
                   .Register(registry)),
      last_successful_(prometheus::BuildGauge()
                           .Name("meshtel_config_last_reload_successful")
                           .Help("1 when the last reload of the file was accepted, 0 when it was "
                                 "rejected")
                           .Register(registry)),
      policy_path_(running.policy.file),
      watch_interval_(running.policy.watch_interval) {
  if (!options_.config_path.empty()) {
    running_config_text_ = common::ReadTextFile(options_.config_path).value_or("");
    config_stamp_ = Stamp(options_.config_path);
  }
  if (!policy_path_.empty()) policy_stamp_ = Stamp(policy_path_);
  last_successful_.Add({{"file", "config"}}).Set(1);
  last_successful_.Add({{"file", "policy"}}).Set(1);
}

ConfigReloader::~ConfigReloader() { Stop(); }

void ConfigReloader::Start() {
  if (watcher_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(wake_mutex_);
    stopping_ = false;
  }
  watcher_ = std::thread([this] { WatchLoop(); });
}

void ConfigReloader::Stop() {
  {
    std::lock_guard<std::mutex> lock(wake_mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (watcher_.joinable()) watcher_.join();
}

ConfigReloader::FileStamp ConfigReloader::Stamp(const std::string& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) return {};
  return FileStamp{
      .exists = true,
      .mtime_ns = static_cast<int64_t>(info.st_mtim.tv_sec) * 1000000000 + info.st_mtim.tv_nsec,
      .size = static_cast<int64_t>(info.st_size),
      .inode = info.st_ino};
}

void ConfigReloader::WatchLoop() {
  for (;;) {
    absl::Duration interval;
    {
      std::lock_guard<std::mutex> lock(reload_mutex_);
      interval = watch_interval_;
    }
    {
      std::unique_lock<std::mutex> lock(wake_mutex_);
      // With watching off, wake up now and then to notice a reload that turned it on.
      const absl::Duration wait = interval > absl::ZeroDuration() ? interval : absl::Seconds(1);
      wake_.wait_for(lock, absl::ToChronoMilliseconds(wait), [this] { return stopping_; });
      if (stopping_) return;
    }
    std::lock_guard<std::mutex> lock(reload_mutex_);
    if (watch_interval_ <= absl::ZeroDuration()) continue;
    if (!options_.config_path.empty() && Stamp(options_.config_path) != config_stamp_) {
      ReloadConfigLocked("config file changed");
    }
    if (!policy_path_.empty() && Stamp(policy_path_) != policy_stamp_) {
      ReloadPolicyLocked("policy file changed");
    }
  }
}

void ConfigReloader::ReloadNow(std::string_view reason) {
  std::lock_guard<std::mutex> lock(reload_mutex_);
  if (!options_.config_path.empty()) ReloadConfigLocked(reason);
  ReloadPolicyLocked(reason);
}

void ConfigReloader::Count(std::string_view file, std::string_view result, std::string message) {
  reloads_.Add({{"file", std::string(file)}, {"result", std::string(result)}}).Increment();
  if (result != "unchanged") {
    last_successful_.Add({{"file", std::string(file)}}).Set(result == "rejected" ? 0 : 1);
  }
  LastReload& last = file == "config" ? last_config_reload_ : last_policy_reload_;
  last =
      LastReload{.result = std::string(result), .message = std::move(message), .time = absl::Now()};
}

void ConfigReloader::ReloadConfigLocked(std::string_view reason) {
  config_stamp_ = Stamp(options_.config_path);
  const absl::StatusOr<std::string> text = common::ReadTextFile(options_.config_path);
  if (!text.ok()) {
    const std::string message = absl::StrCat(text.status().message(), "; the running config stays");
    spdlog::error("config reload ({}) rejected: {}", reason, message);
    Count("config", "rejected", message);
    return;
  }
  if (*text == running_config_text_) {
    Count("config", "unchanged", "");
    return;
  }
  absl::StatusOr<CollectorConfig> next = options_.load_config(options_.config_path);
  if (!next.ok()) {
    const std::string message = absl::StrCat(options_.config_path, ": ", next.status().message(),
                                             " (the running config stays in force)");
    spdlog::error("config reload ({}) rejected: {}", reason, message);
    Count("config", "rejected", message);
    return;
  }
  std::vector<std::string> needs_restart;
  std::vector<std::string> applied;
  bool policy_changed = false;
  for (const std::string& key : ChangedTopLevelKeys(running_config_text_, *text)) {
    if (key == "log_level") {
      if (options_.apply_log_level) options_.apply_log_level(next->log_level);
      applied.push_back(key);
    } else if (key == "policy") {
      policy_changed = policy_path_ != next->policy.file;
      policy_path_ = next->policy.file;
      watch_interval_ = next->policy.watch_interval;
      applied.push_back(key);
    } else {
      needs_restart.push_back(key);
    }
  }
  running_config_text_ = *text;
  if (policy_changed) {
    policy_stamp_ = {};
    ReloadPolicyLocked(absl::StrCat(std::string(reason), ", policy.file changed"));
  }
  if (needs_restart.empty()) {
    spdlog::info("config reload ({}): applied {}", reason,
                 applied.empty() ? "no change" : absl::StrJoin(applied, ", "));
    Count("config", applied.empty() ? "unchanged" : "applied", absl::StrJoin(applied, ", "));
  } else {
    const std::string message = absl::StrCat(
        "applied [", absl::StrJoin(applied, ", "), "]; changed [",
        absl::StrJoin(needs_restart, ", "), "] needs a restart (the running values stay in force)");
    spdlog::warn("config reload ({}): {}", reason, message);
    Count("config", "restart_required", message);
  }
}

void ConfigReloader::ReloadPolicyLocked(std::string_view reason) {
  policy_stamp_ = policy_path_.empty() ? FileStamp{} : Stamp(policy_path_);
  absl::StatusOr<TelemetryPolicy> next = policy_path_.empty()
                                             ? absl::StatusOr<TelemetryPolicy>(TelemetryPolicy())
                                             : TelemetryPolicy::Load(policy_path_);
  if (next.ok() && options_.check_policy) {
    if (absl::Status checked = options_.check_policy(*next); !checked.ok()) next = checked;
  }
  if (!next.ok()) {
    const std::string message =
        absl::StrCat(next.status().message(), " (the policy in force stays)");
    spdlog::error("policy reload ({}) rejected: {}", reason, message);
    Count("policy", "rejected", message);
    return;
  }
  const std::shared_ptr<const TelemetryPolicy> current = policy_.current();
  if (current->digest() == next->digest() && current->resource_count() == next->resource_count()) {
    Count("policy", "unchanged", "");
    return;
  }
  const std::string message =
      absl::StrCat(policy_path_.empty() ? "no policy file" : policy_path_, ": ",
                   next->resource_count(), " Telemetry resources, digest ", next->digest());
  policy_.Replace(std::make_shared<const TelemetryPolicy>(*std::move(next)));
  spdlog::info("policy reload ({}): applied {} (generation {})", reason, message,
               policy_.generation());
  Count("policy", "applied", message);
}

std::string ConfigReloader::StatusJson() const {
  std::lock_guard<std::mutex> lock(reload_mutex_);
  const std::shared_ptr<const TelemetryPolicy> policy = policy_.current();
  std::string out = "{\"policy_file\":";
  AppendJsonString(out, policy_path_);
  absl::StrAppend(&out, ",\"policy_digest\":");
  AppendJsonString(out, policy->digest());
  absl::StrAppend(&out, ",\"policy_generation\":", policy_.generation(),
                  ",\"resources\":", policy->resource_count(), ",\"watch_interval\":");
  AppendJsonString(out, absl::FormatDuration(watch_interval_));
  absl::StrAppend(&out, ",\"last_reloads\":{");
  bool first = true;
  for (const auto& [file, last] :
       {std::pair<const char*, const LastReload*>{"config", &last_config_reload_},
        std::pair<const char*, const LastReload*>{"policy", &last_policy_reload_}}) {
    if (!first) out += ',';
    first = false;
    absl::StrAppend(&out, "\"", file, "\":");
    if (last->result.empty()) {
      out += "null";
      continue;
    }
    absl::StrAppend(&out, "{\"result\":");
    AppendJsonString(out, last->result);
    absl::StrAppend(&out, ",\"message\":");
    AppendJsonString(out, last->message);
    absl::StrAppend(&out, ",\"time\":");
    AppendJsonString(out, absl::FormatTime(absl::RFC3339_full, last->time, absl::UTCTimeZone()));
    out += '}';
  }
  out += "}}";
  return out;
}

}  // namespace meshtel::collector
