#include "file_digest.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "errors.h"

namespace attestd {
namespace {

constexpr size_t kReadChunkBytes = 1 << 20;

bool SameVersion(const struct stat& a, const struct stat& b) {
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino && a.st_size == b.st_size &&
         a.st_mtim.tv_sec == b.st_mtim.tv_sec && a.st_mtim.tv_nsec == b.st_mtim.tv_nsec &&
         a.st_ctim.tv_sec == b.st_ctim.tv_sec && a.st_ctim.tv_nsec == b.st_ctim.tv_nsec;
}

void Fail(FileDigest* out, FileDigest::Status status, const char* code, std::string message) {
  out->status = status;
  out->code = code;
  out->message = std::move(message);
}

// Reads and digests until end of file; false with `out` set on failure.
bool ReadAll(int fd, EVP_MD_CTX* ctx, uint8_t* buffer, uint64_t maxBytes, const std::atomic<bool>* cancel,
             FileDigest* out) {
  uint64_t offset = 0;
  for (;;) {
    if (cancel != nullptr && cancel->load(std::memory_order_relaxed)) {
      Fail(out, FileDigest::Status::kCancelled, nullptr, "hashing cancelled");
      return false;
    }
    ssize_t n = pread(fd, buffer, kReadChunkBytes, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      Fail(out, FileDigest::Status::kFailed, "NATIVE_IO_FAILED", "read: " + DescribeErrno(errno));
      return false;
    }
    if (n == 0) return true;
    offset += static_cast<uint64_t>(n);
    if (offset > maxBytes) {
      Fail(out, FileDigest::Status::kTooLarge, nullptr, "grew past " + std::to_string(maxBytes) + " bytes while read");
      return false;
    }
    if (EVP_DigestUpdate(ctx, buffer, static_cast<size_t>(n)) != 1) {
      Fail(out, FileDigest::Status::kFailed, "NATIVE_CRYPTO_FAILED", "digest update failed: " + DrainOpenSslErrors());
      return false;
    }
  }
}

}  // namespace

FileDigest DigestFile(int fd, const EVP_MD* md, uint64_t maxBytes, const std::atomic<bool>* cancel) {
  FileDigest out;
  struct stat before;
  if (fstat(fd, &before) != 0) {
    Fail(&out, FileDigest::Status::kFailed, "NATIVE_IO_FAILED", "fstat: " + DescribeErrno(errno));
    return out;
  }
  // A FIFO or character device would block the thread or never end.
  if (!S_ISREG(before.st_mode)) {
    Fail(&out, FileDigest::Status::kFailed, "NATIVE_IO_FAILED", "not a regular file: " + DescribeErrno(EINVAL));
    return out;
  }
  if (static_cast<uint64_t>(before.st_size) > maxBytes) {
    Fail(&out, FileDigest::Status::kTooLarge, nullptr,
         std::to_string(before.st_size) + " bytes, more than " + std::to_string(maxBytes));
    return out;
  }
  uint8_t* buffer = static_cast<uint8_t*>(std::malloc(kReadChunkBytes));
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  struct stat after;
  if (buffer == nullptr || ctx == nullptr) {
    Fail(&out, FileDigest::Status::kFailed, "NATIVE_IO_FAILED", "allocate: " + DescribeErrno(ENOMEM));
  } else if (EVP_DigestInit_ex(ctx, md, nullptr) != 1) {
    Fail(&out, FileDigest::Status::kFailed, "NATIVE_CRYPTO_FAILED", "digest init failed: " + DrainOpenSslErrors());
  } else if (ReadAll(fd, ctx, buffer, maxBytes, cancel, &out)) {
    if (fstat(fd, &after) != 0) {
      Fail(&out, FileDigest::Status::kFailed, "NATIVE_IO_FAILED", "fstat: " + DescribeErrno(errno));
    } else if (!SameVersion(before, after)) {
      Fail(&out, FileDigest::Status::kFailed, "NATIVE_IO_FAILED", "changed while it was being hashed");
    } else if (EVP_DigestFinal_ex(ctx, out.digest, &out.length) != 1) {
      Fail(&out, FileDigest::Status::kFailed, "NATIVE_CRYPTO_FAILED", "digest final failed: " + DrainOpenSslErrors());
    } else {
      out.version = after;
    }
  }
  EVP_MD_CTX_free(ctx);
  std::free(buffer);
  return out;
}

}  // namespace attestd
