// meshtel-demo: the demo mesh's two small services and its load generator.
//
//   meshtel-demo backend  --listen HOST:PORT
//   meshtel-demo frontend --listen HOST:PORT --backend HOST:PORT --backend-host NAME
//   meshtel-demo load     --target HOST:PORT --host NAME [--requests N] [--concurrency C]
//                         [--rate PER_SECOND] [--path PATH]
//
// backend answers every request with a small JSON body (GET /fail answers 503, /slow?ms=N waits).
// frontend calls the backend for each request it gets, through its sidecar's outbound listener
// (--backend), with Host: --backend-host, copying x-request-id and the trace-context headers
// (W3C, B3) as a mesh app must for its hops to join one trace.
// load sends requests (N in total, or until SIGINT/SIGTERM when N is 0) at a bounded rate over
// keep-alive connections and prints "load: sent=… ok=… failed=…"; exit 0 when nothing failed.
// Threading: one thread per connection (servers) or per concurrency slot (load).

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "boost/asio.hpp"
#include "boost/beast.hpp"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

std::atomic<bool> g_stop{false};

struct Args {
  std::map<std::string, std::string> values;
  std::string Get(const std::string& key, const std::string& fallback = "") const {
    auto it = values.find(key);
    return it == values.end() ? fallback : it->second;
  }
};

tcp::endpoint ParseEndpoint(const std::string& text) {
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos) {
    std::fprintf(stderr, "meshtel-demo: '%s' is not host:port\n", text.c_str());
    std::exit(2);
  }
  return tcp::endpoint(asio::ip::make_address(text.substr(0, colon)),
                       static_cast<uint16_t>(std::stoi(text.substr(colon + 1))));
}

// A keep-alive HTTP client connection that reconnects when needed.
class Client {
 public:
  explicit Client(tcp::endpoint endpoint) : endpoint_(endpoint) {}

  // Returns the response, or nullopt on a transport error (after one retry on a fresh connection).
  std::optional<http::response<http::string_body>> Send(http::request<http::string_body>& request) {
    for (int attempt = 0; attempt < 2; ++attempt) {
      beast::error_code error;
      if (!stream_) {
        stream_.emplace(io_context_);
        stream_->connect(endpoint_, error);
        if (error) {
          stream_.reset();
          return std::nullopt;
        }
        stream_->set_option(tcp::no_delay(true));
      }
      request.keep_alive(true);
      http::write(*stream_, request, error);
      http::response<http::string_body> response;
      if (!error) http::read(*stream_, buffer_, response, error);
      if (!error) {
        if (!response.keep_alive()) stream_.reset();
        return response;
      }
      stream_.reset();
      buffer_.clear();
    }
    return std::nullopt;
  }

 private:
  asio::io_context io_context_;
  tcp::endpoint endpoint_;
  std::optional<tcp::socket> stream_;
  beast::flat_buffer buffer_;
};

template <class Handler>
void Serve(const tcp::endpoint& endpoint, Handler handler) {
  asio::io_context io_context;
  tcp::acceptor acceptor(io_context);
  acceptor.open(endpoint.protocol());
  acceptor.set_option(asio::socket_base::reuse_address(true));
  acceptor.bind(endpoint);
  acceptor.listen();
  std::fprintf(stderr, "meshtel-demo: listening on %s:%u\n", endpoint.address().to_string().c_str(),
               acceptor.local_endpoint().port());
  for (;;) {
    tcp::socket socket(io_context);
    acceptor.accept(socket);
    std::thread([socket = std::move(socket), handler]() mutable {
      beast::flat_buffer buffer;
      beast::error_code error;
      for (;;) {
        http::request<http::string_body> request;
        http::read(socket, buffer, request, error);
        if (error) break;
        http::response<http::string_body> response = handler(request);
        response.version(request.version());
        response.keep_alive(request.keep_alive());
        response.prepare_payload();
        http::write(socket, response, error);
        if (error || !request.keep_alive()) break;
      }
      socket.shutdown(tcp::socket::shutdown_both, error);
    }).detach();
  }
}

int RunBackend(const Args& args) {
  Serve(ParseEndpoint(args.Get("listen", "127.0.0.1:8081")),
        [](const http::request<http::string_body>& request) {
          http::response<http::string_body> response{http::status::ok, 11};
          response.set(http::field::content_type, "application/json");
          const std::string target(request.target());
          if (target.starts_with("/fail")) {
            response.result(http::status::service_unavailable);
          } else if (target.starts_with("/slow")) {
            const size_t equals = target.find("ms=");
            const int ms =
                equals == std::string::npos ? 100 : std::atoi(target.c_str() + equals + 3);
            std::this_thread::sleep_for(std::chrono::milliseconds(ms));
          }
          response.body() = "{\"service\":\"backend\",\"path\":\"" + target + "\"}\n";
          return response;
        });
  return 0;
}

int RunFrontend(const Args& args) {
  const tcp::endpoint backend = ParseEndpoint(args.Get("backend", "127.0.0.1:15001"));
  const std::string backend_host = args.Get("backend-host", "backend");
  Serve(ParseEndpoint(args.Get("listen", "127.0.0.1:8080")),
        [backend, backend_host](const http::request<http::string_body>& request) {
          thread_local Client client(backend);
          http::request<http::string_body> call{http::verb::get, request.target(), 11};
          call.set(http::field::host, backend_host);
          call.set(http::field::user_agent, "meshtel-demo-frontend");
          for (const char* name :
               {"x-request-id", "traceparent", "tracestate", "b3", "x-b3-traceid", "x-b3-spanid",
                "x-b3-parentspanid", "x-b3-sampled", "x-b3-flags"}) {
            if (request.count(name) > 0) call.set(name, request[name]);
          }
          auto reply = client.Send(call);
          http::response<http::string_body> response{http::status::ok, 11};
          response.set(http::field::content_type, "application/json");
          if (!reply) {
            response.result(http::status::bad_gateway);
            response.body() = "{\"service\":\"frontend\",\"error\":\"backend unreachable\"}\n";
          } else {
            response.result(reply->result());
            response.body() = "{\"service\":\"frontend\",\"backend\":" + reply->body() + "}\n";
          }
          return response;
        });
  return 0;
}

int RunLoad(const Args& args) {
  const tcp::endpoint target = ParseEndpoint(args.Get("target", "127.0.0.1:15006"));
  const std::string host = args.Get("host", "frontend");
  const std::string path = args.Get("path", "/");
  const long total = std::stol(args.Get("requests", "100"));
  const int concurrency = std::max(1, std::stoi(args.Get("concurrency", "2")));
  const double rate = std::stod(args.Get("rate", "0"));  // per second in total; 0 = unbounded

  std::atomic<long> next{0};
  std::atomic<long> ok{0};
  std::atomic<long> failed{0};
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < concurrency; ++t) {
    threads.emplace_back([&] {
      Client client(target);
      for (;;) {
        const long index = next.fetch_add(1);
        if ((total > 0 && index >= total) || g_stop.load()) break;
        if (rate > 0) {
          std::this_thread::sleep_until(
              start + std::chrono::microseconds(static_cast<long>(index * 1e6 / rate)));
        }
        http::request<http::string_body> request{http::verb::get, path, 11};
        request.set(http::field::host, host);
        request.set(http::field::user_agent, "meshtel-demo-load");
        auto response = client.Send(request);
        if (response && response->result_int() < 500) {
          ok.fetch_add(1);
        } else {
          failed.fetch_add(1);
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  std::printf("load: sent=%ld ok=%ld failed=%ld\n", ok.load() + failed.load(), ok.load(),
              failed.load());
  return failed.load() == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: meshtel-demo backend|frontend|load [--key value]...\n");
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);
  Args args;
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string key = argv[i];
    if (!key.starts_with("--")) {
      std::fprintf(stderr, "meshtel-demo: unexpected argument '%s'\n", argv[i]);
      return 2;
    }
    args.values[key.substr(2)] = argv[i + 1];
  }
  const std::string mode = argv[1];
  if (mode == "backend") return RunBackend(args);
  if (mode == "frontend") return RunFrontend(args);
  if (mode == "load") {
    // The servers simply end on SIGTERM/SIGINT; the load generator finishes its requests in
    // flight and prints its summary.
    std::signal(SIGINT, [](int) { g_stop.store(true); });
    std::signal(SIGTERM, [](int) { g_stop.store(true); });
    return RunLoad(args);
  }
  std::fprintf(stderr, "meshtel-demo: unknown mode '%s'\n", mode.c_str());
  return 2;
}
