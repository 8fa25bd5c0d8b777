// The SQLite adapter of Outpost (library outpost_sqlite, namespace outpost::sqlite): the only
// code of Outpost that sees SQLite's C header. The outbox's queue and the hub's SQLite store
// use it.
//
// Db is one connection to one database file; Statement is a prepared statement on it.
// SQLite's result codes become Status codes here, and nowhere else:
//   SQLITE_FULL                        -> kResourceExhausted (disk or max_page_count full)
//   SQLITE_IOERR_*                     -> kUnavailable ("disk I/O error (fsync)", errno text)
//   SQLITE_CORRUPT, SQLITE_NOTADB      -> kDataLoss
//   SQLITE_BUSY, SQLITE_LOCKED         -> kAborted (another process holds the file)
//   SQLITE_CANTOPEN, SQLITE_PERM, ...  -> kUnavailable / kPermissionDenied
//   anything else                      -> kInternal
//
// Thread-compatible: a Db and its statements are used by one thread at a time (the outbox
// and the hub's store serialize them under their own mutexes); the connection is opened
// without SQLite's mutexes.
#ifndef OUTPOST_BASE_SQLITE_SQLITE_H_
#define OUTPOST_BASE_SQLITE_SQLITE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "base/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace outpost::sqlite {

class FileFaults;
struct FaultVfs;  // defined in sqlite.cc

class Statement {
 public:
  ~Statement();
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  // Bind parameters, 1-based. The bytes of text and blobs are copied.
  void BindInt(int index, int64_t value);
  void BindText(int index, std::string_view value);
  void BindBlob(int index, std::string_view value);
  void BindNull(int index);

  // Runs one step: true when a row is ready, false when the statement is done.
  Result<bool> Step();
  // Steps until done, ignoring rows; then resets.
  Status Run();
  // Makes the statement ready to run again and clears its bindings.
  void Reset();

  // Columns of the current row, 0-based. Views stay valid until the next Step/Reset.
  int64_t ColumnInt(int index) const;
  std::string_view ColumnText(int index) const;
  std::string_view ColumnBlob(int index) const;
  bool ColumnIsNull(int index) const;

 private:
  friend class Db;
  Statement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  sqlite3* db_;  // not owned; the Db outlives its statements
  sqlite3_stmt* stmt_;
};

struct DbOptions {
  // Create the file when it does not exist.
  bool create = true;
  // When set, all file I/O goes through a wrapping VFS that consults it. Not owned; must
  // outlive the Db.
  FileFaults* faults = nullptr;
  // When nonzero, a database file this Open creates is given these permission bits before
  // anything is written to it; SQLite creates the WAL and shared-memory files with the
  // database's bits. 0: SQLite's 0644 less the umask. An existing file is left as it is.
  int file_mode = 0;
};

class Db {
 public:
  // Opens (or creates) the database at `path`. Nothing is read yet, so a damaged file is
  // found by the first statement, not here. Errors as in the table above.
  static Result<std::unique_ptr<Db>> Open(const std::string& path, const DbOptions& options);
  // Closes as Close(/*checkpoint=*/true) would, ignoring errors.
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  // Runs one or more statements that return no rows we need.
  Status Exec(std::string_view sql);
  // Prepares one statement.
  Result<std::unique_ptr<Statement>> Prepare(std::string_view sql);
  // Runs a statement that returns one integer (a PRAGMA, a count). NotFound without a row.
  Result<int64_t> QueryInt(std::string_view sql);

  // Rows changed by the last INSERT/UPDATE/DELETE.
  int64_t Changes() const;
  bool InTransaction() const;

  // Closes the connection. With checkpoint=false SQLite does not copy the WAL into the
  // database on close: used after an I/O error, when the WAL may hold frames that never
  // reached the disk. Statements must have been destroyed first.
  Status Close(bool checkpoint);

  const std::string& path() const { return path_; }

 private:
  Db(std::string path, sqlite3* db, std::unique_ptr<FaultVfs> vfs);
  std::string path_;
  sqlite3* db_;                    // null once closed
  std::unique_ptr<FaultVfs> vfs_;  // the fault-injecting VFS, when one was asked for
};

// The SQLite library's version, e.g. "3.40.1".
std::string_view SqliteVersion();

}  // namespace outpost::sqlite

#endif  // OUTPOST_BASE_SQLITE_SQLITE_H_
