// SHA-256 / SHA-384 of an in-memory buffer (synchronous: microseconds) and of a file the
// daemon names, such as a GPU driver file (asynchronous: such files can be hundreds of MiB).
// The path is copied into native memory, the file is read on a libuv worker thread with no
// size bound, and a Promise is settled back on the main thread; no JS value is touched off
// it. Executables of callers are hashed elsewhere (exe_hasher.cc), bounded and off libuv.
//
// The open deliberately follows symlinks (no O_NOFOLLOW), as links to the real file are
// common among driver files. Anything but a regular file is refused (see DigestFile).
#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <string>

#include "addon.h"
#include "errors.h"
#include "file_digest.h"

namespace attestd {
namespace {

Napi::Value DigestBuffer(const Napi::CallbackInfo& info, const EVP_MD* md) {
  Napi::Env env = info.Env();
  const uint8_t* data = nullptr;
  size_t length = 0;
  if (!GetBytes(info, 0, &data, &length)) return env.Undefined();
  uint8_t digest[EVP_MAX_MD_SIZE];
  unsigned int digestLength = 0;
  if (EVP_Digest(data, length, digest, &digestLength, md, nullptr) != 1) {
    ThrowError(env, "NATIVE_CRYPTO_FAILED", "digest failed: " + DrainOpenSslErrors());
    return env.Undefined();
  }
  return Napi::Buffer<uint8_t>::Copy(env, digest, digestLength);
}

Napi::Value Sha256(const Napi::CallbackInfo& info) { return DigestBuffer(info, EVP_sha256()); }
Napi::Value Sha384(const Napi::CallbackInfo& info) { return DigestBuffer(info, EVP_sha384()); }

class HashFileWorker : public Napi::AsyncWorker {
 public:
  HashFileWorker(Napi::Env env, std::string path, const EVP_MD* md)
      : Napi::AsyncWorker(env, "attestd.hashFile"),
        deferred_(Napi::Promise::Deferred::New(env)),
        path_(std::move(path)),
        md_(md) {}

  Napi::Promise Promise() const { return deferred_.Promise(); }

 protected:
  // Worker thread: only native state from here on.
  void Execute() override {
    int fd = open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      result_.status = FileDigest::Status::kFailed;
      result_.code = "NATIVE_IO_FAILED";
      result_.message = "open: " + DescribeErrno(errno);
      return;
    }
    // No size bound: these are files the daemon itself names, not ones a caller chose.
    result_ = DigestFile(fd, md_, UINT64_MAX, nullptr);
    close(fd);
  }

  void OnOK() override {
    Napi::Env env = Env();
    if (result_.status != FileDigest::Status::kOk) {
      const char* code = result_.code != nullptr ? result_.code : "NATIVE_IO_FAILED";
      deferred_.Reject(MakeError(env, code, path_ + ": " + result_.message));
    } else {
      deferred_.Resolve(Napi::Buffer<uint8_t>::Copy(env, result_.digest, result_.length));
    }
  }

  // Execute never calls SetError, so this only runs if node-addon-api reports a failure
  // of its own; settle the Promise rather than leave it pending.
  void OnError(const Napi::Error& error) override { deferred_.Reject(error.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  const std::string path_;
  const EVP_MD* const md_;
  FileDigest result_;
};

Napi::Value HashFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) {
    ThrowError(env, "INVALID_ARGUMENT", "path must be a string");
    return env.Undefined();
  }
  std::string path = info[0].As<Napi::String>().Utf8Value();
  if (path.empty() || path.find('\0') != std::string::npos) {
    ThrowError(env, "INVALID_ARGUMENT", "path must be non-empty and free of NUL bytes");
    return env.Undefined();
  }
  const EVP_MD* md = GetDigest(info, 1);
  if (md == nullptr) return env.Undefined();
  // Queue() hands ownership to libuv; the worker deletes itself after OnOK/OnError.
  HashFileWorker* worker = new HashFileWorker(env, std::move(path), md);
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

}  // namespace

void InitHash(Napi::Env env, Napi::Object exports) {
  exports.Set("sha256", Napi::Function::New(env, Sha256, "sha256"));
  exports.Set("sha384", Napi::Function::New(env, Sha384, "sha384"));
  exports.Set("hashFile", Napi::Function::New(env, HashFile, "hashFile"));
}

}  // namespace attestd
