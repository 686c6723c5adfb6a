// meshtelctl: operator commands for a meshtel-collector's data. See docs/operations.md.

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "collector/common/http_client.h"
#include "collector/config/collector_config.h"
#include "collector/policy/telemetry_policy.h"
#include "collector/store/record_store.h"

namespace {

constexpr char kUsage[] =
    "Usage: meshtelctl store repair --data-dir DIR\n"
    "       meshtelctl replay start --exporter NAME --from TIME --to TIME [--family logs|spans]\n"
    "                               [--target-file FILE] [--wait] [ADMIN]\n"
    "       meshtelctl replay status [ADMIN]\n"
    "       meshtelctl replay cancel --exporter NAME [ADMIN]\n"
    "       meshtelctl policy validate FILE [--collector-config FILE]\n"
    "       meshtelctl --help | --version\n"
    "ADMIN: [--admin HOST:PORT] (default 127.0.0.1:15141) [--token TOKEN] (default: the\n"
    "       MESHTEL_ADMIN_TOKEN environment variable)\n"
    "\n"
    "store repair   Rebuilds the metadata of a damaged store (RocksDB RepairDB) from the files\n"
    "               in DIR, so that meshtel-collector can open it again. Records in damaged\n"
    "               files may be lost; everything else is kept. Stop the collector first and\n"
    "               back DIR up. Exit code 0 when repaired, 1 when the repair failed.\n"
    "replay start   Sends the records a collector stored between --from and --to (storage time:\n"
    "               Unix nanoseconds or RFC 3339) again to the backend of exporter NAME, or to "
    "the\n"
    "               one-off target described in --target-file (one exporter entry in YAML, as in\n"
    "               the collector's `exporters:`), without moving any exporter's cursor. Prints\n"
    "               the replay's status as JSON; with --wait, follows it until it ends (exit 0\n"
    "               when done, 1 when cancelled or failed).\n"
    "replay status  Prints every replay's status (JSON).\n"
    "replay cancel  Stops the running replay of exporter NAME.\n"
    "policy validate\n"
    "               Checks a telemetry policy file (docs/policy.md) without a collector:\n"
    "               prints \"policy FILE: valid, N Telemetry resources, digest D\" and exits\n"
    "               0, or prints the first error (with the document and the path of the\n"
    "               field) on stderr and exits 1. With --collector-config, also checks that\n"
    "               every exporter the MeshConfig's extensionProviders name is in that\n"
    "               collector config's exporters.\n"
    "Exit code 2 on a usage error, 1 when the collector refuses or cannot be reached, or the\n"
    "file checked is invalid.\n";

int Usage(const char* problem) {
  std::fprintf(stderr, "meshtelctl: %s\n\n%s", problem, kUsage);
  return 2;
}

int StoreRepair(const std::vector<std::string_view>& args) {
  std::string data_dir;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--data-dir" && i + 1 < args.size()) {
      data_dir = std::string(args[++i]);
    } else if (args[i].starts_with("--data-dir=")) {
      data_dir = std::string(args[i].substr(11));
    } else {
      return Usage(("unexpected argument '" + std::string(args[i]) + "'").c_str());
    }
  }
  if (data_dir.empty()) return Usage("store repair needs --data-dir DIR");
  std::fprintf(stderr, "meshtelctl: repairing the store in %s\n", data_dir.c_str());
  const absl::Status status = meshtel::collector::RecordStore::Repair(data_dir);
  if (!status.ok()) {
    std::fprintf(stderr, "meshtelctl: %s\n", std::string(status.message()).c_str());
    return 1;
  }
  std::fprintf(stderr, "meshtelctl: repaired; meshtel-collector can open %s again\n",
               data_dir.c_str());
  return 0;
}

// The flags of a replay command: "--name value" pairs, and the bare --wait.
struct ReplayFlags {
  std::map<std::string, std::string> values;
  bool wait = false;
};

std::optional<ReplayFlags> ParseReplayFlags(const std::vector<std::string_view>& args) {
  ReplayFlags flags;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--wait") {
      flags.wait = true;
    } else if (args[i].starts_with("--") && i + 1 < args.size()) {
      flags.values[std::string(args[i].substr(2))] = std::string(args[i + 1]);
      ++i;
    } else {
      return std::nullopt;
    }
  }
  return flags;
}

// The state of the newest replay of `exporter` in a GET /api/replay answer, or "".
std::string NewestState(const std::string& list, const std::string& exporter) {
  const std::string key = "{\"exporter\":\"" + exporter + "\"";
  const size_t at = list.rfind(key);
  if (at == std::string::npos) return "";
  const std::string state_key = "\"state\":\"";
  const size_t state = list.find(state_key, at);
  if (state == std::string::npos) return "";
  const size_t begin = state + state_key.size();
  return list.substr(begin, list.find('"', begin) - begin);
}

int Replay(const std::string& action, const std::vector<std::string_view>& args) {
  std::optional<ReplayFlags> flags = ParseReplayFlags(args);
  if (!flags) return Usage("replay: flags are --name value pairs (and --wait)");
  const auto flag = [&flags](const char* name) {
    const auto it = flags->values.find(name);
    return it == flags->values.end() ? std::string() : it->second;
  };
  for (const auto& [name, value] : flags->values) {
    if (name != "admin" && name != "token" && name != "exporter" && name != "from" &&
        name != "to" && name != "family" && name != "target-file") {
      return Usage(("replay: unknown flag --" + name).c_str());
    }
  }
  const std::string admin = flag("admin").empty() ? "127.0.0.1:15141" : flag("admin");
  absl::StatusOr<meshtel::common::HttpUrl> url =
      meshtel::common::ParseHttpUrl("http://" + admin + "/");
  if (!url.ok()) return Usage(("--admin: " + std::string(url.status().message())).c_str());
  std::string token = flag("token");
  if (token.empty() && std::getenv("MESHTEL_ADMIN_TOKEN") != nullptr) {
    token = std::getenv("MESHTEL_ADMIN_TOKEN");
  }
  meshtel::common::HttpHeaders headers;
  if (!token.empty()) headers.emplace_back("Authorization", "Bearer " + token);
  meshtel::common::HttpClient client(*url, {});
  const auto show = [](const absl::StatusOr<meshtel::common::HttpResponse>& response) {
    if (!response.ok()) {
      std::fprintf(stderr, "meshtelctl: %s\n", std::string(response.status().message()).c_str());
      return 1;
    }
    std::fputs(response->body.c_str(), response->status / 100 == 2 ? stdout : stderr);
    return response->status / 100 == 2 ? 0 : 1;
  };
  if (action == "status") return show(client.Get("/api/replay", headers));
  const std::string exporter = flag("exporter");
  if (exporter.empty()) return Usage("replay: --exporter NAME is required");
  if (action == "cancel") {
    return show(client.Post("/api/replay/cancel?exporter=" + exporter, headers, ""));
  }
  if (action != "start") return Usage(("replay: unknown action '" + action + "'").c_str());
  if (flag("from").empty() || flag("to").empty()) {
    return Usage("replay start: --from and --to are required");
  }
  std::string body;
  if (!flag("target-file").empty()) {
    std::ifstream file(flag("target-file"));
    if (!file) return Usage(("cannot read --target-file " + flag("target-file")).c_str());
    std::ostringstream content;
    content << file.rdbuf();
    body = content.str();
  }
  std::string target =
      "/api/replay?exporter=" + exporter + "&from=" + flag("from") + "&to=" + flag("to");
  if (!flag("family").empty()) target += "&family=" + flag("family");
  if (const int started = show(client.Post(target, headers, body)); started != 0 || !flags->wait) {
    return started;
  }
  for (;;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    absl::StatusOr<meshtel::common::HttpResponse> list = client.Get("/api/replay", headers);
    if (!list.ok()) return show(list);
    const std::string state = NewestState(list->body, exporter);
    if (state == "checking" || state == "sending") continue;
    std::fputs(list->body.c_str(), stdout);
    return state == "done" ? 0 : 1;
  }
}

int PolicyValidate(const std::vector<std::string_view>& args) {
  std::string policy_file;
  std::string collector_config;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--collector-config" && i + 1 < args.size()) {
      collector_config = std::string(args[++i]);
    } else if (args[i].starts_with("--collector-config=")) {
      collector_config = std::string(args[i].substr(19));
    } else if (args[i].starts_with("-") || !policy_file.empty()) {
      return Usage(("policy validate: unexpected argument '" + std::string(args[i]) + "'").c_str());
    } else {
      policy_file = std::string(args[i]);
    }
  }
  if (policy_file.empty()) return Usage("policy validate needs a FILE");
  absl::StatusOr<meshtel::collector::TelemetryPolicy> policy =
      meshtel::collector::TelemetryPolicy::Load(policy_file);
  if (!policy.ok()) {
    std::fprintf(stderr, "meshtelctl: %s\n", std::string(policy.status().message()).c_str());
    return 1;
  }
  if (!collector_config.empty()) {
    absl::StatusOr<meshtel::collector::CollectorConfig> config =
        meshtel::collector::LoadCollectorConfig(collector_config);
    if (!config.ok()) {
      std::fprintf(stderr, "meshtelctl: --collector-config %s: %s\n", collector_config.c_str(),
                   std::string(config.status().message()).c_str());
      return 1;
    }
    std::vector<std::string> names;
    for (const meshtel::collector::ExporterConfig& exporter : config->exporters) {
      names.push_back(exporter.name);
    }
    if (const absl::Status status = policy->CheckExporters(names); !status.ok()) {
      std::fprintf(stderr, "meshtelctl: %s: %s\n", policy_file.c_str(),
                   std::string(status.message()).c_str());
      return 1;
    }
  }
  std::printf("policy %s: valid, %zu Telemetry resources, digest %s\n", policy_file.c_str(),
              policy->resource_count(), policy->digest().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string_view> args(argv + 1, argv + argc);
  if (args.empty()) return Usage("no command");
  if (args[0] == "--help" || args[0] == "-h") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (args[0] == "--version") {
    std::printf("meshtelctl %s\n", MESHTEL_VERSION);
    return 0;
  }
  if (args.size() >= 2 && args[0] == "store" && args[1] == "repair") {
    return StoreRepair({args.begin() + 2, args.end()});
  }
  if (args.size() >= 2 && args[0] == "replay") {
    return Replay(std::string(args[1]), {args.begin() + 2, args.end()});
  }
  if (args.size() >= 2 && args[0] == "policy" && args[1] == "validate") {
    return PolicyValidate({args.begin() + 2, args.end()});
  }
  if (args[0] == "policy") return Usage("policy: the command is 'policy validate FILE'");
  return Usage(("unknown command '" + std::string(args[0]) + "'").c_str());
}
