// Benchmarks the trace exporters' encoders (stored meshtel.v1.Span -> wire bytes) against plain
// protobuf serialization of the same spans in the same run (issue 6). Run by hand;
// docs/benchmarks.md has the command and the recorded figures.
//
//   BM_JaegerEncode: JaegerEncoder::Encode of a batch of 1000 stored spans (8 services, traces
//     of 5 spans, 13 attributes and 3 resource attributes each): one PostSpansRequest per process,
//     length-delimited.
//   BM_OtlpEncode: OtlpEncoder::Encode (http/protobuf, no compression) of the same batch: one
//     ExportTraceServiceRequest grouped by resource and scope.
//   BM_OtlpEncodeGzip: the same with compression: gzip (zlib's fastest level).
//   BM_SerializeStoredSpans (floor): SerializeToString of each of the 1000 stored spans into a
//     reused string: what writing the same spans costs with no mapping at all.
//   BM_SerializeBuiltOtlpRequest (floor): SerializeToString of the OTLP request built once before
//     timing: the serialization share of BM_OtlpEncode.
// Throughput (bytes_per_second) counts the bytes each benchmark writes (before compression for
// the gzip case); items_per_second counts spans.

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "exporters/jaeger/jaeger_encoder.h"
#include "exporters/otlp/otlp_encoder.h"
#include "fmt/format.h"
#include "tests/support/span_samples.h"

namespace {

using meshtel::collector::StoredRecord;

constexpr int kBatch = 1000;

std::vector<StoredRecord> MakeBatch() {
  static const char* const kServices[] = {"frontend", "cart",    "checkout", "payment",
                                          "reviews",  "ratings", "details",  "catalog"};
  std::vector<StoredRecord> batch;
  for (int i = 0; i < kBatch; ++i) {
    const int trace = i / 5;
    const std::string trace_hex =
        fmt::format("4bf92f3577b34da6{:016x}", 0xa3ce929d0e0e0000ull + trace);
    const std::string span_hex = fmt::format("{:016x}", 0x00f067aa0ba90000ull + i);
    const std::string parent_hex =
        i % 5 == 0 ? "" : fmt::format("{:016x}", 0x00f067aa0ba90000ull + (i - 1));
    meshtel::v1::Span span = meshtel::testing::SampleSpan(
        trace_hex, span_hex, parent_hex, kServices[(i + trace) % 8], i % 3 == 0 ? "shop" : "web");
    span.set_start_time_unix_nano(span.start_time_unix_nano() + static_cast<uint64_t>(i) * 1000);
    span.set_end_time_unix_nano(span.end_time_unix_nano() + static_cast<uint64_t>(i) * 1500);
    if (i % 5 != 0) span.set_kind(meshtel::v1::SPAN_KIND_CLIENT);
    if (i % 50 == 7) span.set_status_code(meshtel::v1::SPAN_STATUS_CODE_ERROR);
    batch.push_back(meshtel::testing::StoredSpan(std::move(span), static_cast<uint64_t>(i + 1)));
  }
  return batch;
}

const std::vector<StoredRecord>& Batch() {
  static const std::vector<StoredRecord> batch = MakeBatch();
  return batch;
}

void BM_JaegerEncode(benchmark::State& state) {
  meshtel::exporters::JaegerEncoder encoder;
  int64_t bytes = 0;
  for (auto _ : state) {
    absl::StatusOr<meshtel::collector::Payload> payload = encoder.Encode(Batch());
    if (!payload.ok()) state.SkipWithError("encode failed");
    bytes += static_cast<int64_t>(payload->body.size());
    benchmark::DoNotOptimize(payload->body.data());
  }
  state.SetBytesProcessed(bytes);
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_JaegerEncode);

void OtlpEncode(benchmark::State& state, meshtel::exporters::OtlpCompression compression) {
  meshtel::exporters::OtlpConfig config;
  config.compression = compression;
  meshtel::exporters::OtlpEncoder encoder(config);
  opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest request;
  if (!meshtel::exporters::BuildOtlpRequest(Batch(), request).ok()) std::abort();
  const size_t uncompressed = request.ByteSizeLong();
  int64_t bytes = 0;
  for (auto _ : state) {
    absl::StatusOr<meshtel::collector::Payload> payload = encoder.Encode(Batch());
    if (!payload.ok()) state.SkipWithError("encode failed");
    bytes += static_cast<int64_t>(uncompressed);
    benchmark::DoNotOptimize(payload->body.data());
  }
  state.SetBytesProcessed(bytes);
  state.SetItemsProcessed(state.iterations() * kBatch);
}

void BM_OtlpEncode(benchmark::State& state) {
  OtlpEncode(state, meshtel::exporters::OtlpCompression::kNone);
}
BENCHMARK(BM_OtlpEncode);

void BM_OtlpEncodeGzip(benchmark::State& state) {
  OtlpEncode(state, meshtel::exporters::OtlpCompression::kGzip);
}
BENCHMARK(BM_OtlpEncodeGzip);

void BM_SerializeStoredSpans(benchmark::State& state) {
  std::string out;
  int64_t bytes = 0;
  for (auto _ : state) {
    for (const StoredRecord& record : Batch()) {
      record.span.SerializeToString(&out);
      bytes += static_cast<int64_t>(out.size());
      benchmark::DoNotOptimize(out.data());
    }
  }
  state.SetBytesProcessed(bytes);
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_SerializeStoredSpans);

void BM_SerializeBuiltOtlpRequest(benchmark::State& state) {
  opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest request;
  if (!meshtel::exporters::BuildOtlpRequest(Batch(), request).ok()) std::abort();
  std::string out;
  int64_t bytes = 0;
  for (auto _ : state) {
    request.SerializeToString(&out);
    bytes += static_cast<int64_t>(out.size());
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(bytes);
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_SerializeBuiltOtlpRequest);

}  // namespace
