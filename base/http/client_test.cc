// The HTTP client against base/http's server on 127.0.0.1, port 0: the URL parser, plain HTTP
// with keep-alive, the answer size limit, bodies streamed from and into files, and HTTPS with
// a pinned CA (another CA and another host refused, a given server name verified at the URL's
// address, verification skipped only when asked), mutual TLS and deadlines. The test makes
// its certificates with OpenSSL directly.
#include "base/http/client.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include "base/file.h"
#include "base/http/server.h"
#include "base/testing/test_util.h"

namespace outpost::http {
namespace {

using ::outpost::testing::TempDir;

// ---- Certificates for the test (P-256 keys, SHA-256 signatures)

struct KeyAndCert {
  std::string key_pem;
  std::string cert_pem;
};

std::string BioText(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(n));
  BIO_free(bio);
  return out;
}

void AddExtension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  ASSERT_NE(ext, nullptr) << value;
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

// A certificate for `name`: a CA when `issuer` is null (self-signed), else one issued by it
// with `san` ("IP:127.0.0.1", "DNS:hub.example") as its subject alternative name.
KeyAndCert MakeCertificate(const std::string& name, const KeyAndCert* issuer,
                           const char* san = nullptr) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  const long serial = static_cast<long>(std::hash<std::string>{}(name)&0x7fffffff);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), serial);
  X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert), 24 * 3600);
  X509_set_pubkey(cert, key);
  X509_NAME* subject = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(name.c_str()), -1, -1, 0);
  X509* issuer_cert = cert;
  EVP_PKEY* issuer_key = key;
  if (issuer != nullptr) {
    BIO* cb = BIO_new_mem_buf(issuer->cert_pem.data(), static_cast<int>(issuer->cert_pem.size()));
    issuer_cert = PEM_read_bio_X509(cb, nullptr, nullptr, nullptr);
    BIO_free(cb);
    BIO* kb = BIO_new_mem_buf(issuer->key_pem.data(), static_cast<int>(issuer->key_pem.size()));
    issuer_key = PEM_read_bio_PrivateKey(kb, nullptr, nullptr, nullptr);
    BIO_free(kb);
  }
  X509_set_issuer_name(cert, X509_get_subject_name(issuer_cert));
  if (issuer == nullptr) {
    AddExtension(cert, cert, NID_basic_constraints, "critical,CA:TRUE");
    AddExtension(cert, cert, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    AddExtension(cert, issuer_cert, NID_basic_constraints, "critical,CA:FALSE");
    if (san != nullptr) AddExtension(cert, issuer_cert, NID_subject_alt_name, san);
  }
  X509_sign(cert, issuer_key, EVP_sha256());
  KeyAndCert out;
  BIO* kb = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(kb, key, nullptr, nullptr, 0, nullptr, nullptr);
  out.key_pem = BioText(kb);
  BIO* cb = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(cb, cert);
  out.cert_pem = BioText(cb);
  if (issuer != nullptr) {
    X509_free(issuer_cert);
    EVP_PKEY_free(issuer_key);
  }
  X509_free(cert);
  EVP_PKEY_free(key);
  return out;
}

// ---- A server that echoes what it received

// Answers /echo with "<method> <target> <content-type> <body>", /big with `n` bytes (query
// n=...), /slow after 500 ms, /peer with what TLS established about the client, /size with
// the body's length, /host with the Host header.
void Echo(const Request& rq, Response& rs) {
  rs.content_type = "text/plain";
  std::string_view target = rq.target;
  if (target.starts_with("/big")) {
    rs.body.assign(std::stoul(std::string(target.substr(target.find('=') + 1))), 'b');
  } else if (target == "/slow") {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    rs.body = "slow";
  } else if (target == "/peer") {
    rs.body = std::string(rq.peer.tls ? "tls" : "plain") +
              (rq.peer.cert_presented ? " presented" : "") +
              (rq.peer.cert_verified ? " verified" : "");
  } else if (target == "/size") {
    rs.body = std::to_string(rq.body.size());
  } else if (target == "/host") {
    rs.body = std::string(rq.Header("Host"));
  } else {
    rs.body = std::string(rq.method) + " " + std::string(rq.target) + " " +
              std::string(rq.Header("Content-Type")) + " " + rq.body;
    rs.headers.emplace_back("X-Echo", "yes");
  }
}

std::unique_ptr<Server> StartServer(std::optional<TlsServerOptions> tls = std::nullopt) {
  Result<std::unique_ptr<Server>> server = Server::Start({.address = "127.0.0.1",
                                                          .port = 0,
                                                          .threads = 2,
                                                          .drain_timeout = std::chrono::seconds(2),
                                                          .tls = std::move(tls)},
                                                         Echo);
  EXPECT_TRUE(server.ok()) << server.status().ToString();
  return server.ok() ? std::move(*server) : nullptr;
}

std::string PlainUrl(const Server& server) {
  return "http://127.0.0.1:" + std::to_string(server.port());
}

// ---- The URL parser

TEST(ParseUrl, SplitsSchemeHostPortAndPath) {
  Result<Url> a = ParseUrl("http://edge.local");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->scheme, "http");
  EXPECT_EQ(a->host, "edge.local");
  EXPECT_EQ(a->port, 80);
  EXPECT_EQ(a->path, "");
  EXPECT_FALSE(a->host_is_ip);
  EXPECT_FALSE(a->tls());

  Result<Url> b = ParseUrl("https://10.0.0.5:8443/hub/");
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_TRUE(b->tls());
  EXPECT_EQ(b->port, 8443);
  EXPECT_EQ(b->path, "/hub");
  EXPECT_TRUE(b->host_is_ip);
  EXPECT_EQ(b->HostPort(), "10.0.0.5:8443");

  Result<Url> c = ParseUrl("https://[::1]");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->host, "::1");
  EXPECT_EQ(c->port, 443);
  EXPECT_TRUE(c->host_is_ip);
  EXPECT_EQ(c->HostPort(), "[::1]:443");

  Result<Url> d = ParseUrl("http://[fe80::1]:9000/x");
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->port, 9000);
  EXPECT_EQ(d->path, "/x");
}

TEST(ParseUrl, RefusesWhatItCannotUse) {
  for (const char* bad :
       {"ftp://host", "host:80", "http://", "http://:80", "http://h:0", "http://h:65536",
        "http://h:8x", "http://h:", "http://[::1", "http://[::1]x", "http://[host]:80",
        "http://::1:80", "http://user@h", "http://h/a?b=c", "http://h/a b", "http://h#f"}) {
    Result<Url> url = ParseUrl(bad);
    ASSERT_FALSE(url.ok()) << bad;
    EXPECT_EQ(url.status().code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(url.status().message().find(bad), std::string::npos) << url.status().ToString();
  }
}

// ---- Plain HTTP

TEST(HttpClient, SendsRequestsOverOneKeptConnection) {
  std::unique_ptr<Server> server = StartServer();
  ASSERT_NE(server, nullptr);
  Result<std::unique_ptr<Client>> client =
      Client::Create({.base_url = PlainUrl(*server) + "/api/",
                      .keep_alive = true,
                      .headers = {{"User-Agent", "outpost-test"}}});
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  for (int i = 0; i < 3; ++i) {
    std::string body = "hello " + std::to_string(i);
    Result<ClientResponse> r = (*client)->Send(
        {.method = "POST", .target = "/echo", .content_type = "text/plain", .body = body});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "POST /api/echo text/plain " + body);
    EXPECT_EQ(r->body_bytes, r->body.size());
    EXPECT_EQ(r->Header("x-echo"), "yes");
    EXPECT_EQ(r->Header("X-Missing"), "");
  }
  Result<ClientResponse> missing = (*client)->Send({.target = "/nothing/here"});
  ASSERT_TRUE(missing.ok()) << missing.status().ToString();
  EXPECT_EQ(missing->status, 200);  // the echo handler answers every path
  Result<ClientResponse> bad_target = (*client)->Send({.target = "echo"});
  EXPECT_EQ(bad_target.status().code(), StatusCode::kInvalidArgument);
}

TEST(HttpClient, ConnectIsTheShorthandOfAKeptPlainConnection) {
  std::unique_ptr<Server> server = StartServer();
  ASSERT_NE(server, nullptr);
  Result<std::unique_ptr<Client>> client = Client::Connect("127.0.0.1", server->port(), "tok");
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  Result<ClientResponse> r = (*client)->Request("POST", "/echo", "{}");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->body, "POST /echo application/json {}");
  Result<ClientResponse> get = (*client)->Request("GET", "/echo");
  ASSERT_TRUE(get.ok()) << get.status().ToString();
  EXPECT_EQ(get->body, "GET /echo  ");
  // A server that went away is Unavailable, from Connect as from a request.
  const uint16_t port = server->port();
  server->Stop();
  server.reset();
  Result<ClientResponse> gone = (*client)->Request("GET", "/echo");
  EXPECT_EQ(gone.status().code(), StatusCode::kUnavailable) << gone.status().ToString();
  Result<std::unique_ptr<Client>> none = Client::Connect("127.0.0.1", port);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(none.status().message().find("http 127.0.0.1:" + std::to_string(port) + " connect: "),
            std::string::npos)
      << none.status().ToString();
}

TEST(HttpClient, RefusesAnAnswerOverTheSizeLimit) {
  std::unique_ptr<Server> server = StartServer();
  ASSERT_NE(server, nullptr);
  Result<std::unique_ptr<Client>> client =
      Client::Create({.base_url = PlainUrl(*server), .max_response_bytes = 1000});
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  Result<ClientResponse> small = (*client)->Send({.target = "/big?n=1000"});
  ASSERT_TRUE(small.ok()) << small.status().ToString();
  EXPECT_EQ(small->body.size(), 1000u);
  Result<ClientResponse> big = (*client)->Send({.target = "/big?n=1001"});
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(big.status().message().find(" read: "), std::string::npos) << big.status().ToString();
}

TEST(HttpClient, StreamsBodiesFromAndIntoFiles) {
  TempDir dir;
  std::unique_ptr<Server> server = StartServer();
  ASSERT_NE(server, nullptr);
  std::string contents(3 << 20, '\0');
  for (size_t i = 0; i < contents.size(); ++i) contents[i] = static_cast<char>(i * 7 % 251);
  ASSERT_TRUE(WriteFileAtomically(dir.File("upload"), contents).ok());
  Result<std::unique_ptr<Client>> client = Client::Create({.base_url = PlainUrl(*server)});
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  Result<ClientResponse> sent = (*client)->Send({.method = "PUT",
                                                 .target = "/size",
                                                 .content_type = "application/octet-stream",
                                                 .body_file = dir.File("upload")});
  ASSERT_TRUE(sent.ok()) << sent.status().ToString();
  EXPECT_EQ(sent->body, std::to_string(contents.size()));

  Result<ClientResponse> got =
      (*client)->Send({.target = "/big?n=2000000", .response_file = dir.File("download")});
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->body, "");
  EXPECT_EQ(got->body_bytes, 2000000u);
  Result<std::string> saved = ReadFile(dir.File("download"));
  ASSERT_TRUE(saved.ok()) << saved.status().ToString();
  EXPECT_EQ(*saved, std::string(2000000, 'b'));

  // Too large for the limit: Unavailable, and no partial file left behind.
  Result<std::unique_ptr<Client>> limited =
      Client::Create({.base_url = PlainUrl(*server), .max_response_bytes = 1000});
  ASSERT_TRUE(limited.ok());
  Result<ClientResponse> cut =
      (*limited)->Send({.target = "/big?n=5000", .response_file = dir.File("cut")});
  EXPECT_EQ(cut.status().code(), StatusCode::kUnavailable);
  EXPECT_FALSE(PathExists(dir.File("cut")));

  Result<ClientResponse> no_file =
      (*client)->Send({.method = "PUT", .target = "/size", .body_file = dir.File("absent")});
  EXPECT_EQ(no_file.status().code(), StatusCode::kNotFound) << no_file.status().ToString();
}

TEST(HttpClient, SendsAgainOnANewConnectionWhenTheServerClosedTheKeptOne) {
  // The server closes a connection idle for 100 ms; the client's next request finds it closed
  // before any answer and goes out once more on a new connection.
  Result<std::unique_ptr<Server>> server =
      Server::Start({.address = "127.0.0.1",
                     .port = 0,
                     .threads = 1,
                     .idle_timeout = std::chrono::milliseconds(100),
                     .drain_timeout = std::chrono::seconds(2)},
                    Echo);
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  Result<std::unique_ptr<Client>> client =
      Client::Create({.base_url = PlainUrl(**server), .keep_alive = true});
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  for (int i = 0; i < 3; ++i) {
    Result<ClientResponse> r =
        (*client)->Send({.method = "POST", .target = "/echo", .body = std::to_string(i)});
    ASSERT_TRUE(r.ok()) << i << ": " << r.status().ToString();
    EXPECT_EQ(r->body, "POST /echo  " + std::to_string(i));
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
  }
}

TEST(HttpClient, GivesUpAtTheDeadline) {
  std::unique_ptr<Server> server = StartServer();
  ASSERT_NE(server, nullptr);
  Result<std::unique_ptr<Client>> client =
      Client::Create({.base_url = PlainUrl(*server), .io_timeout = std::chrono::milliseconds(100)});
  ASSERT_TRUE(client.ok());
  const auto start = std::chrono::steady_clock::now();
  Result<ClientResponse> r = (*client)->Send({.target = "/slow"});
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(450));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
}

// ---- HTTPS

class HttpsClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ca_ = MakeCertificate("test CA", nullptr);
    other_ca_ = MakeCertificate("another CA", nullptr);
    server_ip_ = MakeCertificate("hub", &ca_, "IP:127.0.0.1");
    server_name_ = MakeCertificate("hub", &ca_, "DNS:hub.example");
    client_ = MakeCertificate("site", &ca_);
    ASSERT_TRUE(WriteFileAtomically(dir_.File("ca.crt"), ca_.cert_pem).ok());
    for (auto [name, kc] : {std::pair{"ip", &server_ip_}, std::pair{"name", &server_name_}}) {
      ASSERT_TRUE(WriteFileAtomically(dir_.File(std::string(name) + ".crt"), kc->cert_pem).ok());
      ASSERT_TRUE(WriteFileAtomically(dir_.File(std::string(name) + ".key"), kc->key_pem).ok());
    }
  }

  std::unique_ptr<Server> Start(const std::string& which, bool require_client = false) {
    return StartServer(TlsServerOptions{.cert_chain_path = dir_.File(which + ".crt"),
                                        .key_path = dir_.File(which + ".key"),
                                        .client_ca_path = require_client ? dir_.File("ca.crt") : "",
                                        .require_client_cert = require_client});
  }

  static std::string Url(const Server& server) {
    return "https://127.0.0.1:" + std::to_string(server.port());
  }

  TempDir dir_;
  KeyAndCert ca_, other_ca_, server_ip_, server_name_, client_;
};

TEST_F(HttpsClientTest, VerifiesTheServerAgainstThePinnedCa) {
  std::unique_ptr<Server> server = Start("ip");
  ASSERT_NE(server, nullptr);
  Result<ClientResponse> r = Fetch({.base_url = Url(*server), .ca_pem = ca_.cert_pem},
                                   {.method = "POST", .target = "/echo", .body = "x"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "POST /echo  x");
  Result<ClientResponse> peer =
      Fetch({.base_url = Url(*server), .ca_pem = ca_.cert_pem}, {.target = "/peer"});
  ASSERT_TRUE(peer.ok()) << peer.status().ToString();
  EXPECT_EQ(peer->body, "tls");
}

TEST_F(HttpsClientTest, RefusesAServerOfAnotherCa) {
  std::unique_ptr<Server> server = Start("ip");
  ASSERT_NE(server, nullptr);
  Result<ClientResponse> r =
      Fetch({.base_url = Url(*server), .ca_pem = other_ca_.cert_pem}, {.target = "/echo"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find(" TLS handshake: "), std::string::npos)
      << r.status().ToString();
  EXPECT_NE(r.status().message().find("(certificate: "), std::string::npos)
      << r.status().ToString();
}

TEST_F(HttpsClientTest, RefusesACertificateForAnotherHost) {
  std::unique_ptr<Server> server = Start("name");  // names hub.example, not 127.0.0.1
  ASSERT_NE(server, nullptr);
  Result<ClientResponse> r =
      Fetch({.base_url = Url(*server), .ca_pem = ca_.cert_pem}, {.target = "/echo"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("(certificate: "), std::string::npos)
      << r.status().ToString();
}

TEST_F(HttpsClientTest, VerifiesTheServerNameItWasGivenAtTheUrlsAddress) {
  std::unique_ptr<Server> server = Start("name");  // names hub.example, reached at 127.0.0.1
  ASSERT_NE(server, nullptr);
  Result<ClientResponse> r =
      Fetch({.base_url = Url(*server), .ca_pem = ca_.cert_pem, .server_name = "hub.example"},
            {.target = "/host"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
  // The Host header is still the URL's.
  EXPECT_EQ(r->body, "127.0.0.1:" + std::to_string(server->port()));
  // Another name, or an address the certificate does not carry, is refused in the handshake.
  for (const char* name : {"other.example", "127.0.0.1"}) {
    Result<ClientResponse> refused =
        Fetch({.base_url = Url(*server), .ca_pem = ca_.cert_pem, .server_name = name},
              {.target = "/host"});
    ASSERT_FALSE(refused.ok()) << name;
    EXPECT_EQ(refused.status().code(), StatusCode::kUnavailable);
    EXPECT_NE(refused.status().message().find("(certificate: "), std::string::npos)
        << refused.status().ToString();
  }
  // A certificate for 127.0.0.1 is refused when the caller expects the name hub.example.
  std::unique_ptr<Server> by_ip = Start("ip");
  ASSERT_NE(by_ip, nullptr);
  Result<ClientResponse> wrong =
      Fetch({.base_url = Url(*by_ip), .ca_pem = ca_.cert_pem, .server_name = "hub.example"},
            {.target = "/host"});
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().code(), StatusCode::kUnavailable);
}

TEST_F(HttpsClientTest, SkipsVerificationOnlyWhenAsked) {
  std::unique_ptr<Server> server = Start("name");
  ASSERT_NE(server, nullptr);
  Result<std::unique_ptr<Client>> no_ca = Client::Create({.base_url = Url(*server)});
  ASSERT_FALSE(no_ca.ok());
  EXPECT_EQ(no_ca.status().code(), StatusCode::kInvalidArgument);
  Result<ClientResponse> r =
      Fetch({.base_url = Url(*server), .skip_verification = true}, {.target = "/echo"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
}

TEST_F(HttpsClientTest, PresentsAClientCertificateForMutualTls) {
  std::unique_ptr<Server> server = Start("ip", /*require_client=*/true);
  ASSERT_NE(server, nullptr);
  Result<std::unique_ptr<Client>> client = Client::Create({.base_url = Url(*server),
                                                           .ca_pem = ca_.cert_pem,
                                                           .cert_pem = client_.cert_pem,
                                                           .key_pem = client_.key_pem,
                                                           .keep_alive = true});
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  for (int i = 0; i < 2; ++i) {
    Result<ClientResponse> r = (*client)->Send({.target = "/peer"});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->body, "tls presented verified");
  }
  // Without a certificate the server refuses the connection.
  Result<ClientResponse> anonymous =
      Fetch({.base_url = Url(*server), .ca_pem = ca_.cert_pem}, {.target = "/peer"});
  ASSERT_FALSE(anonymous.ok());
  EXPECT_EQ(anonymous.status().code(), StatusCode::kUnavailable);
}

TEST_F(HttpsClientTest, RefusesCredentialsThatDoNotFit) {
  const std::string url = "https://127.0.0.1:1";
  auto code = [](const ClientOptions& options) {
    Result<std::unique_ptr<Client>> c = Client::Create(options);
    return c.ok() ? StatusCode::kOk : c.status().code();
  };
  EXPECT_EQ(code({.base_url = url, .ca_pem = "not a certificate"}), StatusCode::kInvalidArgument);
  EXPECT_EQ(code({.base_url = url, .ca_pem = ca_.cert_pem, .cert_pem = client_.cert_pem}),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(code({.base_url = url,
                  .ca_pem = ca_.cert_pem,
                  .cert_pem = client_.cert_pem,
                  .key_pem = server_ip_.key_pem}),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(code({.base_url = url, .ca_pem = ca_.cert_pem, .skip_verification = true}),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(code({.base_url = "http://127.0.0.1:1", .ca_pem = ca_.cert_pem}),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(code({.base_url = "http://127.0.0.1:1", .server_name = "hub.example"}),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(code({.base_url = url,
                  .ca_pem = ca_.cert_pem,
                  .cert_pem = client_.cert_pem,
                  .key_pem = client_.key_pem}),
            StatusCode::kOk);
}

}  // namespace
}  // namespace outpost::http
