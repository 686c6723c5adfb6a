// Fuzzes RecordView (collector/traces/record_view.h), which reads the stored records of kept traces
// in place to build their spans. Input: any bytes, taken as a stored RequestRecord. Invariants:
// reading never crashes or reads out of bounds; when the view reads the bytes and protobuf parses
// them too, SpanBuilder::Encode gives the same spans from the view as from the parsed record, byte
// for byte, with and without phase spans (a view of bytes protobuf refuses is outside its
// contract: the pipeline holds only records protobuf accepted).

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "collector/traces/record_view.h"
#include "collector/traces/span_builder.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using meshtel::collector::RecordView;
  using meshtel::collector::SerializedSpans;
  using meshtel::collector::SpanBuilder;
  using meshtel::collector::SpanMarks;
  using meshtel::collector::SpanOptions;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  static RecordView view;  // reused, as the pipeline reuses its view
  if (!view.Read(bytes)) return 0;
  meshtel::v1::RequestRecord parsed;
  if (!parsed.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) return 0;
  static const SpanBuilder builder(meshtel::collector::TracesConfig{});
  if (builder.ServiceName(view) != builder.ServiceName(parsed)) std::abort();
  for (const bool phases : {false, true}) {
    const SpanOptions options{.phase_spans = phases};
    SerializedSpans from_view;
    SerializedSpans from_record;
    const size_t count = builder.Encode(view, options, SpanMarks{}, from_view);
    if (builder.Encode(parsed, options, SpanMarks{}, from_record) != count) std::abort();
    for (size_t i = 0; i < count; ++i) {
      if (from_view.bytes(i) != from_record.bytes(i)) std::abort();
    }
  }
  return 0;
}
