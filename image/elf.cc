#include "image/elf.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "base/coding.h"
#include "base/file.h"

namespace outpost::image {
namespace {

// ELF64 sizes, offsets and constants (the System V gABI, "ELF Header", "Program Header",
// "Dynamic Section", "Section Header").
constexpr size_t kEhdrSize = 64, kPhdrSize = 56, kShdrSize = 64, kDynSize = 16;
constexpr uint32_t kPtLoad = 1, kPtDynamic = 2, kPtInterp = 3;
constexpr int64_t kDtNull = 0, kDtNeeded = 1, kDtStrtab = 5, kDtStrsz = 10, kDtSoname = 14,
                  kDtRpath = 15, kDtRunpath = 29;
// Bounds on what is read: no real binary comes near them.
constexpr uint64_t kMaxTableBytes = uint64_t{16} << 20;
constexpr uint64_t kMaxInterpBytes = 4096;

Status Malformed(const std::string& what) {
  return ErrorWithReason(StatusCode::kInvalidArgument, "elf_malformed", what);
}

struct Segment {
  uint32_t type;
  uint64_t offset, vaddr, filesz;
};

class Reader {
 public:
  Reader(const ElfReadAt& read_at, uint64_t size) : read_at_(read_at), size_(size) {}

  // Exactly `n` bytes at `offset`, within the file and at most kMaxTableBytes.
  Result<std::string> Read(uint64_t offset, uint64_t n, std::string_view what) const {
    if (n > kMaxTableBytes || offset > size_ || n > size_ - offset) {
      return Malformed(std::string(what) + " lies outside the file");
    }
    OUTPOST_ASSIGN_OR_RETURN(std::string bytes, read_at_(offset, static_cast<size_t>(n)));
    if (bytes.size() != n) return Malformed(std::string(what) + ": short read");
    return bytes;
  }

 private:
  const ElfReadAt& read_at_;
  uint64_t size_;
};

// The NUL-terminated string at `at` of a string table.
Result<std::string> TableString(const std::string& table, uint64_t at, std::string_view what) {
  if (at >= table.size()) return Malformed(std::string(what) + " name outside its string table");
  size_t end = table.find('\0', static_cast<size_t>(at));
  if (end == std::string::npos) return Malformed(std::string(what) + " name not terminated");
  return table.substr(static_cast<size_t>(at), end - static_cast<size_t>(at));
}

Result<std::vector<Segment>> ReadSegments(const Reader& r, const std::string& ehdr) {
  uint64_t phoff = GetU64LE(ehdr.data() + 32);
  uint16_t phentsize = GetU16LE(ehdr.data() + 54);
  uint16_t phnum = GetU16LE(ehdr.data() + 56);
  if (phnum == 0) return std::vector<Segment>();
  if (phentsize != kPhdrSize || phnum == 0xffff) return Malformed("unexpected program headers");
  OUTPOST_ASSIGN_OR_RETURN(std::string table,
                           r.Read(phoff, uint64_t{phnum} * kPhdrSize, "program header table"));
  std::vector<Segment> out;
  for (size_t i = 0; i < phnum; ++i) {
    const char* p = table.data() + i * kPhdrSize;
    out.push_back(Segment{.type = GetU32LE(p),
                          .offset = GetU64LE(p + 8),
                          .vaddr = GetU64LE(p + 16),
                          .filesz = GetU64LE(p + 32)});
  }
  return out;
}

// The file offset of virtual address `vaddr`, through the PT_LOAD segments.
Result<uint64_t> FileOffset(const std::vector<Segment>& segments, uint64_t vaddr) {
  for (const Segment& s : segments) {
    if (s.type == kPtLoad && vaddr >= s.vaddr && vaddr - s.vaddr < s.filesz) {
      return s.offset + (vaddr - s.vaddr);
    }
  }
  return Malformed("an address of the dynamic section is in no loaded segment");
}

Status ReadDynamic(const Reader& r, const std::vector<Segment>& segments, const Segment& dyn,
                   ElfInfo& info) {
  OUTPOST_ASSIGN_OR_RETURN(std::string table, r.Read(dyn.offset, dyn.filesz, "dynamic section"));
  std::optional<uint64_t> strtab, strsz, soname;
  std::vector<uint64_t> needed;
  for (size_t at = 0; at + kDynSize <= table.size(); at += kDynSize) {
    int64_t tag = static_cast<int64_t>(GetU64LE(table.data() + at));
    uint64_t val = GetU64LE(table.data() + at + 8);
    if (tag == kDtNull) break;
    if (tag == kDtNeeded) needed.push_back(val);
    if (tag == kDtStrtab) strtab = val;
    if (tag == kDtStrsz) strsz = val;
    if (tag == kDtSoname) soname = val;
    if (tag == kDtRpath || tag == kDtRunpath) info.has_runpath = true;
  }
  if (needed.empty() && !soname) return Status::Ok();
  if (!strtab || !strsz) return Malformed("a dynamic section without its string table");
  OUTPOST_ASSIGN_OR_RETURN(uint64_t strtab_offset, FileOffset(segments, *strtab));
  OUTPOST_ASSIGN_OR_RETURN(std::string strings,
                           r.Read(strtab_offset, *strsz, "dynamic string table"));
  for (uint64_t at : needed) {
    OUTPOST_ASSIGN_OR_RETURN(std::string name, TableString(strings, at, "DT_NEEDED"));
    if (name.empty()) return Malformed("an empty DT_NEEDED name");
    info.needed.push_back(std::move(name));
  }
  if (soname) {
    OUTPOST_ASSIGN_OR_RETURN(info.soname, TableString(strings, *soname, "DT_SONAME"));
  }
  return Status::Ok();
}

Status ReadSectionNames(const Reader& r, const std::string& ehdr, ElfInfo& info) {
  uint64_t shoff = GetU64LE(ehdr.data() + 40);
  uint16_t shentsize = GetU16LE(ehdr.data() + 58);
  uint64_t shnum = GetU16LE(ehdr.data() + 60);
  uint32_t shstrndx = GetU16LE(ehdr.data() + 62);
  if (shoff == 0) return Status::Ok();
  if (shentsize != kShdrSize) return Malformed("unexpected section headers");
  if (shnum == 0 || shstrndx == 0xffff) {
    // Extended numbering: the real values are in section 0 (gABI, "Section Header").
    OUTPOST_ASSIGN_OR_RETURN(std::string first, r.Read(shoff, kShdrSize, "section header 0"));
    if (shnum == 0) shnum = GetU64LE(first.data() + 32);
    if (shstrndx == 0xffff) shstrndx = GetU32LE(first.data() + 40);
  }
  if (shnum == 0 || shstrndx == 0) return Status::Ok();  // no sections, or no names
  if (shnum > kMaxTableBytes / kShdrSize) return Malformed("too many sections");
  OUTPOST_ASSIGN_OR_RETURN(std::string table, r.Read(shoff, shnum * kShdrSize, "section headers"));
  if (shstrndx >= shnum) return Malformed("section name table index out of range");
  const char* names_header = table.data() + uint64_t{shstrndx} * kShdrSize;
  OUTPOST_ASSIGN_OR_RETURN(
      std::string names,
      r.Read(GetU64LE(names_header + 24), GetU64LE(names_header + 32), "section name table"));
  for (uint64_t i = 0; i < shnum; ++i) {
    uint32_t name_at = GetU32LE(table.data() + i * kShdrSize);
    OUTPOST_ASSIGN_OR_RETURN(std::string name, TableString(names, name_at, "section"));
    info.section_names.push_back(std::move(name));
  }
  return Status::Ok();
}

}  // namespace

Result<ElfInfo> ParseElf(const ElfReadAt& read_at, uint64_t file_size) {
  Reader r(read_at, file_size);
  if (file_size < kEhdrSize) return Malformed("too short to be an ELF file");
  OUTPOST_ASSIGN_OR_RETURN(std::string ehdr, r.Read(0, kEhdrSize, "ELF header"));
  if (ehdr.compare(0, 4, "\177ELF") != 0) return Malformed("not an ELF file");
  if (ehdr[4] != 2 || ehdr[5] != 1) {
    return ErrorWithReason(StatusCode::kUnimplemented, "elf_unsupported",
                           "only 64-bit little-endian ELF files are supported");
  }
  ElfInfo info;
  info.type = GetU16LE(ehdr.data() + 16);
  info.machine = GetU16LE(ehdr.data() + 18);
  OUTPOST_ASSIGN_OR_RETURN(std::vector<Segment> segments, ReadSegments(r, ehdr));
  for (const Segment& s : segments) {
    if (s.type == kPtInterp) {
      if (s.filesz > kMaxInterpBytes) return Malformed("PT_INTERP is too long");
      OUTPOST_ASSIGN_OR_RETURN(std::string interp, r.Read(s.offset, s.filesz, "PT_INTERP"));
      info.interpreter = interp.substr(0, interp.find('\0'));
    }
  }
  for (const Segment& s : segments) {
    if (s.type == kPtDynamic) {
      OUTPOST_RETURN_IF_ERROR(ReadDynamic(r, segments, s, info));
      break;
    }
  }
  OUTPOST_RETURN_IF_ERROR(ReadSectionNames(r, ehdr, info));
  return info;
}

Result<ElfInfo> ParseElfBytes(std::string_view bytes) {
  ElfReadAt read_at = [bytes](uint64_t offset, size_t n) -> Result<std::string> {
    if (offset >= bytes.size()) return std::string();
    return std::string(bytes.substr(static_cast<size_t>(offset), n));
  };
  return ParseElf(read_at, bytes.size());
}

Result<ElfInfo> ReadElfFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoToStatus(errno, "reading", path);
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    Status s = ErrnoToStatus(errno, "reading", path);
    ::close(fd);
    return s;
  }
  ElfReadAt read_at = [fd, &path](uint64_t offset, size_t n) -> Result<std::string> {
    std::string out(n, '\0');
    size_t got = 0;
    while (got < n) {
      ssize_t r = ::pread(fd, out.data() + got, n - got, static_cast<off_t>(offset + got));
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return ErrnoToStatus(errno, "reading", path);
      if (r == 0) break;
      got += static_cast<size_t>(r);
    }
    out.resize(got);
    return out;
  };
  Result<ElfInfo> info = ParseElf(read_at, static_cast<uint64_t>(st.st_size));
  ::close(fd);
  if (!info.ok()) return info.status().WithContext(path);
  return info;
}

std::optional<std::string> MultiarchTriplet(uint16_t machine) {
  if (machine == kElfMachineX86_64) return std::string("x86_64-linux-gnu");
  if (machine == kElfMachineAarch64) return std::string("aarch64-linux-gnu");
  return std::nullopt;
}

std::optional<std::string> OciArchitecture(uint16_t machine) {
  if (machine == kElfMachineX86_64) return std::string("amd64");
  if (machine == kElfMachineAarch64) return std::string("arm64");
  return std::nullopt;
}

}  // namespace outpost::image
