// libFuzzer target for the untrusted-bytes readers of bundle/: the tar reader over arbitrary
// archives, and the metadata parsers (envelope, root, targets, descriptor) over arbitrary
// JSON. Nothing may crash, leak or run unbounded; every input ends in a value or a reason.
#include <stdio.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "bundle/crypto.h"
#include "bundle/metadata.h"
#include "bundle/tar.h"

namespace {

using namespace outpost::bundle;  // NOLINT: a fuzz driver, not a header

const Root& TrustedRoot() {
  static const Root* root = [] {
    auto k = KeyPairFromSeed(std::string(32, 'a')).value();
    auto* r = new Root{.version = 1, .expires = 1'900'000'000};
    r->keys[KeyId(k.public_key)] = k.public_key;
    r->root = {.keyids = {KeyId(k.public_key)}, .threshold = 1};
    r->targets = {.keyids = {KeyId(k.public_key)}, .threshold = 1};
    return r;
  }();
  return *root;
}

void FuzzTar(std::string_view data) {
  FILE* f = tmpfile();
  if (f == nullptr) return;
  fwrite(data.data(), 1, data.size(), f);
  fflush(f);
  int fd = fileno(f);
  lseek(fd, 0, SEEK_SET);
  TarReader reader(fd, {.max_entries = 64, .max_entry_bytes = 1 << 20, .max_total_bytes = 1 << 22});
  char buf[4096];
  for (int i = 0; i < 128; ++i) {
    auto entry = reader.Next();
    if (!entry.ok() || !entry->has_value()) break;
    if (i % 2 == 0) {
      auto all = reader.ReadAll(1 << 16);
      if (!all.ok()) break;
    } else {
      auto n = reader.Read(buf, sizeof(buf));
      if (!n.ok()) break;
    }
  }
  fclose(f);
}

void FuzzMetadata(std::string_view text) {
  auto env = ParseEnvelope(text);
  if (env.ok()) {
    RootFromJson(env->signed_value).status().IgnoreError();
    TargetsFromJson(env->signed_value).status().IgnoreError();
  }
  VerifyNextRoot(TrustedRoot(), text).status().IgnoreError();
  VerifyTargets(TrustedRoot(), text).status().IgnoreError();
  ParseModelDescriptor(text).status().IgnoreError();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0 || size > (1 << 20)) return 0;
  std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  // The first byte picks the reader, so one corpus covers both.
  if (data[0] & 1) {
    FuzzTar(bytes);
  } else {
    FuzzMetadata(bytes);
  }
  return 0;
}
