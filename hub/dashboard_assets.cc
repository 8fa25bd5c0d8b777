// The dashboard's static assets (dashboard_internal.h, AssetResponse): the built web page
// (web/dist), served to any caller since it holds no data.
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "base/file.h"
#include "hub/dashboard_internal.h"

namespace outpost::hub::dashboard_internal {
namespace {

constexpr uint64_t kMaxAssetBytes = 32u << 20;

std::string_view ContentType(std::string_view path) {
  auto ends = [&](std::string_view suffix) {
    return path.size() >= suffix.size() && path.substr(path.size() - suffix.size()) == suffix;
  };
  if (ends(".html")) return "text/html; charset=utf-8";
  if (ends(".js")) return "text/javascript; charset=utf-8";
  if (ends(".css")) return "text/css; charset=utf-8";
  if (ends(".svg")) return "image/svg+xml";
  if (ends(".png")) return "image/png";
  if (ends(".ico")) return "image/x-icon";
  if (ends(".json")) return "application/json";
  if (ends(".map")) return "application/json";
  if (ends(".woff2")) return "font/woff2";
  return "application/octet-stream";
}

// A relative path inside the assets folder for `path` ("/" = index.html), or empty when the
// path could leave the folder or has characters assets never have.
std::string AssetPath(std::string_view path) {
  if (path == "/" || path == "/index.html") return "index.html";
  if (path.size() < 2 || path.size() > 256 || path[0] != '/') return {};
  std::string_view rel = path.substr(1);
  for (char c : rel) {
    if (!IsNameChar(c, false) && c != '/') return {};
  }
  size_t start = 0;
  while (start <= rel.size()) {
    size_t slash = rel.find('/', start);
    std::string_view segment =
        rel.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (segment.empty() || segment[0] == '.') return {};
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return std::string(rel);
}

}  // namespace

HubResponse AssetResponse(const std::string& assets_dir, std::string_view path) {
  std::string rel = AssetPath(path);
  if (rel.empty()) return Error(404, "not_found", "no such asset");
  if (!IsDirectory(assets_dir)) {
    return Error(503, "assets_missing",
                 "the dashboard's assets are not built (npm run build in web/)");
  }
  std::string file = JoinPath(assets_dir, rel);
  if (!PathExists(file) || IsDirectory(file)) {
    return Error(404, "not_found", "no such asset");
  }
  auto contents = ReadFile(file, kMaxAssetBytes);
  if (!contents.ok()) return Error(404, "not_found", "no such asset");
  HubResponse response;
  response.status = 200;
  response.content_type = ContentType(rel);  // a literal: static storage
  response.body = std::move(*contents);
  // Vite names bundles by content hash under assets/; index.html must be revalidated.
  response.headers.emplace_back("cache-control", rel.starts_with("assets/")
                                                     ? "public, max-age=31536000, immutable"
                                                     : "no-cache");
  return response;
}

}  // namespace outpost::hub::dashboard_internal
