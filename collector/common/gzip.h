#pragma once
// gzip (RFC 1952) compression and bounded decompression, over zlib: the one implementation the
// scrape handler, the exporters and the receivers share.
//
// Threading: stateless, safe from any thread. Errors: GzipCompress fails only when zlib does
// (Internal). GzipDecompress returns InvalidArgument for data that is not gzip or is cut short
// and ResourceExhausted as soon as the output would pass `max_output_bytes` (it never inflates
// past the limit: a small "zip bomb" costs no more than the limit). Concatenated gzip members
// (RFC 1952 §2.2) decompress to the concatenation of their contents.

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace meshtel::common {

// `level`: zlib's 1 (fastest) to 9 (smallest); -1 = zlib's default (6).
absl::StatusOr<std::string> GzipCompress(std::string_view data, int level = 1);

absl::StatusOr<std::string> GzipDecompress(std::string_view data, size_t max_output_bytes);

}  // namespace meshtel::common
