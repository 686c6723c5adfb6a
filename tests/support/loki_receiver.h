#pragma once
// Test support: a Loki push receiver on 127.0.0.1 (a TestHttpServer) that keeps every push it is
// sent and decodes each one twice: snappy block format first, then the protobuf with the
// project's own subset (proto/loki/push.proto) AND, when ../shared is present, with the official
// Loki schema (compiled at test time into a descriptor set, parsed with DescriptorPool and
// DynamicMessageFactory). Any difference between the two decodes, or a field the official
// schema does not know, is listed in LokiPush::official_mismatches.
//
// The answer is set with Answer() (default 204) or Hang(). With Options::tls it speaks HTTPS only.
// Options::keep_pushes false keeps no push (Pushes() stays empty) but still decodes and compares
// each one: Summary() counts them, their lines, and the first error and mismatch seen. For
// benchmarks, where keeping every push would cost more than the exporter under test.
// Options::official_check_every N > 1 runs the official decode and comparison on the 1st,
// (N+1)th, (2N+1)th... decoded push only (every push is still decoded with the project's subset
// and its lines counted): for throughput benchmarks, where the reflection-based official decode
// would cost the receiver more than the exporter's own encoding. Tests keep the default, 1.
// Threading: the receiver's IO thread records pushes; tests read them with Pushes() from any
// thread.

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "loki/push.pb.h"
#include "tests/support/test_http_server.h"

namespace meshtel::testing {

struct LokiPush {
  std::string target;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;                            // as received (compressed)
  logproto::PushRequest request;               // decoded with the project's subset
  std::string decode_error;                    // snappy or protobuf failure, or empty
  bool official_checked = false;               // the official decode ran
  std::vector<std::string> official_mismatches;
  int answered = 0;  // the status the receiver answered (0: it hung)
};

// Why the official schema cannot be used here (../shared absent, protoc missing...), or "" when
// it can. The descriptor set is compiled once per process.
std::string OfficialLokiSchemaUnavailableReason();

// What the receiver saw, over every push (kept or not).
struct LokiSummary {
  uint64_t pushes = 0;
  uint64_t lines = 0;             // entries over every stream of every decoded push
  uint64_t official_checked = 0;  // pushes the official decode ran on
  uint64_t decode_errors = 0;     // pushes with a decode_error
  uint64_t mismatched = 0;        // pushes with official_mismatches
  std::string first_decode_error;
  std::string first_mismatch;
};

class LokiReceiver {
 public:
  struct Options {
    bool keep_pushes = true;
    uint64_t official_check_every = 1;
    // Set: the receiver speaks HTTPS only (its certificate names kTestServerName when it comes
    // from test_certificates.h), and url() is https://.
    std::optional<TestTlsOptions> tls;
  };

  explicit LokiReceiver(Options options);
  LokiReceiver() : LokiReceiver(Options{}) {}

  // Answer every push with `status`, these headers and this body.
  void Answer(int status, std::vector<std::pair<std::string, std::string>> headers = {},
              std::string body = "");
  // Never answer (until the receiver is destroyed).
  void Hang();

  std::vector<LokiPush> Pushes() const;
  LokiSummary Summary() const;
  uint16_t port() const { return server_.port(); }
  // http://127.0.0.1:<port>/loki/api/v1/push (https:// with Options::tls)
  std::string url() const;
  // The receiver's server (connections, TLS handshakes).
  const TestHttpServer& server() const { return server_; }

 private:
  TestHttpReply Handle(const TestHttpRequest& request);
  // Whether the push being decoded gets the official check (counts decoded pushes; IO thread).
  bool OfficialCheckDue();

  const Options options_;
  mutable std::mutex mutex_;
  TestHttpReply reply_;           // guarded by mutex_
  std::vector<LokiPush> pushes_;  // guarded by mutex_
  LokiSummary summary_;           // guarded by mutex_
  uint64_t decoded_pushes_ = 0;   // IO thread only
  TestHttpServer server_;         // last: stops before the rest goes
};

}  // namespace meshtel::testing
