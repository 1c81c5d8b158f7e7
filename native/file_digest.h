// The digest of a file open on a descriptor, for the two hashers (hash.cc reads files the
// daemon names, exe_hasher.cc the executables of its callers). Plain C++ with no N-API
// value in sight, so it runs on any thread.
#pragma once

#include <openssl/evp.h>
#include <sys/stat.h>

#include <atomic>
#include <cstdint>
#include <string>

namespace attestd {

struct FileDigest {
  enum class Status { kOk, kTooLarge, kCancelled, kFailed };
  Status status = Status::kOk;
  const char* code = nullptr;  // kFailed: a stable error code (a string literal)
  std::string message;         // anything but kOk: what happened, without the file's name
  uint8_t digest[EVP_MAX_MD_SIZE] = {};
  unsigned int length = 0;
  struct stat version = {};  // kOk: the fstat of the file as it was read, before and after
};

// Hashes the regular file open on `fd` from offset 0 with pread, so the descriptor's file
// offset, shared with every dup of it, is neither used nor moved. Fails with kTooLarge
// before reading if the file is larger than `maxBytes`, and again if it grows past it while
// being read; with kFailed (NATIVE_IO_FAILED) if it is not a regular file or its size, times
// or inode changed between the first and the last fstat, since the bytes read then belong
// to no single version of it. `cancel`, if given, is checked between chunks.
FileDigest DigestFile(int fd, const EVP_MD* md, uint64_t maxBytes, const std::atomic<bool>* cancel);

}  // namespace attestd
