// Benchmarks AccessLogFormat (rendering RequestRecords into access-log lines) against a floor
// of fmt::format_to writing the same fields in the same run. Run by hand; docs/benchmarks.md has
// the command and the recorded figures.
//
//   BM_MeshtelText / BM_FmtText: Istio's default TEXT format, one record per iteration from a pool
//     of 1000, appended to a reused std::string (cleared each iteration). The fmt peer is one
//     fmt::format_to call with the same 24 fields and '-' for empty values. Its derived fields
//     (the start time as text, the joined response flags, the upstream service time) are
//     computed once per pool record before timing, so it times fmt's formatting alone: a floor.
//   BM_MeshtelJson / BM_FmtJson: Istio's default JSON keys. The fmt peer writes the same object
//     with no escaping at all (the pool's values need none), so it is a floor, not a peer that
//     produces safe JSON for any input.
//   BM_FmtCompiledText / BM_FmtCompiledJson: the same peers with the format string compiled by
//     FMT_COMPILE, so fmt does not parse it on each call either: the lowest floor.
// Before timing, each peer's output is compared with AccessLogFormat's for every pool record;
// a mismatch aborts the run, so both sides do the same work.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <iterator>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "benchmark/benchmark.h"
#include "collector/common/response_flag_codes.h"
#include "collector/logs/access_log_format.h"
#include "fmt/compile.h"
#include "fmt/format.h"
#include "meshtel/v1/record.pb.h"

namespace {

using meshtel::collector::AccessLogEncoding;
using meshtel::collector::AccessLogFormat;
using meshtel::v1::RequestRecord;

constexpr int kPoolSize = 1000;
constexpr uint64_t kMs = 1'000'000;

std::vector<RequestRecord> MakePool() {
  static const char* const kServices[] = {"cart",    "checkout", "payment",  "reviews",
                                          "ratings", "details",  "frontend", "catalog"};
  static const char* const kPaths[] = {
      "/cart",    "/api/v1/items?page=2", "/checkout/confirm", "/reviews/42",
      "/healthz", "/static/app.js"};
  std::mt19937_64 random(42);
  std::vector<RequestRecord> pool;
  for (int i = 0; i < kPoolSize; ++i) {
    RequestRecord record;
    const std::string service = kServices[random() % std::size(kServices)];
    record.set_start_time_unix_nano(1'787'220'000'000'000'000 + random() % (86'400 * 1'000 * kMs));
    const uint64_t duration = (1 + random() % 300) * kMs + random() % kMs;
    record.set_duration_ns(duration);
    record.mutable_phases()->set_upstream_request_done_ns(duration / 10);
    record.mutable_phases()->set_upstream_first_byte_ns(duration * 9 / 10);
    record.set_method(random() % 5 == 0 ? "POST" : "GET");
    record.set_path(kPaths[random() % std::size(kPaths)]);
    record.set_protocol("HTTP/1.1");
    record.set_authority(service + ":8080");
    record.set_user_agent(random() % 2 == 0 ? "curl/8.5.0" : "Go-http-client/1.1");
    record.set_request_id(fmt::format("{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}", random() >> 32,
                                      random() >> 48, random() >> 52, random() >> 52,
                                      random() >> 16));
    if (random() % 4 == 0) record.set_forwarded_for("203.0.113.9");
    const uint64_t outcome = random() % 20;
    record.set_response_code(outcome < 17 ? 200 : outcome == 17 ? 404 : 503);
    if (outcome == 17)
      record.set_response_flags(uint64_t{1} << meshtel::v1::RESPONSE_FLAG_NO_ROUTE_FOUND);
    if (outcome >= 18) {
      record.set_response_flags(
          (uint64_t{1} << meshtel::v1::RESPONSE_FLAG_UPSTREAM_CONNECTION_FAILURE) |
          (uint64_t{1} << meshtel::v1::RESPONSE_FLAG_UPSTREAM_RETRY_LIMIT_EXCEEDED));
    }
    record.set_response_code_details(outcome < 17 ? "via_upstream" : "route_not_found");
    record.set_request_bytes(random() % 2000);
    record.set_response_bytes(random() % 20000);
    if (outcome != 17) {
      record.set_upstream_host(fmt::format("10.0.{}.{}:8080", random() % 4, random() % 250));
      record.set_upstream_cluster(fmt::format("outbound|8080||{}.shop.svc.cluster.local", service));
      record.set_upstream_local_address(fmt::format("10.0.1.5:{}", 30000 + random() % 30000));
    }
    record.set_downstream_local_address("10.96.0.12:8080");
    record.set_downstream_remote_address(fmt::format("10.0.1.5:{}", 30000 + random() % 30000));
    record.set_route_name("default");
    pool.push_back(std::move(record));
  }
  return pool;
}

const std::vector<RequestRecord>& Pool() {
  static const std::vector<RequestRecord> pool = MakePool();
  return pool;
}

std::string_view OrDash(const std::string& value) {
  return value.empty() ? std::string_view("-") : std::string_view(value);
}

// The fields both fmt peers need, computed from the record the same way for both.
struct FmtFields {
  std::string start_time;  // "2026-08-20T10:00:00.123Z"
  char flags[160];
  size_t flags_length;
  uint64_t upstream_service_time;
};

FmtFields ComputeFields(const RequestRecord& record) {
  FmtFields fields;
  const auto seconds = static_cast<std::time_t>(record.start_time_unix_nano() / 1'000'000'000);
  std::tm civil{};
  gmtime_r(&seconds, &civil);
  fields.start_time =
      fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", civil.tm_year + 1900,
                  civil.tm_mon + 1, civil.tm_mday, civil.tm_hour, civil.tm_min, civil.tm_sec,
                  record.start_time_unix_nano() % 1'000'000'000 / kMs);
  fields.flags_length = 0;
  for (size_t bit = 0; bit < meshtel::common::kResponseFlagCodes.size(); ++bit) {
    if ((record.response_flags() & (uint64_t{1} << bit)) == 0) continue;
    if (fields.flags_length > 0) fields.flags[fields.flags_length++] = ',';
    const std::string_view code = meshtel::common::kResponseFlagCodes[bit];
    code.copy(fields.flags + fields.flags_length, code.size());
    fields.flags_length += code.size();
  }
  if (fields.flags_length == 0) fields.flags[fields.flags_length++] = '-';
  fields.upstream_service_time =
      (record.phases().upstream_first_byte_ns() - record.phases().upstream_request_done_ns()) / kMs;
  return fields;
}

#define MESHTEL_BENCH_TEXT_FORMAT                          \
  "[{}] \"{} {} {}\" {} {} {} - \"-\" {} {} {} {} \"{}\" " \
  "\"{}\" \"{}\" \"{}\" \"{}\" {} {} {} {} - {}\n"

// `format`: a runtime format string (parsed on every call) or an FMT_COMPILE one. fmt writes
// into its own buffer (its fastest output), then the line is appended to `out`.
template <class Format>
void FmtText(Format format, const RequestRecord& record, const FmtFields& fields,
             std::string& out) {
  thread_local fmt::memory_buffer buffer;
  buffer.clear();
  fmt::format_to(fmt::appender(buffer), format, std::string_view(fields.start_time),
                 OrDash(record.method()), OrDash(record.path()), OrDash(record.protocol()),
                 record.response_code(), std::string_view(fields.flags, fields.flags_length),
                 OrDash(record.response_code_details()), record.request_bytes(),
                 record.response_bytes(), record.duration_ns() / kMs, fields.upstream_service_time,
                 OrDash(record.forwarded_for()), OrDash(record.user_agent()),
                 OrDash(record.request_id()), OrDash(record.authority()),
                 OrDash(record.upstream_host()), OrDash(record.upstream_cluster()),
                 OrDash(record.upstream_local_address()), OrDash(record.downstream_local_address()),
                 OrDash(record.downstream_remote_address()), OrDash(record.route_name()));
  out.append(buffer.data(), buffer.size());
}

// A JSON string value, or null when empty; no escaping.
struct JsonOrNull {
  const std::string& value;
};

}  // namespace

template <>
struct fmt::formatter<JsonOrNull> : fmt::formatter<std::string_view> {
  template <class Context>
  auto format(const JsonOrNull& field, Context& context) const {
    if (field.value.empty()) return fmt::format_to(context.out(), "null");
    return fmt::format_to(context.out(), "\"{}\"", field.value);
  }
};

namespace {

#define MESHTEL_BENCH_JSON_FORMAT                                                          \
  "{{\"authority\":{},\"bytes_received\":{},\"bytes_sent\":{},"                            \
  "\"connection_termination_details\":null,\"downstream_local_address\":{},"               \
  "\"downstream_remote_address\":{},\"duration\":{},\"method\":{},\"path\":{},"            \
  "\"protocol\":{},\"request_id\":{},\"requested_server_name\":null,\"response_code\":{}," \
  "\"response_code_details\":{},\"response_flags\":\"{}\",\"route_name\":{},"              \
  "\"start_time\":\"{}\",\"upstream_cluster\":{},"                                         \
  "\"upstream_host\":{},\"upstream_local_address\":{},\"upstream_service_time\":\"{}\","   \
  "\"upstream_transport_failure_reason\":null,\"user_agent\":{},\"x_forwarded_for\":{}}}\n"

template <class Format>
void FmtJson(Format format, const RequestRecord& record, const FmtFields& fields,
             std::string& out) {
  thread_local fmt::memory_buffer buffer;
  buffer.clear();
  fmt::format_to(fmt::appender(buffer), format, JsonOrNull{record.authority()},
                 record.request_bytes(), record.response_bytes(),
                 JsonOrNull{record.downstream_local_address()},
                 JsonOrNull{record.downstream_remote_address()}, record.duration_ns() / kMs,
                 JsonOrNull{record.method()}, JsonOrNull{record.path()},
                 JsonOrNull{record.protocol()}, JsonOrNull{record.request_id()},
                 record.response_code(), JsonOrNull{record.response_code_details()},
                 std::string_view(fields.flags, fields.flags_length),
                 JsonOrNull{record.route_name()}, std::string_view(fields.start_time),
                 JsonOrNull{record.upstream_cluster()}, JsonOrNull{record.upstream_host()},
                 JsonOrNull{record.upstream_local_address()}, fields.upstream_service_time,
                 JsonOrNull{record.user_agent()}, JsonOrNull{record.forwarded_for()});
  out.append(buffer.data(), buffer.size());
}

AccessLogFormat Compiled(AccessLogEncoding encoding) {
  absl::StatusOr<AccessLogFormat> format = AccessLogFormat::Compile("", encoding);
  if (!format.ok()) {
    std::fprintf(stderr, "compile failed: %s\n", std::string(format.status().message()).c_str());
    std::abort();
  }
  return *std::move(format);
}

// The fmt peers' derived fields, computed once per pool record outside the timed loops.
const std::vector<FmtFields>& PoolFields() {
  static const std::vector<FmtFields> fields = [] {
    std::vector<FmtFields> computed;
    for (const RequestRecord& record : Pool()) computed.push_back(ComputeFields(record));
    return computed;
  }();
  return fields;
}

// Aborts unless `peer` writes exactly what `format` writes for every pool record.
template <class FmtPeer>
void CheckSameOutput(const AccessLogFormat& format, FmtPeer peer) {
  for (size_t i = 0; i < Pool().size(); ++i) {
    std::string expected;
    std::string actual;
    format.Render(Pool()[i], expected);
    peer(Pool()[i], PoolFields()[i], actual);
    if (expected != actual) {
      std::fprintf(stderr, "outputs differ:\n%s%s", expected.c_str(), actual.c_str());
      std::abort();
    }
  }
}

// Renders pool record after pool record into one reused string; `render(index, out)`.
template <class RenderFunction>
void RunRenderLoop(benchmark::State& state, RenderFunction render) {
  const size_t pool_size = Pool().size();
  std::string line;
  size_t index = 0;
  uint64_t bytes = 0;
  for (auto _ : state) {
    line.clear();
    render(index, line);
    benchmark::DoNotOptimize(line.data());
    bytes += line.size();
    index = index + 1 == pool_size ? 0 : index + 1;
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
}

void RunMeshtel(benchmark::State& state, AccessLogEncoding encoding) {
  const AccessLogFormat format = Compiled(encoding);
  const std::vector<RequestRecord>& pool = Pool();
  RunRenderLoop(state, [&](size_t i, std::string& out) { format.Render(pool[i], out); });
}

template <class FmtPeer>
void RunFmt(benchmark::State& state, AccessLogEncoding encoding, FmtPeer peer) {
  CheckSameOutput(Compiled(encoding), peer);
  const std::vector<RequestRecord>& pool = Pool();
  const std::vector<FmtFields>& fields = PoolFields();
  RunRenderLoop(state, [&](size_t i, std::string& out) { peer(pool[i], fields[i], out); });
}

void BM_MeshtelText(benchmark::State& state) { RunMeshtel(state, AccessLogEncoding::kText); }
void BM_FmtText(benchmark::State& state) {
  RunFmt(state, AccessLogEncoding::kText,
         [](const RequestRecord& r, const FmtFields& f, std::string& out) {
           FmtText(fmt::runtime(MESHTEL_BENCH_TEXT_FORMAT), r, f, out);
         });
}
void BM_FmtCompiledText(benchmark::State& state) {
  RunFmt(state, AccessLogEncoding::kText,
         [](const RequestRecord& r, const FmtFields& f, std::string& out) {
           FmtText(FMT_COMPILE(MESHTEL_BENCH_TEXT_FORMAT), r, f, out);
         });
}
void BM_MeshtelJson(benchmark::State& state) { RunMeshtel(state, AccessLogEncoding::kJson); }
void BM_FmtJson(benchmark::State& state) {
  RunFmt(state, AccessLogEncoding::kJson,
         [](const RequestRecord& r, const FmtFields& f, std::string& out) {
           FmtJson(fmt::runtime(MESHTEL_BENCH_JSON_FORMAT), r, f, out);
         });
}
void BM_FmtCompiledJson(benchmark::State& state) {
  RunFmt(state, AccessLogEncoding::kJson,
         [](const RequestRecord& r, const FmtFields& f, std::string& out) {
           FmtJson(FMT_COMPILE(MESHTEL_BENCH_JSON_FORMAT), r, f, out);
         });
}

BENCHMARK(BM_MeshtelText);
BENCHMARK(BM_FmtText);
BENCHMARK(BM_FmtCompiledText);
BENCHMARK(BM_MeshtelJson);
BENCHMARK(BM_FmtJson);
BENCHMARK(BM_FmtCompiledJson);

}  // namespace
