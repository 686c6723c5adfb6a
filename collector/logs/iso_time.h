#pragma once
// AppendIsoTimeMillis: a time as %START_TIME% renders it (collector/logs/access_log_format.h),
// for the encoders that write the same text outside a format.
//
// Threading: a pure function. Defined in access_log_format.cc, beside the renderer it shares.

#include <cstdint>
#include <string>

namespace meshtel::collector {

// Appends `unix_nanos` as ISO-8601 UTC with milliseconds, "2026-08-20T10:00:00.123Z" (what
// absl::FormatTime's "%Y-%m-%d%ET%H:%M:%E3SZ" gives, without its time-zone machinery).
void AppendIsoTimeMillis(std::string& out, uint64_t unix_nanos);

}  // namespace meshtel::collector
