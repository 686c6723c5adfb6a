#pragma once
// Test support: a Loki push receiver on 127.0.0.1 (a TestHttpServer) that keeps every push it is
// sent and decodes each one twice: snappy block format first, then the protobuf with the
// project's own subset (proto/loki/push.proto) AND, when ../shared is present, with the official
// Loki schema (compiled at test time into a descriptor set, parsed with DescriptorPool and
// DynamicMessageFactory). Any difference between the two decodes, or a field the official
// schema does not know, is listed in LokiPush::official_mismatches.
//
// The answer is set with Answer() (default 204) or Hang().
// Threading: the receiver's IO thread records pushes; tests read them with Pushes() from any
// thread.

#include <cstdint>
#include <map>
#include <mutex>
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

class LokiReceiver {
 public:
  LokiReceiver();

  // Answer every push with `status`, these headers and this body.
  void Answer(int status, std::vector<std::pair<std::string, std::string>> headers = {},
              std::string body = "");
  // Never answer (until the receiver is destroyed).
  void Hang();

  std::vector<LokiPush> Pushes() const;
  uint16_t port() const { return server_.port(); }
  // http://127.0.0.1:<port>/loki/api/v1/push
  std::string url() const;

 private:
  TestHttpReply Handle(const TestHttpRequest& request);

  mutable std::mutex mutex_;
  TestHttpReply reply_;           // guarded by mutex_
  std::vector<LokiPush> pushes_;  // guarded by mutex_
  TestHttpServer server_;         // last: stops before the rest goes
};

}  // namespace meshtel::testing
