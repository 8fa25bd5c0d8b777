// The only file of Outpost that includes sqlite3.h (see sqlite.h). It also holds the
// fault-injecting VFS through which FileFaults (file_faults.h) reaches the file layer.
#include "base/sqlite/sqlite.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "base/sqlite/file_faults.h"

namespace outpost::sqlite {

// ---------------------------------------------------------------------------------------
// The fault-injecting VFS: forwards every call to the default VFS ("unix"), after asking
// FileFaults whether to fail it. Only the main database and its WAL are subject to faults.

struct FaultVfs {
  sqlite3_vfs vfs;     // registered with SQLite; vfs.pAppData points back here
  sqlite3_vfs* real;   // the default VFS; lives as long as the process
  FileFaults* faults;  // not owned; outlives the Db that uses this VFS
  std::string name;
};

namespace {

struct FaultFile {
  sqlite3_file base;  // must be first: SQLite sees a FaultFile as a sqlite3_file
  FileFaults* faults;
  std::string* path;  // owned; null for files not subject to faults (temp files)
  sqlite3_file* real;
};

constexpr int kFaultFileSize = (sizeof(FaultFile) + 7) & ~7;

int FailWith(int err, int sqlite_code) {
  errno = err;
  return err == ENOSPC || err == EDQUOT ? SQLITE_FULL : sqlite_code;
}

FaultFile* AsFault(sqlite3_file* f) { return reinterpret_cast<FaultFile*>(f); }

int FileSize(FaultFile* f, uint64_t* size) {
  sqlite3_int64 s = 0;
  int rc = f->real->pMethods->xFileSize(f->real, &s);
  *size = rc == SQLITE_OK && s > 0 ? static_cast<uint64_t>(s) : 0;
  return rc;
}

std::string ReadRange(FaultFile* f, uint64_t offset, uint64_t amount) {
  std::string out(amount, '\0');
  if (amount > 0) {
    // A short read fills the rest with zeros, which is what we want to remember.
    f->real->pMethods->xRead(f->real, out.data(), static_cast<int>(amount),
                             static_cast<sqlite3_int64>(offset));
  }
  return out;
}

int XClose(sqlite3_file* file) {
  FaultFile* f = AsFault(file);
  int rc = f->real->pMethods ? f->real->pMethods->xClose(f->real) : SQLITE_OK;
  delete f->path;
  f->path = nullptr;
  return rc;
}

int XRead(sqlite3_file* file, void* buf, int amount, sqlite3_int64 offset) {
  FaultFile* f = AsFault(file);
  if (f->path) {
    if (int e = f->faults->BeforeRead(*f->path)) return FailWith(e, SQLITE_IOERR_READ);
  }
  return f->real->pMethods->xRead(f->real, buf, amount, offset);
}

int XWrite(sqlite3_file* file, const void* buf, int amount, sqlite3_int64 offset) {
  FaultFile* f = AsFault(file);
  if (!f->path) return f->real->pMethods->xWrite(f->real, buf, amount, offset);
  const auto off = static_cast<uint64_t>(offset);
  if (int e = f->faults->BeforeWrite(*f->path, off, static_cast<uint64_t>(amount))) {
    return FailWith(e, SQLITE_IOERR_WRITE);
  }
  uint64_t old_size = 0;
  std::string old_bytes;
  if (f->faults->tracking()) {
    FileSize(f, &old_size);
    if (off < old_size) {
      old_bytes =
          ReadRange(f, off, std::min<uint64_t>(static_cast<uint64_t>(amount), old_size - off));
    }
  }
  int rc = f->real->pMethods->xWrite(f->real, buf, amount, offset);
  if (rc == SQLITE_OK) {
    f->faults->Wrote(*f->path, off, static_cast<uint64_t>(amount), std::move(old_bytes), old_size);
  }
  return rc;
}

int XTruncate(sqlite3_file* file, sqlite3_int64 size) {
  FaultFile* f = AsFault(file);
  if (!f->path) return f->real->pMethods->xTruncate(f->real, size);
  const auto new_size = static_cast<uint64_t>(size);
  if (int e = f->faults->BeforeTruncate(*f->path, new_size)) {
    return FailWith(e, SQLITE_IOERR_TRUNCATE);
  }
  uint64_t old_size = 0;
  FileSize(f, &old_size);
  std::string cut;
  if (f->faults->tracking() && old_size > new_size) {
    cut = ReadRange(f, new_size, old_size - new_size);
  }
  int rc = f->real->pMethods->xTruncate(f->real, size);
  if (rc == SQLITE_OK) f->faults->Truncated(*f->path, new_size, std::move(cut), old_size);
  return rc;
}

int XSync(sqlite3_file* file, int flags) {
  FaultFile* f = AsFault(file);
  if (!f->path) return f->real->pMethods->xSync(f->real, flags);
  if (int e = f->faults->BeforeSync(*f->path)) {
    errno = e;
    return SQLITE_IOERR_FSYNC;  // ENOSPC from fsync is an I/O error too, never "full"
  }
  if (f->faults->sync_is_noop()) return SQLITE_OK;
  int rc = f->real->pMethods->xSync(f->real, flags);
  if (rc == SQLITE_OK) f->faults->Synced(*f->path);
  return rc;
}

int XFileSize(sqlite3_file* file, sqlite3_int64* size) {
  FaultFile* f = AsFault(file);
  return f->real->pMethods->xFileSize(f->real, size);
}
int XLock(sqlite3_file* file, int level) {
  FaultFile* f = AsFault(file);
  return f->real->pMethods->xLock(f->real, level);
}
int XUnlock(sqlite3_file* file, int level) {
  FaultFile* f = AsFault(file);
  return f->real->pMethods->xUnlock(f->real, level);
}
int XCheckReservedLock(sqlite3_file* file, int* out) {
  FaultFile* f = AsFault(file);
  return f->real->pMethods->xCheckReservedLock(f->real, out);
}
int XFileControl(sqlite3_file* file, int op, void* arg) {
  FaultFile* f = AsFault(file);
  return f->real->pMethods->xFileControl(f->real, op, arg);
}
int XSectorSize(sqlite3_file* file) {
  FaultFile* f = AsFault(file);
  return f->real->pMethods->xSectorSize(f->real);
}
int XDeviceCharacteristics(sqlite3_file* file) {
  FaultFile* f = AsFault(file);
  return f->real->pMethods->xDeviceCharacteristics(f->real);
}
int XShmMap(sqlite3_file* file, int page, int size, int extend, void volatile** out) {
  FaultFile* f = AsFault(file);
  return f->real->pMethods->xShmMap(f->real, page, size, extend, out);
}
int XShmLock(sqlite3_file* file, int offset, int n, int flags) {
  FaultFile* f = AsFault(file);
  return f->real->pMethods->xShmLock(f->real, offset, n, flags);
}
void XShmBarrier(sqlite3_file* file) {
  FaultFile* f = AsFault(file);
  f->real->pMethods->xShmBarrier(f->real);
}
int XShmUnmap(sqlite3_file* file, int del) {
  FaultFile* f = AsFault(file);
  return f->real->pMethods->xShmUnmap(f->real, del);
}
int XFetch(sqlite3_file* file, sqlite3_int64 offset, int amount, void** out) {
  *out = nullptr;  // no memory-mapped reads through the fault layer
  (void)file;
  (void)offset;
  (void)amount;
  return SQLITE_OK;
}
int XUnfetch(sqlite3_file* file, sqlite3_int64 offset, void* p) {
  (void)file;
  (void)offset;
  (void)p;
  return SQLITE_OK;
}

const sqlite3_io_methods kFaultMethods = {
    3,
    XClose,
    XRead,
    XWrite,
    XTruncate,
    XSync,
    XFileSize,
    XLock,
    XUnlock,
    XCheckReservedLock,
    XFileControl,
    XSectorSize,
    XDeviceCharacteristics,
    XShmMap,
    XShmLock,
    XShmBarrier,
    XShmUnmap,
    XFetch,
    XUnfetch,
};

FaultVfs* AsVfs(sqlite3_vfs* vfs) { return static_cast<FaultVfs*>(vfs->pAppData); }

int VOpen(sqlite3_vfs* vfs, const char* name, sqlite3_file* file, int flags, int* out_flags) {
  FaultVfs* v = AsVfs(vfs);
  FaultFile* f = AsFault(file);
  f->faults = v->faults;
  f->path = nullptr;
  f->real = reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(file) + kFaultFileSize);
  f->base.pMethods = nullptr;
  int rc = v->real->xOpen(v->real, name, f->real, flags, out_flags);
  if (rc != SQLITE_OK) return rc;
  f->base.pMethods = &kFaultMethods;
  if (name != nullptr && (flags & (SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_WAL)) != 0) {
    f->path = new std::string(name);
    uint64_t size = 0;
    FileSize(f, &size);
    f->faults->Opened(*f->path, size);
  }
  return SQLITE_OK;
}

int VDelete(sqlite3_vfs* vfs, const char* name, int sync_dir) {
  FaultVfs* v = AsVfs(vfs);
  if (int e = v->faults->BeforeDelete(name)) {
    errno = e;
    return SQLITE_IOERR_DELETE;
  }
  int rc = v->real->xDelete(v->real, name, sync_dir);
  if (rc == SQLITE_OK) v->faults->Deleted(name);
  return rc;
}

int VAccess(sqlite3_vfs* vfs, const char* name, int flags, int* out) {
  return AsVfs(vfs)->real->xAccess(AsVfs(vfs)->real, name, flags, out);
}
int VFullPathname(sqlite3_vfs* vfs, const char* name, int n, char* out) {
  return AsVfs(vfs)->real->xFullPathname(AsVfs(vfs)->real, name, n, out);
}
void* VDlOpen(sqlite3_vfs* vfs, const char* name) {
  return AsVfs(vfs)->real->xDlOpen(AsVfs(vfs)->real, name);
}
void VDlError(sqlite3_vfs* vfs, int n, char* out) {
  AsVfs(vfs)->real->xDlError(AsVfs(vfs)->real, n, out);
}
void (*VDlSym(sqlite3_vfs* vfs, void* handle, const char* sym))(void) {
  return AsVfs(vfs)->real->xDlSym(AsVfs(vfs)->real, handle, sym);
}
void VDlClose(sqlite3_vfs* vfs, void* handle) {
  AsVfs(vfs)->real->xDlClose(AsVfs(vfs)->real, handle);
}
int VRandomness(sqlite3_vfs* vfs, int n, char* out) {
  return AsVfs(vfs)->real->xRandomness(AsVfs(vfs)->real, n, out);
}
int VSleep(sqlite3_vfs* vfs, int micros) {
  return AsVfs(vfs)->real->xSleep(AsVfs(vfs)->real, micros);
}
int VCurrentTime(sqlite3_vfs* vfs, double* out) {
  return AsVfs(vfs)->real->xCurrentTime(AsVfs(vfs)->real, out);
}
int VGetLastError(sqlite3_vfs* vfs, int n, char* out) {
  return AsVfs(vfs)->real->xGetLastError(AsVfs(vfs)->real, n, out);
}
int VCurrentTimeInt64(sqlite3_vfs* vfs, sqlite3_int64* out) {
  return AsVfs(vfs)->real->xCurrentTimeInt64(AsVfs(vfs)->real, out);
}

std::atomic<int> g_vfs_counter{0};

Result<std::unique_ptr<FaultVfs>> MakeFaultVfs(FileFaults* faults) {
  sqlite3_vfs* real = sqlite3_vfs_find(nullptr);
  if (real == nullptr) return InternalError("SQLite has no default VFS");
  auto v = std::make_unique<FaultVfs>();
  v->real = real;
  v->faults = faults;
  v->name = "outpost-faults-" + std::to_string(g_vfs_counter.fetch_add(1));
  sqlite3_vfs& s = v->vfs;
  std::memset(&s, 0, sizeof(s));
  s.iVersion = 2;
  s.szOsFile = kFaultFileSize + real->szOsFile;
  s.mxPathname = real->mxPathname;
  s.zName = v->name.c_str();
  s.pAppData = v.get();
  s.xOpen = VOpen;
  s.xDelete = VDelete;
  s.xAccess = VAccess;
  s.xFullPathname = VFullPathname;
  s.xDlOpen = VDlOpen;
  s.xDlError = VDlError;
  s.xDlSym = VDlSym;
  s.xDlClose = VDlClose;
  s.xRandomness = VRandomness;
  s.xSleep = VSleep;
  s.xCurrentTime = VCurrentTime;
  s.xGetLastError = VGetLastError;
  s.xCurrentTimeInt64 = VCurrentTimeInt64;
  if (int rc = sqlite3_vfs_register(&s, 0); rc != SQLITE_OK) {
    return InternalError(std::string("cannot register the fault VFS: ") + sqlite3_errstr(rc));
  }
  return v;
}

// ---------------------------------------------------------------------------------------
// Result codes to Status.

std::string_view IoErrName(int extended) {
  switch (extended) {
    case SQLITE_IOERR_READ:
      return "read";
    case SQLITE_IOERR_SHORT_READ:
      return "short read";
    case SQLITE_IOERR_WRITE:
      return "write";
    case SQLITE_IOERR_FSYNC:
      return "fsync";
    case SQLITE_IOERR_DIR_FSYNC:
      return "folder fsync";
    case SQLITE_IOERR_TRUNCATE:
      return "truncate";
    case SQLITE_IOERR_FSTAT:
      return "fstat";
    case SQLITE_IOERR_DELETE:
      return "delete";
    case SQLITE_IOERR_LOCK:
      return "lock";
    case SQLITE_IOERR_CLOSE:
      return "close";
    case SQLITE_IOERR_SHMOPEN:
      return "shm open";
    case SQLITE_IOERR_SHMSIZE:
      return "shm size";
    case SQLITE_IOERR_SHMMAP:
      return "shm map";
    case SQLITE_IOERR_NOMEM:
      return "out of memory";
    default:
      return "other";
  }
}

Status FromSqlite(sqlite3* db, int rc, std::string_view what) {
  std::string message(what);
  message += ": ";
  message += db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  int primary = rc & 0xFF;
  if (primary == SQLITE_IOERR) {
    message += " (";
    message += IoErrName(rc);
    int err = db != nullptr ? sqlite3_system_errno(db) : 0;
    if (err != 0) {
      message += ": ";
      message += std::strerror(err);
    }
    message += ")";
  }
  switch (primary) {
    case SQLITE_FULL:
      return ResourceExhaustedError(message);
    case SQLITE_IOERR:
      return UnavailableError(message);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return DataLossError(message);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return AbortedError(message);
    case SQLITE_CANTOPEN:
      return UnavailableError(message);
    case SQLITE_PERM:
    case SQLITE_READONLY:
    case SQLITE_AUTH:
      return PermissionDeniedError(message);
    case SQLITE_NOMEM:
      return ResourceExhaustedError(message);
    default:
      return InternalError(message);
  }
}

std::string SqlHead(sqlite3_stmt* stmt) {
  const char* sql = sqlite3_sql(stmt);
  std::string s = sql != nullptr ? sql : "";
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Statement

Statement::~Statement() { sqlite3_finalize(stmt_); }

void Statement::BindInt(int index, int64_t value) { sqlite3_bind_int64(stmt_, index, value); }
void Statement::BindText(int index, std::string_view value) {
  sqlite3_bind_text64(stmt_, index, value.data(), value.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
}
void Statement::BindBlob(int index, std::string_view value) {
  // A zero-length blob must still be a blob, not NULL.
  static const char kEmpty = 0;
  sqlite3_bind_blob64(stmt_, index, value.empty() ? &kEmpty : value.data(), value.size(),
                      SQLITE_TRANSIENT);
}
void Statement::BindNull(int index) { sqlite3_bind_null(stmt_, index); }

Result<bool> Statement::Step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  Status s = FromSqlite(db_, rc, "running \"" + SqlHead(stmt_) + "\"");
  sqlite3_reset(stmt_);
  return s;
}

Status Statement::Run() {
  while (true) {
    OUTPOST_ASSIGN_OR_RETURN(bool row, Step());
    if (!row) break;
  }
  Reset();
  return Status::Ok();
}

void Statement::Reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

int64_t Statement::ColumnInt(int index) const { return sqlite3_column_int64(stmt_, index); }
std::string_view Statement::ColumnText(int index) const {
  const auto* p = sqlite3_column_text(stmt_, index);
  int n = sqlite3_column_bytes(stmt_, index);
  return p ? std::string_view(reinterpret_cast<const char*>(p), static_cast<size_t>(n))
           : std::string_view();
}
std::string_view Statement::ColumnBlob(int index) const {
  const void* p = sqlite3_column_blob(stmt_, index);
  int n = sqlite3_column_bytes(stmt_, index);
  return p ? std::string_view(static_cast<const char*>(p), static_cast<size_t>(n))
           : std::string_view();
}
bool Statement::ColumnIsNull(int index) const {
  return sqlite3_column_type(stmt_, index) == SQLITE_NULL;
}

// ---------------------------------------------------------------------------------------
// Db

Db::Db(std::string path, sqlite3* db, std::unique_ptr<FaultVfs> vfs)
    : path_(std::move(path)), db_(db), vfs_(std::move(vfs)) {}

Db::~Db() { Close(/*checkpoint=*/true).IgnoreError(); }

Result<std::unique_ptr<Db>> Db::Open(const std::string& path, const DbOptions& options) {
  std::unique_ptr<FaultVfs> vfs;
  if (options.faults != nullptr) {
    OUTPOST_ASSIGN_OR_RETURN(vfs, MakeFaultVfs(options.faults));
  }
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
  if (options.create) flags |= SQLITE_OPEN_CREATE;
  struct stat before;
  const bool creating = options.create && options.file_mode != 0 &&
                        ::stat(path.c_str(), &before) != 0 && errno == ENOENT;
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, flags, vfs ? vfs->name.c_str() : nullptr);
  // The file exists (empty) once the open returns; set its mode before the first write.
  if (rc == SQLITE_OK && creating &&
      ::chmod(path.c_str(), static_cast<mode_t>(options.file_mode)) != 0 && errno != ENOENT) {
    const int error = errno;
    sqlite3_close(db);
    if (vfs) sqlite3_vfs_unregister(&vfs->vfs);
    return UnavailableError("cannot set the mode of \"" + path + "\": " + std::strerror(error));
  }
  if (rc != SQLITE_OK) {
    Status s = FromSqlite(db, rc, "cannot open \"" + path + "\"");
    sqlite3_close(db);
    if (vfs) sqlite3_vfs_unregister(&vfs->vfs);
    return s;
  }
  sqlite3_extended_result_codes(db, 1);
  return std::unique_ptr<Db>(new Db(path, db, std::move(vfs)));
}

Status Db::Exec(std::string_view sql) {
  std::string text(sql);
  char* err = nullptr;
  int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &err);
  sqlite3_free(err);
  if (rc != SQLITE_OK) {
    if (text.size() > 60) text = text.substr(0, 57) + "...";
    return FromSqlite(db_, rc, "running \"" + text + "\"");
  }
  return Status::Ok();
}

Result<std::unique_ptr<Statement>> Db::Prepare(std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                              SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) {
    std::string text(sql.substr(0, 60));
    return FromSqlite(db_, rc, "preparing \"" + text + "\"");
  }
  return std::unique_ptr<Statement>(new Statement(db_, stmt));
}

Result<int64_t> Db::QueryInt(std::string_view sql) {
  OUTPOST_ASSIGN_OR_RETURN(auto stmt, Prepare(sql));
  OUTPOST_ASSIGN_OR_RETURN(bool row, stmt->Step());
  if (!row) return NotFoundError("no row from \"" + std::string(sql.substr(0, 60)) + "\"");
  return stmt->ColumnInt(0);
}

int64_t Db::Changes() const { return sqlite3_changes64(db_); }

bool Db::InTransaction() const { return sqlite3_get_autocommit(db_) == 0; }

Status Db::Close(bool checkpoint) {
  if (db_ == nullptr) return Status::Ok();
  if (!checkpoint) sqlite3_db_config(db_, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
  int rc = sqlite3_close(db_);
  Status s = rc == SQLITE_OK ? Status::Ok() : FromSqlite(db_, rc, "closing \"" + path_ + "\"");
  if (rc != SQLITE_OK) {
    // Statements still open: a bug of ours. Let SQLite close when they are finalized.
    sqlite3_close_v2(db_);
  }
  db_ = nullptr;
  if (vfs_ && rc == SQLITE_OK) sqlite3_vfs_unregister(&vfs_->vfs);
  if (rc != SQLITE_OK) (void)vfs_.release();  // still in use by the zombie connection
  return s;
}

std::string_view SqliteVersion() { return sqlite3_libversion(); }

}  // namespace outpost::sqlite
