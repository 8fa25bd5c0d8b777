// serve_load: the load generator of bench/serve_load. Sends the same inference request over
// and over, to Outpost or to a floor server, and prints one line:
//
//   <requests/s> <p50 us> <p99 us> <errors>
//
// Modes:
//   --http HOST:PORT --path P --body FILE [--header "Name: value"]...
//       HTTP/1.1 POST with keep-alive; any 2xx answer counts as a success.
//   --grpc HOST:PORT --model M --rows R --cols C
//       inference.GRPCInferenceService/ModelInfer with R x C FP32 raw_input_contents.
// Load:
//   --closed N    N clients, each sending its next request when the last one is answered.
//   --open RATE   Poisson arrivals at RATE requests/s (exponential gaps), served by
//                 --connections N clients; latency counts from each request's scheduled
//                 arrival, so a server that falls behind is charged for the wait.
//   --duration S  seconds of measurement (after a 1 s warm-up that is not counted).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "serve/inference.grpc.pb.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Flags {
  std::string http, grpc, path = "/", body_file, model;
  std::vector<std::string> headers;
  int rows = 1, cols = 8;
  int closed = 0;
  double open_rate = 0;
  int connections = 64;
  double duration = 10;
};

[[noreturn]] void Die(const std::string& message) {
  std::fprintf(stderr, "serve_load: %s\n", message.c_str());
  std::exit(2);
}

std::pair<std::string, int> HostPort(const std::string& s) {
  size_t colon = s.rfind(':');
  if (colon == std::string::npos) Die("expected HOST:PORT, got " + s);
  return {s.substr(0, colon), std::atoi(s.c_str() + colon + 1)};
}

// One client: sends a request and waits for its answer. Returns false on an error.
class Client {
 public:
  virtual ~Client() = default;
  virtual bool Call() = 0;
};

class HttpClient final : public Client {
 public:
  HttpClient(const std::string& target, const std::string& request) : request_(request) {
    auto [host, port] = HostPort(target);
    host_ = host;
    port_ = port;
    Connect();
  }
  ~HttpClient() override {
    if (fd_ >= 0) ::close(fd_);
  }

  bool Call() override {
    for (int attempt = 0; attempt < 2; ++attempt) {
      if (fd_ < 0) Connect();
      if (fd_ >= 0 && Send() && Receive()) return status_ >= 200 && status_ < 300;
      ::close(fd_);
      fd_ = -1;
      buffer_.clear();
    }
    return false;
  }

 private:
  void Connect() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port_));
    ::inet_pton(AF_INET, host_.c_str(), &addr.sin_addr);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      ::close(fd_);
      fd_ = -1;
      return;
    }
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  bool Send() {
    size_t sent = 0;
    while (sent < request_.size()) {
      ssize_t n = ::send(fd_, request_.data() + sent, request_.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return false;
      sent += static_cast<size_t>(n);
    }
    return true;
  }
  // Reads one response (Content-Length bodies only, as Outpost and nginx send).
  bool Receive() {
    for (;;) {
      size_t end = buffer_.find("\r\n\r\n");
      if (end != std::string::npos) {
        status_ = std::atoi(buffer_.c_str() + 9);
        size_t length = 0;
        size_t at = 0;
        std::string head = buffer_.substr(0, end);
        for (char& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if ((at = head.find("content-length:")) != std::string::npos) {
          length = std::strtoull(head.c_str() + at + 15, nullptr, 10);
        }
        const size_t total = end + 4 + length;
        while (buffer_.size() < total) {
          if (!Read()) return false;
        }
        buffer_.erase(0, total);
        return true;
      }
      if (!Read()) return false;
    }
  }
  bool Read() {
    char chunk[16384];
    ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
    if (n <= 0) return false;
    buffer_.append(chunk, static_cast<size_t>(n));
    return true;
  }

  std::string host_;
  int port_ = 0;
  const std::string& request_;
  int fd_ = -1;
  std::string buffer_;
  int status_ = 0;
};

class GrpcClient final : public Client {
 public:
  GrpcClient(std::shared_ptr<grpc::Channel> channel, const inference::ModelInferRequest& request)
      : stub_(inference::GRPCInferenceService::NewStub(channel)), request_(request) {}
  bool Call() override {
    grpc::ClientContext context;
    inference::ModelInferResponse response;
    return stub_->ModelInfer(&context, request_, &response).ok();
  }

 private:
  std::unique_ptr<inference::GRPCInferenceService::Stub> stub_;
  const inference::ModelInferRequest& request_;
};

struct Results {
  std::mutex mu;
  std::vector<double> latencies_us;
  uint64_t errors = 0;
  void Add(std::vector<double>& mine, uint64_t errors_seen) {
    std::lock_guard<std::mutex> lock(mu);
    latencies_us.insert(latencies_us.end(), mine.begin(), mine.end());
    errors += errors_seen;
  }
};

double Us(Clock::duration d) {
  return std::chrono::duration<double, std::micro>(d).count();
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) Die("missing value after " + a);
      return argv[++i];
    };
    if (a == "--http") flags.http = next();
    else if (a == "--grpc") flags.grpc = next();
    else if (a == "--path") flags.path = next();
    else if (a == "--body") flags.body_file = next();
    else if (a == "--header") flags.headers.push_back(next());
    else if (a == "--model") flags.model = next();
    else if (a == "--rows") flags.rows = std::atoi(next().c_str());
    else if (a == "--cols") flags.cols = std::atoi(next().c_str());
    else if (a == "--closed") flags.closed = std::atoi(next().c_str());
    else if (a == "--open") flags.open_rate = std::atof(next().c_str());
    else if (a == "--connections") flags.connections = std::atoi(next().c_str());
    else if (a == "--duration") flags.duration = std::atof(next().c_str());
    else Die("unknown flag " + a);
  }
  if (flags.http.empty() == flags.grpc.empty()) Die("give one of --http or --grpc");
  if ((flags.closed > 0) == (flags.open_rate > 0)) Die("give one of --closed or --open");

  std::string http_request;
  inference::ModelInferRequest grpc_request;
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  if (!flags.http.empty()) {
    std::ifstream in(flags.body_file, std::ios::binary);
    if (!in) Die("cannot read " + flags.body_file);
    std::stringstream body;
    body << in.rdbuf();
    http_request = "POST " + flags.path + " HTTP/1.1\r\nHost: " + flags.http +
                   "\r\nContent-Length: " + std::to_string(body.str().size()) + "\r\n";
    bool has_type = false;
    for (const std::string& h : flags.headers) {
      http_request += h + "\r\n";
      has_type = has_type || h.rfind("Content-Type", 0) == 0;
    }
    if (!has_type) http_request += "Content-Type: application/json\r\n";
    http_request += "\r\n" + body.str();
  } else {
    grpc_request.set_model_name(flags.model);
    auto* input = grpc_request.add_inputs();
    input->set_name("features");
    input->set_datatype("FP32");
    input->add_shape(flags.rows);
    input->add_shape(flags.cols);
    std::string raw;
    std::mt19937 gen(7);
    std::uniform_real_distribution<float> value(0, 100);
    for (int i = 0; i < flags.rows * flags.cols; ++i) {
      float v = value(gen);
      raw.append(reinterpret_cast<const char*>(&v), sizeof(v));
    }
    grpc_request.add_raw_input_contents(raw);
    // Several HTTP/2 connections, as several clients would open.
    const int n = std::max(1, std::min(8, (flags.closed > 0 ? flags.closed : flags.connections) / 8));
    for (int c = 0; c < n; ++c) {
      grpc::ChannelArguments args;
      args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
      args.SetInt("outpost.bench.channel", c);
      channels.push_back(
          grpc::CreateCustomChannel(flags.grpc, grpc::InsecureChannelCredentials(), args));
    }
  }
  auto make_client = [&](int i) -> std::unique_ptr<Client> {
    if (!flags.http.empty()) return std::make_unique<HttpClient>(flags.http, http_request);
    return std::make_unique<GrpcClient>(channels[static_cast<size_t>(i) % channels.size()],
                                        grpc_request);
  };

  Results results;
  const Clock::time_point start = Clock::now();
  const Clock::time_point measure_from = start + std::chrono::seconds(1);
  const Clock::time_point stop =
      measure_from + std::chrono::duration_cast<Clock::duration>(
                         std::chrono::duration<double>(flags.duration));
  std::vector<std::thread> threads;
  if (flags.closed > 0) {
    for (int i = 0; i < flags.closed; ++i) {
      threads.emplace_back([&, i] {
        std::unique_ptr<Client> client = make_client(i);
        std::vector<double> mine;
        uint64_t errors = 0;
        for (;;) {
          const Clock::time_point sent = Clock::now();
          if (sent >= stop) break;
          const bool ok = client->Call();
          if (sent < measure_from) continue;
          if (ok) {
            mine.push_back(Us(Clock::now() - sent));
          } else {
            ++errors;
          }
        }
        results.Add(mine, errors);
      });
    }
  } else {
    // One dispatcher draws Poisson arrival times; clients take them in order.
    std::mutex mu;
    std::condition_variable cv;
    std::deque<Clock::time_point> arrivals;
    bool done = false;
    for (int i = 0; i < flags.connections; ++i) {
      threads.emplace_back([&, i] {
        std::unique_ptr<Client> client = make_client(i);
        std::vector<double> mine;
        uint64_t errors = 0;
        for (;;) {
          Clock::time_point due;
          {
            std::unique_lock<std::mutex> lock(mu);
            cv.wait(lock, [&] { return done || !arrivals.empty(); });
            if (arrivals.empty()) break;
            due = arrivals.front();
            arrivals.pop_front();
          }
          std::this_thread::sleep_until(due);
          const bool ok = client->Call();
          if (due < measure_from) continue;
          if (ok) {
            mine.push_back(Us(Clock::now() - due));
          } else {
            ++errors;
          }
        }
        results.Add(mine, errors);
      });
    }
    std::mt19937_64 gen(42);
    std::exponential_distribution<double> gap(flags.open_rate);
    Clock::time_point t = Clock::now();
    while (t < stop) {
      t += std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(gap(gen)));
      std::this_thread::sleep_until(t - std::chrono::microseconds(200));
      {
        std::lock_guard<std::mutex> lock(mu);
        arrivals.push_back(t);
      }
      cv.notify_one();
    }
    {
      std::lock_guard<std::mutex> lock(mu);
      done = true;
    }
    cv.notify_all();
  }
  for (auto& t : threads) t.join();

  std::vector<double>& l = results.latencies_us;
  std::sort(l.begin(), l.end());
  auto pct = [&l](double p) {
    if (l.empty()) return 0.0;
    return l[std::min(l.size() - 1, static_cast<size_t>(p * static_cast<double>(l.size())))];
  };
  std::printf("%.0f %.0f %.0f %llu\n", static_cast<double>(l.size()) / flags.duration, pct(0.50),
              pct(0.99), static_cast<unsigned long long>(results.errors));
  return 0;
}
