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
//   --duration S  seconds of measurement (after the warm-up, which is not counted).
//   --warmup S    seconds of warm-up before the measurement (1 by default).
//   --requests N  stop after N requests instead of after --duration (the open loop draws N
//                 arrivals; the closed loop's clients share N calls); requests/s is then
//                 counted over the time the N took.
//   --timeout S   seconds one call may take before it counts as an error (10 by default), so
//                 a server that stops answering ends the run instead of holding it.
//   --check       exit 1 unless every request counted was answered with a success (the
//                 client's own test, serve_load_client_test, runs with it).
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
#include <functional>
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
  double warmup = 1;
  long requests = 0;     // 0: the run ends after --duration
  double timeout = 10;   // seconds one call may take
  bool check = false;
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

Clock::duration Seconds(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

// One client: sends a request and waits for its answer. Returns false on an error. A client
// is used by one thread only.
class Client {
 public:
  virtual ~Client() = default;
  virtual bool Call() = 0;
};

class HttpClient final : public Client {
 public:
  // `request` is shared, read-only, by every client and outlives them all.
  HttpClient(const std::string& target, const std::string& request, double timeout)
      : request_(request), timeout_(timeout) {
    auto [host, port] = HostPort(target);
    host_ = host;
    port_ = port;
    Connect();
  }
  ~HttpClient() override { Close(); }

  bool Call() override {
    for (int attempt = 0; attempt < 2; ++attempt) {
      if (fd_ < 0) Connect();
      if (fd_ >= 0 && Send() && Receive()) return status_ >= 200 && status_ < 300;
      Close();
    }
    return false;
  }

 private:
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    buffer_.clear();
  }
  void Connect() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return;
    // Sends, receives and the connect itself give up after --timeout: a server that stops
    // answering costs an error, never a hung run.
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(timeout_);
    tv.tv_usec = static_cast<suseconds_t>((timeout_ - static_cast<double>(tv.tv_sec)) * 1e6);
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port_));
    ::inet_pton(AF_INET, host_.c_str(), &addr.sin_addr);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      Close();
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
        // "HTTP/1.1 200": the code starts at byte 9 of a status line long enough to hold it.
        status_ = end >= 12 ? std::atoi(buffer_.c_str() + 9) : 0;
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
  const double timeout_;
  int fd_ = -1;
  std::string buffer_;
  int status_ = 0;
};

class GrpcClient final : public Client {
 public:
  // Each client serializes its own copy of the request: a protobuf message caches its size
  // while it is serialized, so one message shared by every client thread is written by all
  // of them at once.
  GrpcClient(std::shared_ptr<grpc::Channel> channel, const inference::ModelInferRequest& request,
             double timeout)
      : stub_(inference::GRPCInferenceService::NewStub(channel)),
        request_(request),
        timeout_(std::chrono::duration_cast<std::chrono::system_clock::duration>(
            std::chrono::duration<double>(timeout))) {}
  bool Call() override {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + timeout_);
    inference::ModelInferResponse response;
    return stub_->ModelInfer(&context, request_, &response).ok();
  }

 private:
  std::unique_ptr<inference::GRPCInferenceService::Stub> stub_;
  const inference::ModelInferRequest request_;
  const std::chrono::system_clock::duration timeout_;
};

using ClientFactory = std::function<std::unique_ptr<Client>(int)>;

// When the counted requests start and when the run stops (Clock::time_point::max() when
// --requests bounds it instead).
struct Window {
  Clock::time_point measure_from;
  Clock::time_point stop;
};

double Us(Clock::duration d) {
  return std::chrono::duration<double, std::micro>(d).count();
}

// What one client thread saw; merged into Results once, when the thread ends.
struct Tally {
  std::vector<double> latencies_us;
  uint64_t errors = 0;
  Clock::time_point last_answer{};
  void Count(bool ok, Clock::time_point from) {
    if (!ok) {
      ++errors;
      return;
    }
    last_answer = Clock::now();
    latencies_us.push_back(Us(last_answer - from));
  }
};

struct Results {
  std::mutex mu;
  Tally all;
  void Add(const Tally& mine) {
    std::lock_guard<std::mutex> lock(mu);
    all.latencies_us.insert(all.latencies_us.end(), mine.latencies_us.begin(),
                            mine.latencies_us.end());
    all.errors += mine.errors;
    all.last_answer = std::max(all.last_answer, mine.last_answer);
  }
};

// Closed loop: `flags.closed` clients, each calling again as soon as it is answered. With
// --requests the clients share the N counted calls. Returns when every client has ended.
void RunClosed(const Flags& flags, const Window& window, const ClientFactory& make_client,
               Results* results) {
  std::atomic<long> left{flags.requests};
  std::vector<std::thread> threads;
  for (int i = 0; i < flags.closed; ++i) {
    threads.emplace_back([&, i] {
      std::unique_ptr<Client> client = make_client(i);
      Tally mine;
      for (;;) {
        const Clock::time_point sent = Clock::now();
        if (sent >= window.stop) break;
        const bool measured = sent >= window.measure_from;
        if (measured && flags.requests > 0 && left.fetch_sub(1) <= 0) break;
        const bool ok = client->Call();
        if (measured) mine.Count(ok, sent);
      }
      results->Add(mine);
    });
  }
  for (std::thread& t : threads) t.join();
}

// The open loop's scheduled arrivals: the dispatcher pushes them in time order, the clients
// take them in that order. Thread-safe.
class ArrivalQueue {
 public:
  void Push(Clock::time_point due) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      due_.push_back(due);
    }
    cv_.notify_one();
  }
  // No arrival follows; the clients drain what is queued, then end.
  void Close() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      closed_ = true;
    }
    cv_.notify_all();
  }
  // Waits for the next arrival; false once the queue is closed and empty.
  bool Pop(Clock::time_point* due) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return closed_ || !due_.empty(); });
    if (due_.empty()) return false;
    *due = due_.front();
    due_.pop_front();
    return true;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Clock::time_point> due_;
  bool closed_ = false;
};

// Open loop: one dispatcher (this thread) draws Poisson arrival times at `flags.open_rate`
// and `flags.connections` clients serve them; latency counts from each scheduled arrival.
// The queue and everything the clients use outlive them: the clients are joined here, before
// the queue goes out of scope.
void RunOpen(const Flags& flags, const Window& window, const ClientFactory& make_client,
             Results* results) {
  ArrivalQueue queue;
  std::vector<std::thread> threads;
  for (int i = 0; i < flags.connections; ++i) {
    threads.emplace_back([&, i] {
      std::unique_ptr<Client> client = make_client(i);
      Tally mine;
      Clock::time_point due;
      while (queue.Pop(&due)) {
        std::this_thread::sleep_until(due);
        const bool ok = client->Call();
        if (due >= window.measure_from) mine.Count(ok, due);
      }
      results->Add(mine);
    });
  }
  std::mt19937_64 gen(42);
  std::exponential_distribution<double> gap(flags.open_rate);
  Clock::time_point t = Clock::now();
  long counted = 0;
  for (;;) {
    t += Seconds(gap(gen));
    if (t >= window.stop) break;
    if (t >= window.measure_from && flags.requests > 0 && counted++ >= flags.requests) break;
    std::this_thread::sleep_until(t - std::chrono::microseconds(200));
    queue.Push(t);
  }
  queue.Close();
  for (std::thread& th : threads) th.join();
}

Flags ParseFlags(int argc, char** argv) {
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
    else if (a == "--warmup") flags.warmup = std::atof(next().c_str());
    else if (a == "--requests") flags.requests = std::atol(next().c_str());
    else if (a == "--timeout") flags.timeout = std::atof(next().c_str());
    else if (a == "--check") flags.check = true;
    else Die("unknown flag " + a);
  }
  if (flags.http.empty() == flags.grpc.empty()) Die("give one of --http or --grpc");
  if ((flags.closed > 0) == (flags.open_rate > 0)) Die("give one of --closed or --open");
  if (flags.open_rate > 0 && flags.connections < 1) Die("--connections must be at least 1");
  if (flags.rows < 1 || flags.cols < 1) Die("--rows and --cols must be at least 1");
  if (flags.requests < 0) Die("--requests must not be negative");
  if (flags.requests == 0 && !(flags.duration > 0)) Die("--duration must be positive");
  if (!(flags.warmup >= 0) || !(flags.timeout > 0)) Die("--warmup and --timeout: seconds");
  return flags;
}

std::string HttpRequest(const Flags& flags) {
  std::ifstream in(flags.body_file, std::ios::binary);
  if (!in) Die("cannot read " + flags.body_file);
  std::stringstream body;
  body << in.rdbuf();
  std::string request = "POST " + flags.path + " HTTP/1.1\r\nHost: " + flags.http +
                        "\r\nContent-Length: " + std::to_string(body.str().size()) + "\r\n";
  bool has_type = false;
  for (const std::string& h : flags.headers) {
    request += h + "\r\n";
    has_type = has_type || h.rfind("Content-Type", 0) == 0;
  }
  if (!has_type) request += "Content-Type: application/json\r\n";
  return request + "\r\n" + body.str();
}

inference::ModelInferRequest GrpcRequest(const Flags& flags) {
  inference::ModelInferRequest request;
  request.set_model_name(flags.model);
  auto* input = request.add_inputs();
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
  request.add_raw_input_contents(raw);
  return request;
}

// Several HTTP/2 connections, as several clients would open.
std::vector<std::shared_ptr<grpc::Channel>> GrpcChannels(const Flags& flags) {
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  const int n = std::max(1, std::min(8, (flags.closed > 0 ? flags.closed : flags.connections) / 8));
  for (int c = 0; c < n; ++c) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetInt("outpost.bench.channel", c);
    channels.push_back(
        grpc::CreateCustomChannel(flags.grpc, grpc::InsecureChannelCredentials(), args));
  }
  return channels;
}

}  // namespace

int main(int argc, char** argv) {
  const Flags flags = ParseFlags(argc, argv);

  // Built before any client thread starts and alive until main returns, after every client
  // thread has been joined.
  std::string http_request;
  inference::ModelInferRequest grpc_request;
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  if (!flags.http.empty()) {
    http_request = HttpRequest(flags);
  } else {
    grpc_request = GrpcRequest(flags);
    channels = GrpcChannels(flags);
  }
  const ClientFactory make_client = [&](int i) -> std::unique_ptr<Client> {
    if (!flags.http.empty()) {
      return std::make_unique<HttpClient>(flags.http, http_request, flags.timeout);
    }
    return std::make_unique<GrpcClient>(channels[static_cast<size_t>(i) % channels.size()],
                                        grpc_request, flags.timeout);
  };

  Results results;
  Window window;
  window.measure_from = Clock::now() + Seconds(flags.warmup);
  window.stop = flags.requests > 0 ? Clock::time_point::max()
                                   : window.measure_from + Seconds(flags.duration);
  if (flags.closed > 0) {
    RunClosed(flags, window, make_client, &results);
  } else {
    RunOpen(flags, window, make_client, &results);
  }

  std::vector<double>& l = results.all.latencies_us;
  std::sort(l.begin(), l.end());
  auto pct = [&l](double p) {
    if (l.empty()) return 0.0;
    return l[std::min(l.size() - 1, static_cast<size_t>(p * static_cast<double>(l.size())))];
  };
  // With --requests, the rate is over the time from the first counted request to the last
  // answer.
  const double seconds =
      flags.requests == 0
          ? flags.duration
          : std::chrono::duration<double>(results.all.last_answer - window.measure_from).count();
  const double rate = seconds > 0 ? static_cast<double>(l.size()) / seconds : 0.0;
  const unsigned long long errors = results.all.errors;
  std::printf("%.0f %.0f %.0f %llu\n", rate, pct(0.50), pct(0.99), errors);
  if (flags.check && (errors != 0 || l.empty() ||
                      (flags.requests > 0 && l.size() != static_cast<size_t>(flags.requests)))) {
    std::fprintf(stderr, "serve_load: check failed: %zu answered, %llu errors, %ld asked\n",
                 l.size(), errors, flags.requests);
    return 1;
  }
  return 0;
}
