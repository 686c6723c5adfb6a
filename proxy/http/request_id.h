#pragma once
// x-request-id values: random UUIDv4 in the canonical 36-character lower-case form.
// Thread-safe: each thread draws from its own generator, seeded from the OS.

#include <cstddef>
#include <string>

namespace meshtel::proxy {

inline constexpr char kRequestIdHeader[] = "x-request-id";

inline constexpr size_t kRequestIdSize = 36;

// Writes a new id to `out` (kRequestIdSize characters, no terminator).
void WriteRequestId(char* out);
std::string NewRequestId();

}  // namespace meshtel::proxy
