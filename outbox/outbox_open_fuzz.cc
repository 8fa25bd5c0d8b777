// Fuzzes how the outbox treats a damaged database file, the one input of the outbox that it
// does not write itself in the moment. Each input is a list of edits to a valid store
// (built once): 3-byte entries "u16 little-endian position (scaled to the file's length),
// u8 xor mask", and a final truncation when the input's length is not a multiple of 3. The store
// must then open (possibly after a salvage) or fail with a Status, never crash, and whatever Lease
// and Query hand out must be a record that was written, with its payload.
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "base/file.h"
#include "base/sqlite/file_faults.h"
#include "outbox/outbox.h"

namespace {

using namespace outpost;          // NOLINT: a fuzz target's main file
using namespace outpost::outbox;  // NOLINT
using namespace outpost::sqlite;  // NOLINT

constexpr int kRecords = 30;

std::string PayloadFor(uint64_t seq) {
  std::string p = "fuzz-record-" + std::to_string(seq) + "-";
  p.resize(120, static_cast<char>('a' + seq % 26));
  return p;
}

struct World {
  std::string dir;
  std::string image;  // a valid store holding kRecords records, checkpointed
};

OutboxOptions Options(const std::string& dir, FileFaults* faults) {
  return OutboxOptions{.path = dir + "/outbox.db",
                       .site_id = "site",
                       .node_id = "node",
                       .max_bytes = 1 << 20,
                       .faults = faults};
}

void Clean(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") ::unlink((dir + "/" + name).c_str());
  }
  ::closedir(d);
}

World* MakeWorld() {
  auto* w = new World;
  const char* tmp = std::getenv("TMPDIR");
  std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/outbox-fuzz-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
  w->dir = tmpl;
  FileFaults faults;
  faults.SetSyncIsNoop(true);  // speed: durability is not what is fuzzed here
  {
    auto box = Outbox::Open(Options(w->dir, &faults));
    if (!box.ok()) std::abort();
    for (int i = 1; i <= kRecords; ++i) {
      if (!(*box)->Append({.kind = Kind::kAnomaly, .stream = "s", .payload = PayloadFor(i)}).ok()) {
        std::abort();
      }
    }
  }
  auto image = ReadFile(w->dir + "/outbox.db");
  if (!image.ok()) std::abort();
  w->image = std::move(image).value();
  return w;
}

void CheckRecord(const Record& r) {
  if (r.kind == Kind::kEvent) return;
  if (r.stream != "s" || r.seq < 1 || r.seq > kRecords || r.payload != PayloadFor(r.seq)) {
    std::abort();  // a damaged record was handed out
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static World* world = MakeWorld();
  std::string file = world->image;
  size_t n = size / 3;
  for (size_t i = 0; i < n; ++i) {
    uint64_t pos = data[3 * i] | (uint64_t{data[3 * i + 1]} << 8);
    file[pos * file.size() / 65536] ^= static_cast<char>(data[3 * i + 2]);
  }
  if (size % 3 != 0) file.resize(file.size() * data[size - 1] / 256);
  Clean(world->dir);
  int fd = ::open((world->dir + "/outbox.db").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) std::abort();
  if (!file.empty() && ::write(fd, file.data(), file.size()) != static_cast<ssize_t>(file.size())) {
    std::abort();
  }
  ::close(fd);

  FileFaults faults;
  faults.SetSyncIsNoop(true);
  auto box = Outbox::Open(Options(world->dir, &faults));
  if (!box.ok()) return 0;
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto leased = (*box)->Lease({.max_records = 1000});
    if (leased.ok()) {
      for (const Record& r : leased->records) CheckRecord(r);
      auto q = (*box)->Query({.limit = 1000});
      if (q.ok()) {
        for (const Record& r : *q) CheckRecord(r);
      }
      (*box)
          ->Append({.kind = Kind::kSample, .stream = "s", .payload = "after"})
          .status()
          .IgnoreError();
      (*box)->Stats().status().IgnoreError();
      break;
    }
    // Damage found on use fails the store; the next open salvages it.
    box = InternalError("closed");
    box = Outbox::Open(Options(world->dir, &faults));
    if (!box.ok()) return 0;
  }
  return 0;
}
