// sync_test_hub: a small stand-in for the hub's ingestion API, speaking sync/FORMAT.md
// section 2 over HTTPS with mutual TLS, for the forwarder's tests while (and wherever) the
// real `outpost hub` is not used. It decodes batches with the same codec, takes the site from
// the client certificate's CN (403 site_mismatch for another), verifies the audit segment
// against the head it stored (409 audit_gap with its head; 400 audit_* for a broken chain),
// stores records idempotently by (node, stream, seq) with their content hash (duplicate /
// 409 batch_conflict), and acknowledges only after its store file is fdatasync'd.
//
//   sync_test_hub --dir D     D holds server.crt, server.key, ca.crt; the store is D/store.txt
//
// Prints "listening on 127.0.0.1:PORT" once ready. The store file has one line per stored
// record, "R node stream seq sha256", and per accepted audit head, "H node seq hash"; a last
// line without '\n' (a crash mid-write) is ignored on start.
#include <fcntl.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <unistd.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cstdio>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>

#include "base/file.h"
#include "policy/audit.h"
#include "policy/crypto.h"
#include "sync/batch.h"

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

struct Store {
  std::mutex mu;  // guards everything below
  int fd = -1;
  std::map<std::tuple<std::string, std::string, uint64_t>, std::string> records;
  std::map<std::string, outpost::policy::ChainHead> heads;  // node -> head

  void Load(const std::string& path) {
    outpost::Result<std::string> text = outpost::ReadFile(path);
    if (text.ok()) {
      std::istringstream in(*text);
      std::string line;
      while (std::getline(in, line)) {
        if (in.eof()) break;  // no '\n' after it: an append that never finished
        std::istringstream l(line);
        std::string tag, node;
        l >> tag >> node;
        if (tag == "R") {
          std::string stream, sha;
          uint64_t seq;
          l >> stream >> seq >> sha;
          records[{node, stream, seq}] = sha;
        } else if (tag == "H") {
          outpost::policy::ChainHead h;
          l >> h.seq >> h.hash;
          heads[node] = h;
        }
      }
    }
    fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  }
};

std::string Json(int status, std::string_view reason, std::string_view extra = {}) {
  (void)status;
  return std::string("{\"error\":\"") + std::string(reason) + "\",\"reason\":\"" +
         std::string(reason) + "\"" + std::string(extra) + "}";
}

std::string HeadJson(const outpost::policy::ChainHead& h) {
  return ",\"audit_head\":{\"seq\":" + std::to_string(h.seq) + ",\"hash\":\"" + h.hash + "\"}";
}

std::pair<int, std::string> HandleBatch(Store& store, const std::string& site,
                                        const std::string& body) {
  using outpost::sync::DecodeBatch;
  auto decoded = DecodeBatch(body);
  if (!decoded.ok()) {
    std::string reason(outpost::sync::ReasonOf(decoded.status()));
    return {decoded.status().code() == outpost::StatusCode::kResourceExhausted ? 413 : 400,
            Json(400, reason)};
  }
  const outpost::sync::Batch& b = decoded->batch;
  if (b.site_id != site) return {403, Json(403, "site_mismatch")};
  std::lock_guard<std::mutex> lock(store.mu);
  outpost::policy::ChainHead head = store.heads[b.node_id];
  std::optional<outpost::policy::ChainHead> new_head;
  if (b.audit) {
    if (b.audit->from_seq != head.seq || b.audit->from_hash != head.hash) {
      // Lines the hub holds already may come again after a lost acknowledgement.
      if (!(b.audit->to_seq <= head.seq)) return {409, Json(409, "audit_gap", HeadJson(head))};
    } else {
      auto verified = outpost::policy::VerifyAuditChain(
          b.audit->lines, outpost::policy::ChainHead{b.audit->from_seq, b.audit->from_hash});
      if (!verified.ok()) {
        return {400, Json(400, std::string(outpost::sync::ReasonOf(verified.status())))};
      }
      if (verified->seq != b.audit->to_seq || verified->hash != b.audit->to_hash) {
        return {400, Json(400, "audit_malformed")};
      }
      new_head = *verified;
    }
  }
  std::string out;
  uint64_t stored = 0, duplicate = 0;
  for (const auto& r : b.records) {
    std::string sha = outpost::policy::Sha256Hex(std::to_string(r.kind) + "|" +
                                                 std::to_string(r.created_ms) + "|" + r.payload);
    auto it = store.records.find({b.node_id, b.stream, r.seq});
    if (it != store.records.end()) {
      if (it->second != sha) return {409, Json(409, "batch_conflict")};
      ++duplicate;
      continue;
    }
    out += "R " + b.node_id + " " + b.stream + " " + std::to_string(r.seq) + " " + sha + "\n";
    ++stored;
  }
  if (new_head && !(*new_head == head)) {
    out += "H " + b.node_id + " " + std::to_string(new_head->seq) + " " + new_head->hash + "\n";
  }
  if (!out.empty()) {
    if (::write(store.fd, out.data(), out.size()) != static_cast<ssize_t>(out.size()) ||
        ::fdatasync(store.fd) != 0) {
      return {503, Json(503, "store_unavailable")};
    }
  }
  // Only now is it durable.
  for (const auto& r : b.records) {
    store.records[{b.node_id, b.stream, r.seq}] = outpost::policy::Sha256Hex(
        std::to_string(r.kind) + "|" + std::to_string(r.created_ms) + "|" + r.payload);
  }
  if (new_head) store.heads[b.node_id] = *new_head;
  head = store.heads[b.node_id];
  return {200, std::string("{\"outcome\":\"") + (stored == 0 ? "duplicate" : "stored") +
                   "\",\"records\":" + std::to_string(b.records.size()) +
                   ",\"stored\":" + std::to_string(stored) +
                   ",\"duplicate\":" + std::to_string(duplicate) + HeadJson(head) + "}"};
}

void Serve(Store& store, asio::ssl::context& ctx, tcp::socket socket) {
  try {
    beast::ssl_stream<tcp::socket> stream(std::move(socket), ctx);
    stream.handshake(asio::ssl::stream_base::server);
    std::string site;
    if (X509* cert = SSL_get_peer_certificate(stream.native_handle())) {
      char cn[256] = {};
      X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof(cn));
      site = cn;
      X509_free(cert);
    }
    beast::flat_buffer buffer;
    http::request_parser<http::string_body> parser;
    parser.body_limit(32 << 20);
    http::read(stream, buffer, parser);
    const auto& req = parser.get();
    std::pair<int, std::string> answer{404, Json(404, "not_found")};
    if (req.method() == http::verb::post && req.target() == "/sync/v1/batches") {
      answer = HandleBatch(store, site, req.body());
    } else if (req.method() == http::verb::post && req.target() == "/sync/v1/status") {
      answer = {200, "{\"ok\":true}"};
    }
    http::response<http::string_body> res{static_cast<http::status>(answer.first), 11};
    res.set(http::field::content_type, "application/json");
    res.set(http::field::connection, "close");
    res.body() = answer.second;
    res.prepare_payload();
    http::write(stream, res);
    beast::error_code ec;
    stream.shutdown(ec);
  } catch (const std::exception&) {
    // A broken connection: the site retries.
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::string(argv[i]) == "--dir") dir = argv[i + 1];
  }
  if (dir.empty()) {
    std::fprintf(stderr, "usage: sync_test_hub --dir D\n");
    return 2;
  }
  Store store;
  store.Load(outpost::JoinPath(dir, "store.txt"));
  asio::ssl::context ctx(asio::ssl::context::tls_server);
  SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
  ctx.use_certificate_chain_file(outpost::JoinPath(dir, "server.crt"));
  ctx.use_private_key_file(outpost::JoinPath(dir, "server.key"), asio::ssl::context::pem);
  ctx.load_verify_file(outpost::JoinPath(dir, "ca.crt"));
  ctx.set_verify_mode(asio::ssl::verify_peer | asio::ssl::verify_fail_if_no_peer_cert);
  asio::io_context ioc;
  tcp::acceptor acceptor(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  std::printf("listening on 127.0.0.1:%u\n", static_cast<unsigned>(acceptor.local_endpoint().port()));
  std::fflush(stdout);
  while (true) {
    tcp::socket socket(ioc);
    beast::error_code ec;
    acceptor.accept(socket, ec);
    if (ec) continue;
    std::thread([&store, &ctx, s = std::move(socket)]() mutable {
      Serve(store, ctx, std::move(s));
    }).detach();
  }
}
