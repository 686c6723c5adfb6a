#pragma once
// AccessLogRouting: per request record and log exporter, whether that exporter delivers the
// record's access-log line and in which format. The collector's PolicyEnforcer answers it from
// the telemetry policy (a workload's side disabled, its filter, its format, its providers);
// without a policy every record goes to every log exporter in the collector's `access_log`
// format.
//
// AccessLogLines is what the exporter builders take: a routing shared by every exporter, or one
// format for every record (implicitly made from an AccessLogFormat, as before policies).
//
// Threading: Route() is const and may run on any number of threads at once (each exporter's
// delivery thread calls it). Ownership: a Line keeps its format alive for as long as it is held.

#include <memory>
#include <string_view>
#include <utility>

#include "collector/logs/access_log_format.h"
#include "meshtel/v1/record.pb.h"

namespace meshtel::collector {

class AccessLogRouting {
 public:
  virtual ~AccessLogRouting() = default;

  struct Line {
    // The record's line format (set even when the record is not delivered, so that an encoder
    // asked to encode it after a policy change still can).
    const AccessLogFormat* format = nullptr;
    // False: exporter `exporter` does not deliver the record (resolved as filtered).
    bool deliver = true;
    std::shared_ptr<const void> keep;  // keeps *format alive
  };
  // The line of request record `record` for the log exporter named `exporter`.
  virtual Line Route(const meshtel::v1::RequestRecord& record, std::string_view exporter) const = 0;
};

// Every record to every exporter in one format.
class FixedAccessLogRouting : public AccessLogRouting {
 public:
  explicit FixedAccessLogRouting(AccessLogFormat format)
      : format_(std::make_shared<const AccessLogFormat>(std::move(format))) {}
  Line Route(const meshtel::v1::RequestRecord&, std::string_view) const override {
    return Line{format_.get(), true, format_};
  }

 private:
  std::shared_ptr<const AccessLogFormat> format_;
};

class AccessLogLines {
 public:
  // One format for every record (copied).
  AccessLogLines(const AccessLogFormat& format)  // NOLINT(google-explicit-constructor)
      : routing_(std::make_shared<const FixedAccessLogRouting>(format)) {}
  explicit AccessLogLines(std::shared_ptr<const AccessLogRouting> routing)
      : routing_(std::move(routing)) {}

  AccessLogRouting::Line Route(const meshtel::v1::RequestRecord& record,
                               std::string_view exporter) const {
    return routing_->Route(record, exporter);
  }
  const std::shared_ptr<const AccessLogRouting>& routing() const { return routing_; }

 private:
  std::shared_ptr<const AccessLogRouting> routing_;
};

}  // namespace meshtel::collector
