#pragma once
// The names the access-log and export formats give the record's enums (as Istio and Envoy print
// them): "source"/"destination" for the reporter, "http"/"grpc"/"tcp" for the request protocol;
// "" for a value the record leaves unset. Pure functions; safe from any thread.

#include <string_view>

#include "meshtel/v1/record.pb.h"

namespace meshtel::common {

inline std::string_view ReporterName(meshtel::v1::Reporter reporter) {
  switch (reporter) {
    case meshtel::v1::REPORTER_SOURCE:
      return "source";
    case meshtel::v1::REPORTER_DESTINATION:
      return "destination";
    default:
      return "";
  }
}

inline std::string_view RequestProtocolName(meshtel::v1::RequestProtocol protocol) {
  switch (protocol) {
    case meshtel::v1::REQUEST_PROTOCOL_HTTP:
      return "http";
    case meshtel::v1::REQUEST_PROTOCOL_GRPC:
      return "grpc";
    case meshtel::v1::REQUEST_PROTOCOL_TCP:
      return "tcp";
    default:
      return "";
  }
}

}  // namespace meshtel::common
