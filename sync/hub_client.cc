// The forwarder's policy over base/http's client: which files hold the credentials, https
// only, one deadline for every step.
#include "sync/hub_client.h"

#include "base/file.h"

namespace outpost::sync {

Result<std::unique_ptr<HubClient>> HubClient::Create(HubClientOptions options) {
  if (!options.base_url.starts_with("https://")) {
    return InvalidArgumentError("hub URL \"" + options.base_url + "\" must begin with https://");
  }
  OUTPOST_RETURN_IF_ERROR(http::ParseUrl(options.base_url).status());
  std::string pem[3];  // certificate, key, CA
  const std::string* files[3] = {&options.cert_file, &options.key_file, &options.ca_file};
  for (int i = 0; i < 3; ++i) {
    if (!PathExists(*files[i])) {
      return NotFoundError("credential file " + *files[i] + " is missing");
    }
    Result<std::string> text = ReadFile(*files[i], 1 << 20);
    if (!text.ok()) return text.status().WithContext("cannot load " + *files[i]);
    pem[i] = std::move(*text);
  }
  Result<std::unique_ptr<http::Client>> client =
      http::Client::Create({.base_url = options.base_url,
                            .ca_pem = std::move(pem[2]),
                            .cert_pem = std::move(pem[0]),
                            .key_pem = std::move(pem[1]),
                            .connect_timeout = options.timeout,
                            .io_timeout = options.timeout,
                            .max_response_bytes = options.max_response_bytes,
                            .keep_alive = true});
  if (!client.ok()) {
    return client.status().WithContext("cannot load " + options.cert_file + ", " +
                                       options.key_file + ", " + options.ca_file);
  }
  return std::unique_ptr<HubClient>(new HubClient(std::move(*client)));
}

Result<http::ClientResponse> HubClient::Post(std::string_view target, std::string_view content_type,
                                             std::string_view body) {
  return client_->Send(
      {.method = "POST", .target = target, .content_type = content_type, .body = body});
}

Result<http::ClientResponse> HubClient::Get(
    std::string_view target, std::vector<std::pair<std::string, std::string>> headers) {
  return client_->Send({.method = "GET", .target = target, .headers = std::move(headers)});
}

}  // namespace outpost::sync
