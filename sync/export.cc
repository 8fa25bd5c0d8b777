#include "sync/export.h"

#include "sync/crypto.h"
#include "sync/signed_file.h"
#include "sync/wire.h"

namespace outpost::sync {
namespace {

constexpr SignedFileKind kExport{.magic = "OPSX", .prefix = "export", .noun = "an export file"};

Status Bad(std::string_view reason, std::string_view detail) {
  return InvalidArgumentError(std::string(reason) + ": " + std::string(detail));
}

}  // namespace

std::string ExportIdHex(std::string_view export_id) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (char c : export_id) {
    out.push_back(kHex[(static_cast<unsigned char>(c) >> 4) & 0xf]);
    out.push_back(kHex[static_cast<unsigned char>(c) & 0xf]);
  }
  return out;
}

Result<std::string> WriteExport(const ExportFile& file, std::string_view key_pem) {
  ExportLimits limits;
  if (!IsValidName(file.site_id) || !IsValidName(file.node_id)) {
    return Bad("export_malformed", "bad site or node name");
  }
  if (file.export_id.size() != 16) return Bad("export_malformed", "export id must be 16 bytes");
  if (file.cert_pem.empty() || file.cert_pem.size() > limits.max_cert_bytes) {
    return Bad("export_cert", "certificate missing or too large");
  }
  if (file.batches.size() > limits.max_batches) return Bad("export_too_large", "too many batches");
  std::string out = BeginSignedFile(kExport, file.cert_pem);
  wire::PutStr8(out, file.site_id);
  wire::PutStr8(out, file.node_id);
  wire::PutU64(out, static_cast<uint64_t>(file.created_ms));
  out += file.export_id;
  wire::PutU32(out, static_cast<uint32_t>(file.batches.size()));
  for (const std::string& b : file.batches) {
    if (b.size() > limits.max_batch_bytes) return Bad("export_too_large", "a batch is too large");
    wire::PutU32(out, static_cast<uint32_t>(b.size()));
    out += b;
  }
  if (out.size() + 66 > limits.max_file_bytes) return Bad("export_too_large", "file too large");
  OUTPOST_RETURN_IF_ERROR(FinishSignedFile(out, key_pem));
  return out;
}

Result<ExportFile> ReadExport(std::string_view bytes, const ExportLimits& limits) {
  auto truncated = [] { return SignedFileTruncated(kExport); };
  wire::Reader r({});
  std::string_view cert, site, node, id;
  OUTPOST_RETURN_IF_ERROR(
      ReadSignedFileHead(bytes, kExport, limits.max_file_bytes, limits.max_cert_bytes, r, cert));
  ExportFile f;
  uint64_t created = 0;
  uint32_t count = 0;
  if (!r.Str8(site) || !r.Str8(node) || !r.U64(created) || !r.Bytes(16, id) || !r.U32(count)) {
    return truncated();
  }
  if (!IsValidName(site) || !IsValidName(node)) return Bad("export_malformed", "bad name");
  if (count > limits.max_batches) {
    return ResourceExhaustedError("export_too_large: " + std::to_string(count) + " batches");
  }
  if (r.left() / 4 < count) return truncated();
  f.batches.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    uint32_t len = 0;
    std::string_view b;
    if (!r.U32(len)) return truncated();
    if (len > limits.max_batch_bytes) {
      return ResourceExhaustedError("export_too_large: a batch of " + std::to_string(len) +
                                    " bytes");
    }
    if (!r.Bytes(len, b)) return truncated();
    f.batches.emplace_back(b);
  }
  OUTPOST_RETURN_IF_ERROR(VerifySignedFileTail(bytes, kExport, r, cert));
  f.cert_pem = cert;
  f.site_id = site;
  f.node_id = node;
  f.created_ms = static_cast<int64_t>(created);
  f.export_id = id;
  return f;
}

Status VerifyExportSite(const ExportFile& file, std::string_view site_ca_pem) {
  Status chain = VerifyCertificateChain(file.cert_pem, site_ca_pem);
  if (!chain.ok()) return PermissionDeniedError("export_cert: " + std::string(chain.message()));
  OUTPOST_ASSIGN_OR_RETURN(CertificateNames names, ReadCertificateNames(file.cert_pem));
  if (names.common_name != file.site_id) {
    return PermissionDeniedError("export_site_mismatch: the certificate is for \"" +
                                 names.common_name + "\", the file names \"" + file.site_id +
                                 "\"");
  }
  return Status();
}

}  // namespace outpost::sync
