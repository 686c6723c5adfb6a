#pragma once
// RouteSpans: makes a span exporter deliver only the spans routed to it. A span built from a
// proxy record carries the span exporters its workload's tracing providers name
// (Span.exporters, set by the trace pipeline from the telemetry policy); a span without any
// (no policy, received spans) goes to every span exporter. Spans not routed to the exporter are
// resolved as filtered (Encoder::Delivers), never encoded.
//
// Threading and ownership: as the wrapped encoder (one delivery thread); the wrapper owns it.

#include <algorithm>
#include <memory>
#include <span>
#include <string>
#include <utility>

#include "collector/delivery/exporter.h"

namespace meshtel::collector {

class SpanRoutingEncoder : public Encoder {
 public:
  SpanRoutingEncoder(std::unique_ptr<Encoder> inner, std::string exporter)
      : inner_(std::move(inner)), exporter_(std::move(exporter)) {}

  bool Delivers(const StoredRecord& record) const override {
    const auto& routes = record.span.exporters();
    if (!routes.empty() && std::find(routes.begin(), routes.end(), exporter_) == routes.end()) {
      return false;
    }
    return inner_->Delivers(record);
  }
  absl::StatusOr<size_t> Measure(const StoredRecord& record) override {
    return inner_->Measure(record);
  }
  absl::StatusOr<Payload> Encode(std::span<const StoredRecord> records) override {
    return inner_->Encode(records);
  }
  uint64_t repaired_entries() const override { return inner_->repaired_entries(); }

 private:
  std::unique_ptr<Encoder> inner_;
  const std::string exporter_;
};

// `exporter` with its encoder wrapped when it delivers spans; unchanged otherwise.
inline Exporter RouteSpans(Exporter exporter) {
  if (exporter.family == RecordFamily::kSpans && exporter.encoder != nullptr) {
    exporter.encoder =
        std::make_unique<SpanRoutingEncoder>(std::move(exporter.encoder), exporter.name);
  }
  return exporter;
}

}  // namespace meshtel::collector
