#include "tests/support/fault_vfs.h"

#include <algorithm>
#include <stdexcept>

namespace keel::testing {
namespace {

// SQLite's WAL lock slots (src/wal.c): slot 0 is the write lock.
constexpr int kWalWriteLock = 0;

constexpr uint64_t kCountMask = 0xFFFFF;
constexpr int kSkipShift = 20;
constexpr int kErrorShift = 40;
constexpr int kFilesShift = 56;

// One open file: SQLite's handle, then the default VFS's handle for the same
// file, which this one forwards to.
struct alignas(8) FaultHandle {
  sqlite3_file base;
  FaultVfs* vfs;
  FaultFile kind;
  sqlite3_file* real;
};

FaultHandle* Handle(sqlite3_file* file) { return reinterpret_cast<FaultHandle*>(file); }
sqlite3_file* Real(sqlite3_file* file) { return Handle(file)->real; }
FaultVfs* Owner(sqlite3_vfs* vfs) { return static_cast<FaultVfs*>(vfs->pAppData); }

FaultFile KindOf(int flags) {
  if (flags & SQLITE_OPEN_MAIN_DB) return kMainDbFile;
  if (flags & SQLITE_OPEN_WAL) return kWalFile;
  if (flags & (SQLITE_OPEN_MAIN_JOURNAL | SQLITE_OPEN_SUBJOURNAL)) return kJournalFile;
  return kOtherFile;
}

// --- sqlite3_io_methods ---------------------------------------------------

int Close(sqlite3_file* file) {
  sqlite3_file* real = Real(file);
  return real->pMethods != nullptr ? real->pMethods->xClose(real) : SQLITE_OK;
}

int Read(sqlite3_file* file, void* buf, int amount, sqlite3_int64 offset) {
  return Real(file)->pMethods->xRead(Real(file), buf, amount, offset);
}

int Write(sqlite3_file* file, const void* buf, int amount, sqlite3_int64 offset) {
  FaultHandle* h = Handle(file);
  if (int rc = h->vfs->Decide(FaultOp::kWrite, h->kind); rc != SQLITE_OK) return rc;
  return h->real->pMethods->xWrite(h->real, buf, amount, offset);
}

int Truncate(sqlite3_file* file, sqlite3_int64 size) {
  FaultHandle* h = Handle(file);
  if (int rc = h->vfs->Decide(FaultOp::kTruncate, h->kind); rc != SQLITE_OK) return rc;
  return h->real->pMethods->xTruncate(h->real, size);
}

int Sync(sqlite3_file* file, int flags) {
  FaultHandle* h = Handle(file);
  if (int rc = h->vfs->Decide(FaultOp::kSync, h->kind); rc != SQLITE_OK) return rc;
  return h->real->pMethods->xSync(h->real, flags);
}

int FileSize(sqlite3_file* file, sqlite3_int64* size) {
  return Real(file)->pMethods->xFileSize(Real(file), size);
}

int Lock(sqlite3_file* file, int level) {
  FaultHandle* h = Handle(file);
  if (level >= SQLITE_LOCK_RESERVED) {
    if (int rc = h->vfs->Decide(FaultOp::kWriteLock, h->kind); rc != SQLITE_OK) return rc;
  }
  return h->real->pMethods->xLock(h->real, level);
}

int Unlock(sqlite3_file* file, int level) {
  return Real(file)->pMethods->xUnlock(Real(file), level);
}

int CheckReservedLock(sqlite3_file* file, int* out) {
  return Real(file)->pMethods->xCheckReservedLock(Real(file), out);
}

int FileControl(sqlite3_file* file, int op, void* arg) {
  return Real(file)->pMethods->xFileControl(Real(file), op, arg);
}

int SectorSize(sqlite3_file* file) { return Real(file)->pMethods->xSectorSize(Real(file)); }

int DeviceCharacteristics(sqlite3_file* file) {
  return Real(file)->pMethods->xDeviceCharacteristics(Real(file));
}

int ShmMap(sqlite3_file* file, int region, int size, int extend, void volatile** out) {
  return Real(file)->pMethods->xShmMap(Real(file), region, size, extend, out);
}

int ShmLock(sqlite3_file* file, int offset, int n, int flags) {
  FaultHandle* h = Handle(file);
  const bool write_lock = (flags & SQLITE_SHM_LOCK) && (flags & SQLITE_SHM_EXCLUSIVE) &&
                          offset <= kWalWriteLock && offset + n > kWalWriteLock;
  if (write_lock) {
    if (int rc = h->vfs->Decide(FaultOp::kWriteLock, h->kind); rc != SQLITE_OK) return rc;
  }
  return h->real->pMethods->xShmLock(h->real, offset, n, flags);
}

void ShmBarrier(sqlite3_file* file) { Real(file)->pMethods->xShmBarrier(Real(file)); }

int ShmUnmap(sqlite3_file* file, int delete_flag) {
  return Real(file)->pMethods->xShmUnmap(Real(file), delete_flag);
}

int Fetch(sqlite3_file* file, sqlite3_int64 offset, int amount, void** out) {
  return Real(file)->pMethods->xFetch(Real(file), offset, amount, out);
}

int Unfetch(sqlite3_file* file, sqlite3_int64 offset, void* page) {
  return Real(file)->pMethods->xUnfetch(Real(file), offset, page);
}

// The methods of versions 1, 2 and 3; a file gets the version its real
// file has, so SQLite never calls a method the real one lacks.
constexpr sqlite3_io_methods MethodsOfVersion(int version) {
  return sqlite3_io_methods{
      version,
      Close,
      Read,
      Write,
      Truncate,
      Sync,
      FileSize,
      Lock,
      Unlock,
      CheckReservedLock,
      FileControl,
      SectorSize,
      DeviceCharacteristics,
      ShmMap,
      ShmLock,
      ShmBarrier,
      ShmUnmap,
      Fetch,
      Unfetch,
  };
}
const sqlite3_io_methods kMethods[3] = {MethodsOfVersion(1), MethodsOfVersion(2),
                                        MethodsOfVersion(3)};

// --- sqlite3_vfs ------------------------------------------------------------

int Open(sqlite3_vfs* vfs, const char* name, sqlite3_file* file, int flags, int* out_flags) {
  FaultVfs* owner = Owner(vfs);
  FaultHandle* h = Handle(file);
  h->base.pMethods = nullptr;
  h->vfs = owner;
  h->kind = KindOf(flags);
  h->real = reinterpret_cast<sqlite3_file*>(h + 1);
  h->real->pMethods = nullptr;
  int rc = owner->real()->xOpen(owner->real(), name, h->real, flags, out_flags);
  if (h->real->pMethods != nullptr) {
    const int version = std::clamp(h->real->pMethods->iVersion, 1, 3);
    h->base.pMethods = &kMethods[version - 1];
  }
  return rc;
}

sqlite3_vfs* RealVfs(sqlite3_vfs* vfs) { return Owner(vfs)->real(); }

int Delete(sqlite3_vfs* vfs, const char* name, int sync_dir) {
  return RealVfs(vfs)->xDelete(RealVfs(vfs), name, sync_dir);
}
int Access(sqlite3_vfs* vfs, const char* name, int flags, int* out) {
  return RealVfs(vfs)->xAccess(RealVfs(vfs), name, flags, out);
}
int FullPathname(sqlite3_vfs* vfs, const char* name, int size, char* out) {
  return RealVfs(vfs)->xFullPathname(RealVfs(vfs), name, size, out);
}
void* DlOpen(sqlite3_vfs* vfs, const char* name) {
  return RealVfs(vfs)->xDlOpen(RealVfs(vfs), name);
}
void DlError(sqlite3_vfs* vfs, int size, char* out) {
  RealVfs(vfs)->xDlError(RealVfs(vfs), size, out);
}
void (*DlSym(sqlite3_vfs* vfs, void* handle, const char* symbol))(void) {
  return RealVfs(vfs)->xDlSym(RealVfs(vfs), handle, symbol);
}
void DlClose(sqlite3_vfs* vfs, void* handle) { RealVfs(vfs)->xDlClose(RealVfs(vfs), handle); }
int Randomness(sqlite3_vfs* vfs, int size, char* out) {
  return RealVfs(vfs)->xRandomness(RealVfs(vfs), size, out);
}
int Sleep(sqlite3_vfs* vfs, int micros) { return RealVfs(vfs)->xSleep(RealVfs(vfs), micros); }
int CurrentTime(sqlite3_vfs* vfs, double* out) {
  return RealVfs(vfs)->xCurrentTime(RealVfs(vfs), out);
}
int GetLastError(sqlite3_vfs* vfs, int size, char* out) {
  return RealVfs(vfs)->xGetLastError(RealVfs(vfs), size, out);
}
int CurrentTimeInt64(sqlite3_vfs* vfs, sqlite3_int64* out) {
  return RealVfs(vfs)->xCurrentTimeInt64(RealVfs(vfs), out);
}
int SetSystemCall(sqlite3_vfs* vfs, const char* name, sqlite3_syscall_ptr call) {
  return RealVfs(vfs)->xSetSystemCall(RealVfs(vfs), name, call);
}
sqlite3_syscall_ptr GetSystemCall(sqlite3_vfs* vfs, const char* name) {
  return RealVfs(vfs)->xGetSystemCall(RealVfs(vfs), name);
}
const char* NextSystemCall(sqlite3_vfs* vfs, const char* name) {
  return RealVfs(vfs)->xNextSystemCall(RealVfs(vfs), name);
}

}  // namespace

FaultVfs::FaultVfs(std::string name) : name_(std::move(name)) {
  if (sqlite3_initialize() != SQLITE_OK) throw std::runtime_error("sqlite3_initialize failed");
  real_ = sqlite3_vfs_find(nullptr);
  if (real_ == nullptr) throw std::runtime_error("no default SQLite VFS");
  if (sqlite3_vfs_find(name_.c_str()) != nullptr) {
    throw std::runtime_error("a SQLite VFS called " + name_ + " exists already");
  }
  vfs_.iVersion = std::min(real_->iVersion, 3);
  vfs_.szOsFile = static_cast<int>(sizeof(FaultHandle)) + real_->szOsFile;
  vfs_.mxPathname = real_->mxPathname;
  vfs_.zName = name_.c_str();
  vfs_.pAppData = this;
  vfs_.xOpen = Open;
  vfs_.xDelete = Delete;
  vfs_.xAccess = Access;
  vfs_.xFullPathname = FullPathname;
  vfs_.xDlOpen = DlOpen;
  vfs_.xDlError = DlError;
  vfs_.xDlSym = DlSym;
  vfs_.xDlClose = DlClose;
  vfs_.xRandomness = Randomness;
  vfs_.xSleep = Sleep;
  vfs_.xCurrentTime = CurrentTime;
  vfs_.xGetLastError = GetLastError;
  vfs_.xCurrentTimeInt64 = CurrentTimeInt64;
  vfs_.xSetSystemCall = SetSystemCall;
  vfs_.xGetSystemCall = GetSystemCall;
  vfs_.xNextSystemCall = NextSystemCall;
  if (sqlite3_vfs_register(&vfs_, /*makeDflt=*/0) != SQLITE_OK) {
    throw std::runtime_error("cannot register SQLite VFS " + name_);
  }
}

FaultVfs::~FaultVfs() { sqlite3_vfs_unregister(&vfs_); }

void FaultVfs::Fail(FaultOp op, int error, uint32_t count, unsigned files, uint32_t skip) {
  if (count == 0 || error == SQLITE_OK || (files & kAnyFile) == 0) {
    Clear(op);
    return;
  }
  count = std::min<uint32_t>(count, kForever);
  skip = std::min<uint32_t>(skip, kMaxCount);
  const uint64_t plan = uint64_t{count} | (uint64_t{skip} << kSkipShift) |
                        (uint64_t{static_cast<uint16_t>(error)} << kErrorShift) |
                        (uint64_t{files & kAnyFile} << kFilesShift);
  plans_[Index(op)].store(plan);
}

void FaultVfs::Clear(FaultOp op) { plans_[Index(op)].store(0); }

void FaultVfs::ClearAll() {
  for (auto& plan : plans_) plan.store(0);
}

bool FaultVfs::Armed(FaultOp op) const { return plans_[Index(op)].load() != 0; }

int64_t FaultVfs::TotalInjected() const {
  int64_t total = 0;
  for (const auto& n : injected_) total += n.load();
  return total;
}

void FaultVfs::ResetCounters() {
  for (auto& n : calls_) n.store(0);
  for (auto& n : injected_) n.store(0);
}

int FaultVfs::Decide(FaultOp op, FaultFile kind) {
  const int i = Index(op);
  calls_[i].fetch_add(1);
  std::atomic<uint64_t>& plan = plans_[i];
  uint64_t current = plan.load();
  for (;;) {
    if (current == 0) return SQLITE_OK;
    const unsigned files = static_cast<unsigned>(current >> kFilesShift);
    if ((files & kind) == 0) return SQLITE_OK;
    const uint64_t count = current & kCountMask;
    const uint64_t skip = (current >> kSkipShift) & kCountMask;
    const int error = static_cast<int>((current >> kErrorShift) & 0xFFFF);
    uint64_t next;
    if (skip > 0) {
      next = current - (uint64_t{1} << kSkipShift);
    } else if (count == kForever) {
      injected_[i].fetch_add(1);
      return error;
    } else {
      next = count == 1 ? 0 : current - 1;
    }
    if (plan.compare_exchange_weak(current, next)) {
      if (skip > 0) return SQLITE_OK;
      injected_[i].fetch_add(1);
      return error;
    }
  }
}

}  // namespace keel::testing
