// The simulated sites at work: one coroutine per site on one Asio event loop (no thread per
// site), each with its own TLS connections, presenting its own certificate, from its own
// loopback address. A site wakes on its schedule, makes a batch of R records (sync::EncodeBatch,
// the forwarder's upload body), opens a connection to its hub, sends what it holds in seq
// order over that one connection, a status report every few batches, and closes: the hub
// closes a connection idle for 30 s, so a site uploading once a minute connects each time.
//
// Faults, each drawn per upload attempt or per batch at its configured rate:
//   drop      the connection is closed mid-upload: half the body sent (the hub never has the
//             batch), or all of it with the answer never read (the hub stored it, the site
//             does not know): the site backs off and sends the batch again.
//   duplicate an acknowledged batch is sent once more; the hub must answer `duplicate`.
//   late      a batch is held back and sent after the next one (older seqs after newer).
// Boost 1.74's asio/awaitable.hpp uses std::exchange without including <utility>.
#include <utility>

#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <algorithm>
#include <cstdio>

#include "base/clock.h"
#include "bench/fleet/fleet.h"
#include "bench/ingest/copy_peer.h"
#include "sync/batch.h"

namespace outpost::fleet {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using asio::awaitable;
using asio::use_awaitable;
using tcp = asio::ip::tcp;
using ErrorCode = boost::system::error_code;

constexpr auto kStepTimeout = std::chrono::seconds(30);
constexpr const char* kNode = "n1";
constexpr const char* kStream = "pump-failure";

struct Answer {
  int status = 0;  // 0: no answer
  std::string body{};
  std::string error{};
};

enum class Fault { kNone, kDropMidBody, kDropAckLost };
enum class Upload { kAcked, kRefused, kGaveUp };

// One site's TLS connection to its hub: its certificate and key on the session, the hub's
// certificate verified against the hub CA and the hub's IP address.
class Connection {
 public:
  Connection(asio::io_context& io, asio::ssl::context& tls, const Site& site,
             const tcp::endpoint& hub)
      : io_(io), tls_(tls), site_(site), hub_(hub) {}
  ~Connection() { Close(); }

  bool open() const { return stream_ != nullptr; }

  // Connects and handshakes; the error's text, empty on success.
  awaitable<std::string> Open() {
    stream_ = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(io_, tls_);
    SSL* ssl = stream_->native_handle();
    if (SSL_use_certificate(ssl, site_.cert.get()) != 1 ||
        SSL_use_PrivateKey(ssl, site_.key.get()) != 1 ||
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), hub_.address().to_string().c_str()) !=
            1) {
      Close();
      co_return "cannot set the site's credential on the session";
    }
    auto& layer = beast::get_lowest_layer(*stream_);
    ErrorCode ec;
    const char* step = "bind";
    layer.socket().open(tcp::v4(), ec);
    if (!ec) layer.socket().bind(tcp::endpoint(asio::ip::address_v4(site_.source_ip), 0), ec);
    if (!ec) {
      step = "connect";
      layer.expires_after(kStepTimeout);
      co_await layer.async_connect(hub_, asio::redirect_error(use_awaitable, ec));
    }
    if (!ec) {
      step = "handshake";
      co_await stream_->async_handshake(asio::ssl::stream_base::client,
                                        asio::redirect_error(use_awaitable, ec));
    }
    if (ec) {
      Close();
      co_return std::string(step) + ": " + ec.message();
    }
    co_return "";
  }

  awaitable<Answer> Post(std::string_view target, std::string_view type, const std::string& body,
                         Fault fault) {
    std::string head = "POST " + std::string(target) +
                       " HTTP/1.1\r\nHost: " + hub_.address().to_string() +
                       "\r\nContent-Type: " + std::string(type) +
                       "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n";
    const size_t sent = fault == Fault::kDropMidBody ? body.size() / 2 : body.size();
    std::array<asio::const_buffer, 2> buffers{asio::buffer(head), asio::buffer(body.data(), sent)};
    ErrorCode ec;
    beast::get_lowest_layer(*stream_).expires_after(kStepTimeout);
    co_await asio::async_write(*stream_, buffers, asio::redirect_error(use_awaitable, ec));
    if (ec || fault != Fault::kNone) {
      Close();
      co_return Answer{.error = ec ? ec.message() : "dropped"};
    }
    bhttp::response<bhttp::string_body> response;
    co_await bhttp::async_read(*stream_, buffer_, response,
                               asio::redirect_error(use_awaitable, ec));
    if (ec) {
      Close();
      co_return Answer{.error = ec.message()};
    }
    if (!response.keep_alive()) Close();
    co_return Answer{.status = static_cast<int>(response.result_int()),
                     .body = std::move(response.body())};
  }

  // Closes at once (no close_notify): what a site that loses its network does.
  void Close() {
    if (!stream_) return;
    ErrorCode ignored;
    beast::get_lowest_layer(*stream_).socket().close(ignored);
    stream_.reset();
    buffer_.clear();
  }

 private:
  asio::io_context& io_;
  asio::ssl::context& tls_;
  const Site& site_;
  tcp::endpoint hub_;
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> stream_;
  beast::flat_buffer buffer_;
};

double MsSince(SteadyClock::time_point t) {
  return std::chrono::duration<double, std::milli>(SteadyClock::now() - t).count();
}

std::string ReasonOf(const std::string& body) {
  size_t at = body.find("\"reason\":\"");
  if (at == std::string::npos) return "-";
  at += 10;
  return body.substr(at, body.find('"', at) - at);
}

class Fleet {
 public:
  Fleet(const Options& options, std::vector<Site>& sites, Metrics& metrics)
      : options_(options), sites_(sites), metrics_(metrics), tls_(asio::ssl::context::tls_client) {}

  Status Run();

 private:
  awaitable<void> RunSite(Site& site);
  awaitable<void> Deliver(Site& site);
  awaitable<Upload> UploadBatch(Site& site, Connection& conn, const PendingBatch& batch);
  awaitable<void> ResendAcknowledged(Site& site, Connection& conn, const PendingBatch& batch);
  awaitable<void> SendStatus(Site& site, Connection& conn);
  awaitable<void> Saturate(Site& site, std::vector<PendingBatch> batches);
  awaitable<void> Sleep(SteadyClock::duration d) {
    asio::steady_timer timer(io_, d);
    ErrorCode ignored;
    co_await timer.async_wait(asio::redirect_error(use_awaitable, ignored));
  }
  awaitable<void> Backoff(Site& site, int attempt) {
    std::uniform_real_distribution<double> u(0.5, 1.5);
    double ms = std::min(5000.0, 100.0 * (1 << std::min(attempt, 5)) * u(site.rng));
    co_await Sleep(std::chrono::microseconds(static_cast<int64_t>(ms * 1000)));
  }
  bool Draw(Site& site, double rate) {
    return rate > 0 && std::uniform_real_distribution<double>(0, 1)(site.rng) < rate;
  }
  Result<PendingBatch> MakeBatch(Site& site, std::vector<hub::HubRecord>* rows);
  void Schedule(Site& site);
  void CountAcked(Site& site, const PendingBatch& batch, const Answer& answer, double upload_ms);
  tcp::endpoint HubOf(const Site& site) const {
    const auto& [host, port] = options_.hubs[site.hub];
    return tcp::endpoint(asio::ip::make_address(host), port);
  }
  void Spawn(awaitable<void> work) {
    asio::co_spawn(io_, std::move(work), [this](std::exception_ptr e) {
      if (e) ++exceptions_;
    });
  }

  const Options& options_;
  std::vector<Site>& sites_;
  Metrics& metrics_;
  asio::io_context io_{1};
  asio::ssl::context tls_;
  SteadyClock::time_point start_{}, schedule_end_{}, drain_end_{};
  int exceptions_ = 0;
  bool saturating_ = false;
  Status make_failure_{};
};

Result<PendingBatch> Fleet::MakeBatch(Site& site, std::vector<hub::HubRecord>* rows) {
  sync::Batch batch{.site_id = site.id, .node_id = kNode, .stream = kStream};
  const int64_t now_ms = UnixMillis(std::chrono::system_clock::now());
  for (int i = 0; i < options_.records; ++i, ++site.next_seq) {
    batch.records.push_back(
        sync::BatchRecord{.seq = site.next_seq,
                          .kind = 1,
                          .created_ms = now_ms,
                          .payload = bench::AnomalyPayload(site.rng, site.next_seq)});
    if (rows != nullptr) {
      rows->push_back(hub::HubRecord{.site_id = site.id,
                                     .node_id = kNode,
                                     .stream = kStream,
                                     .seq = site.next_seq,
                                     .kind = "anomaly",
                                     .created_ms = now_ms,
                                     .payload = batch.records.back().payload});
    }
  }
  OUTPOST_ASSIGN_OR_RETURN(std::string wire, sync::EncodeBatch(batch));
  ++site.batches_made;
  return PendingBatch{.first_seq = batch.records.front().seq,
                      .last_seq = batch.records.back().seq,
                      .wire = std::move(wire),
                      .made = SteadyClock::now()};
}

// A new batch joins the queue; with the late fault it is held back instead, and a held
// batch goes after the new one.
void Fleet::Schedule(Site& site) {
  Result<PendingBatch> batch = MakeBatch(site, nullptr);
  if (!batch.ok()) {
    make_failure_ = batch.status();
    return;
  }
  if (site.held) {
    site.queue.push_back(std::move(*batch));
    site.queue.push_back(std::move(*site.held));
    site.held.reset();
  } else if (Draw(site, options_.late_rate)) {
    batch->late = true;
    site.held = std::move(*batch);
  } else {
    site.queue.push_back(std::move(*batch));
  }
}

awaitable<void> Fleet::RunSite(Site& site) {
  std::uniform_real_distribution<double> u(0, 1);
  const auto interval = std::chrono::duration<double>(options_.interval_s);
  auto next = start_ + std::chrono::duration_cast<SteadyClock::duration>(interval * u(site.rng));
  for (;;) {
    // The schedule's end wakes every site at once to send what it still holds.
    co_await Sleep(std::min(next, schedule_end_) - SteadyClock::now());
    const bool scheduling = SteadyClock::now() < schedule_end_;
    if (scheduling) {
      Schedule(site);
    } else if (site.held) {
      site.queue.push_back(std::move(*site.held));
      site.held.reset();
    }
    if (!site.queue.empty()) co_await Deliver(site);
    if (!scheduling) co_return;
    next += std::chrono::duration_cast<SteadyClock::duration>(
        interval * (1 + options_.jitter * (2 * u(site.rng) - 1)));
  }
}

// Sends the queue in order over one connection, then a status report when one is due.
awaitable<void> Fleet::Deliver(Site& site) {
  Connection conn(io_, tls_, site, HubOf(site));
  while (!site.queue.empty()) {
    const PendingBatch batch = std::move(site.queue.front());
    site.queue.pop_front();
    Upload done = co_await UploadBatch(site, conn, batch);
    if (done == Upload::kGaveUp) {
      metrics_.given_up += 1 + site.queue.size();
      site.queue.clear();
      break;
    }
    if (done == Upload::kAcked && Draw(site, options_.dup_rate)) {
      co_await ResendAcknowledged(site, conn, batch);
    }
  }
  if (options_.status_every > 0 && site.batches_made % options_.status_every == 0) {
    co_await SendStatus(site, conn);
  }
  conn.Close();
}

// Until acknowledged, refused, or the drain's end: 429, 5xx and no answer are retried after
// a back-off with jitter, on a new connection.
awaitable<Upload> Fleet::UploadBatch(Site& site, Connection& conn, const PendingBatch& batch) {
  for (int attempt = 0;; ++attempt) {
    if (SteadyClock::now() > drain_end_) co_return Upload::kGaveUp;
    const auto began = SteadyClock::now();
    if (!conn.open()) {
      std::string error = co_await conn.Open();
      if (!error.empty()) {
        ++metrics_.connect_failures;
        ++metrics_.connect_errors[error];
        co_await Backoff(site, attempt);
        continue;
      }
    }
    Fault fault = Fault::kNone;
    if (Draw(site, options_.drop_rate)) {
      fault = Draw(site, 0.5) ? Fault::kDropMidBody : Fault::kDropAckLost;
    }
    Answer answer =
        co_await conn.Post("/sync/v1/batches", "application/octet-stream", batch.wire, fault);
    if (fault != Fault::kNone) {
      ++(fault == Fault::kDropMidBody ? metrics_.drops_mid_body : metrics_.drops_ack_lost);
      ++metrics_.retries;
      co_await Backoff(site, 0);
      continue;
    }
    if (answer.status == 200) {
      CountAcked(site, batch, answer, MsSince(began));
      co_return Upload::kAcked;
    }
    if (answer.status == 0 || answer.status == 429 || answer.status >= 500) {
      conn.Close();
      ++metrics_.retries;
      co_await Backoff(site, attempt);
      continue;
    }
    ++metrics_.refused[std::to_string(answer.status) + " " + ReasonOf(answer.body)];
    co_return Upload::kRefused;
  }
}

void Fleet::CountAcked(Site& site, const PendingBatch& batch, const Answer& answer,
                       double upload_ms) {
  const uint64_t n = batch.last_seq - batch.first_seq + 1;
  site.acked.emplace_back(batch.first_seq, batch.last_seq);
  ++metrics_.batches_acked;
  metrics_.records_acked += n;
  if (saturating_) {
    metrics_.saturate_upload_ms.push_back(upload_ms);
    metrics_.saturate_records_acked += n;
    return;
  }
  metrics_.upload_ms.push_back(upload_ms);
  metrics_.e2e_ms.push_back(MsSince(batch.made));
  if (answer.body.find("\"outcome\":\"duplicate\"") != std::string::npos) {
    ++metrics_.outcome_duplicate;
  } else {
    ++metrics_.outcome_stored;
  }
  if (batch.late) ++metrics_.late_batches;
  const auto second =
      static_cast<size_t>(std::chrono::duration<double>(SteadyClock::now() - start_).count());
  if (metrics_.acked_per_s.size() <= second) metrics_.acked_per_s.resize(second + 1);
  metrics_.acked_per_s[second] += n;
}

awaitable<void> Fleet::ResendAcknowledged(Site& site, Connection& conn, const PendingBatch& batch) {
  if (!conn.open() && !(co_await conn.Open()).empty()) co_return;
  ++metrics_.dup_resends;
  Answer answer =
      co_await conn.Post("/sync/v1/batches", "application/octet-stream", batch.wire, Fault::kNone);
  if (answer.status == 200 && answer.body.find("\"outcome\":\"duplicate\"") != std::string::npos) {
    ++metrics_.dup_resends_answered_duplicate;
  } else {
    ++metrics_.refused["duplicate resend answered " + std::to_string(answer.status) + " " +
                       ReasonOf(answer.body)];
  }
  (void)site;
}

awaitable<void> Fleet::SendStatus(Site& site, Connection& conn) {
  const auto began = SteadyClock::now();
  if (!conn.open() && !(co_await conn.Open()).empty()) {
    ++metrics_.status_failed;
    co_return;
  }
  const uint64_t backlog = site.queue.size() + (site.held ? 1 : 0);
  std::string body =
      "{\"site_id\":\"" + site.id + "\",\"node_id\":\"" + kNode +
      "\",\"reported_ms\":" + std::to_string(UnixMillis(std::chrono::system_clock::now())) +
      ",\"backlog_records\":" + std::to_string(backlog * options_.records) +
      ",\"backlog_bytes\":" + std::to_string(backlog * options_.records * 350) +
      ",\"autonomy_days\":null,\"autonomy_basis\":\"draining\","
      "\"models\":[{\"name\":\"pump\",\"version\":3,\"state\":\"READY\"}]}";
  Answer answer = co_await conn.Post("/sync/v1/status", "application/json", body, Fault::kNone);
  if (answer.status == 200) {
    ++metrics_.status_ok;
    metrics_.status_ms.push_back(MsSince(began));
  } else {
    ++metrics_.status_failed;
  }
}

// The saturation phase: the site sends its prepared batches back to back on one kept
// connection, no faults.
awaitable<void> Fleet::Saturate(Site& site, std::vector<PendingBatch> batches) {
  Connection conn(io_, tls_, site, HubOf(site));
  for (const PendingBatch& batch : batches) {
    if (co_await UploadBatch(site, conn, batch) != Upload::kAcked) ++metrics_.given_up;
  }
  conn.Close();
}

Status Fleet::Run() {
  ErrorCode ec;
  tls_.load_verify_file(options_.ca_dir + "/ca.crt", ec);
  if (ec) return InvalidArgumentError("cannot read the hub CA: " + ec.message());
  tls_.set_verify_mode(asio::ssl::verify_peer);
  SSL_CTX_set_min_proto_version(tls_.native_handle(), TLS1_2_VERSION);
  start_ = SteadyClock::now();
  schedule_end_ = start_ + std::chrono::duration_cast<SteadyClock::duration>(
                               std::chrono::duration<double>(options_.duration_s));
  drain_end_ = schedule_end_ + std::chrono::duration_cast<SteadyClock::duration>(
                                   std::chrono::duration<double>(options_.drain_s));
  for (Site& site : sites_) Spawn(RunSite(site));
  io_.run();
  if (!make_failure_.ok()) return make_failure_;
  if (options_.saturate_batches > 0) {
    // Prepared before the clock starts: the phase times the hubs, not the encoding.
    const size_t workers = static_cast<size_t>(std::min(options_.concurrency, options_.sites));
    std::vector<std::vector<PendingBatch>> work(workers);
    for (int b = 0; b < options_.saturate_batches; ++b) {
      const size_t w = static_cast<size_t>(b) % workers;
      Site& site = sites_[w * sites_.size() / workers];
      const size_t begin = metrics_.saturate_records.size();
      OUTPOST_ASSIGN_OR_RETURN(PendingBatch batch, MakeBatch(site, &metrics_.saturate_records));
      metrics_.saturate_batches.emplace_back(begin, metrics_.saturate_records.size());
      work[w].push_back(std::move(batch));
    }
    drain_end_ = SteadyClock::now() + std::chrono::hours(1);
    saturating_ = true;
    io_.restart();
    for (size_t w = 0; w < workers; ++w) {
      Spawn(Saturate(sites_[w * sites_.size() / workers], std::move(work[w])));
    }
    const auto began = SteadyClock::now();
    io_.run();
    metrics_.saturate_s = std::chrono::duration<double>(SteadyClock::now() - began).count();
  }
  if (exceptions_ > 0) {
    return InternalError(std::to_string(exceptions_) + " site coroutines ended in an exception");
  }
  return Status::Ok();
}

}  // namespace

Status RunFleet(const Options& options, std::vector<Site>& sites, Metrics& metrics) {
  Fleet fleet(options, sites, metrics);
  return fleet.Run();
}

}  // namespace outpost::fleet
