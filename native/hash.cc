// SHA-256 / SHA-384 of an in-memory buffer (synchronous: microseconds) and of a file
// (asynchronous: executables can be hundreds of MiB). The file path is copied into native
// memory, the file is read on a libuv worker thread in 1 MiB chunks with no size bound,
// and a Promise is settled back on the main thread; no JS value is touched off it.
//
// The daemon hashes /proc/<pid>/exe, a magic link to the running executable, so the open
// deliberately follows symlinks (no O_NOFOLLOW). It refuses anything but a regular file:
// a FIFO or character device would block the worker or never end.
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <string>

#include "addon.h"
#include "errors.h"

namespace attestd {
namespace {

constexpr size_t kReadChunkBytes = 1 << 20;

// Maps the algorithm name to a digest; nullptr with INVALID_ARGUMENT pending otherwise.
const EVP_MD* GetDigest(const Napi::CallbackInfo& info, size_t index) {
  if (info[index].IsString()) {
    std::string name = info[index].As<Napi::String>().Utf8Value();
    if (name == "sha256") return EVP_sha256();
    if (name == "sha384") return EVP_sha384();
  }
  ThrowError(info.Env(), "INVALID_ARGUMENT", "algorithm must be 'sha256' or 'sha384'");
  return nullptr;
}

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
    if (fd < 0) return FailErrno("open", errno);
    struct stat st;
    if (fstat(fd, &st) != 0) {
      FailErrno("fstat", errno);
    } else if (!S_ISREG(st.st_mode)) {
      Fail("NATIVE_IO_FAILED", "not a regular file: " + path_ + ": " + DescribeErrno(EINVAL));
    } else {
      HashOpenFile(fd);
    }
    close(fd);
  }

  void OnOK() override {
    Napi::Env env = Env();
    if (code_ != nullptr) {
      deferred_.Reject(MakeError(env, code_, message_));
    } else {
      deferred_.Resolve(Napi::Buffer<uint8_t>::Copy(env, digest_, digestLength_));
    }
  }

  // Execute never calls SetError, so this only runs if node-addon-api reports a failure
  // of its own; settle the Promise rather than leave it pending.
  void OnError(const Napi::Error& error) override { deferred_.Reject(error.Value()); }

 private:
  void HashOpenFile(int fd) {
    uint8_t* buffer = static_cast<uint8_t*>(std::malloc(kReadChunkBytes));
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    if (buffer == nullptr || ctx == nullptr) {
      FailErrno("allocate", ENOMEM);
    } else if (EVP_DigestInit_ex(ctx, md_, nullptr) != 1) {
      Fail("NATIVE_CRYPTO_FAILED", "digest init failed: " + DrainOpenSslErrors());
    } else {
      for (;;) {
        ssize_t n = read(fd, buffer, kReadChunkBytes);
        if (n < 0) {
          if (errno == EINTR) continue;
          FailErrno("read", errno);
          break;
        }
        if (n == 0) {
          if (EVP_DigestFinal_ex(ctx, digest_, &digestLength_) != 1) {
            Fail("NATIVE_CRYPTO_FAILED", "digest final failed: " + DrainOpenSslErrors());
          }
          break;
        }
        if (EVP_DigestUpdate(ctx, buffer, static_cast<size_t>(n)) != 1) {
          Fail("NATIVE_CRYPTO_FAILED", "digest update failed: " + DrainOpenSslErrors());
          break;
        }
      }
    }
    EVP_MD_CTX_free(ctx);
    std::free(buffer);
  }

  void Fail(const char* code, std::string message) {
    code_ = code;
    message_ = std::move(message);
  }

  void FailErrno(const char* operation, int err) {
    Fail("NATIVE_IO_FAILED", std::string(operation) + " " + path_ + ": " + DescribeErrno(err));
  }

  Napi::Promise::Deferred deferred_;
  const std::string path_;
  const EVP_MD* const md_;
  const char* code_ = nullptr;  // set on failure; a string literal
  std::string message_;
  uint8_t digest_[EVP_MAX_MD_SIZE] = {};
  unsigned int digestLength_ = 0;
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
