#include "errors.h"

#include <openssl/err.h>

#include <cerrno>
#include <cmath>
#include <climits>
#include <cstring>

#include "addon.h"

namespace attestd {

Napi::Value MakeError(Napi::Env env, const char* code, const std::string& message) {
  AddonData* data = env.GetInstanceData<AddonData>();
  if (data != nullptr && !data->errorClass.IsEmpty()) {
    return data->errorClass.New({Napi::String::New(env, code), Napi::String::New(env, message)});
  }
  // Only reachable if the addon is used without daemon/native.ts; keep the code visible.
  Napi::Error fallback = Napi::Error::New(env, message);
  fallback.Set("code", Napi::String::New(env, code));
  return fallback.Value();
}

void ThrowError(Napi::Env env, const char* code, const std::string& message) {
  Napi::Value error = MakeError(env, code, message);
  // If constructing the error threw, that exception is already pending; keep it.
  if (env.IsExceptionPending()) return;
  Napi::Error(env, error).ThrowAsJavaScriptException();
}

namespace {

const char* ErrnoName(int err) {
  switch (err) {
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case ESRCH: return "ESRCH";
    case EINTR: return "EINTR";
    case EIO: return "EIO";
    case ENXIO: return "ENXIO";
    case EBADF: return "EBADF";
    case EAGAIN: return "EAGAIN";
    case ENOMEM: return "ENOMEM";
    case EACCES: return "EACCES";
    case EFAULT: return "EFAULT";
    case EBUSY: return "EBUSY";
    case ENOTDIR: return "ENOTDIR";
    case EISDIR: return "EISDIR";
    case EINVAL: return "EINVAL";
    case ENFILE: return "ENFILE";
    case EMFILE: return "EMFILE";
    case EFBIG: return "EFBIG";
    case ENOSPC: return "ENOSPC";
    case ESPIPE: return "ESPIPE";
    case EROFS: return "EROFS";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case ENOSYS: return "ENOSYS";
    case ELOOP: return "ELOOP";
    case EOVERFLOW: return "EOVERFLOW";
    case ENOTSOCK: return "ENOTSOCK";
    case ENOPROTOOPT: return "ENOPROTOOPT";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case ENOTCONN: return "ENOTCONN";
    default: return nullptr;
  }
}

}  // namespace

std::string DescribeErrno(int err) {
  const char* name = ErrnoName(err);
  std::string out = name != nullptr ? name : "errno " + std::to_string(err);
  out += " (";
  out += std::strerror(err);
  out += ")";
  return out;
}

std::string DrainOpenSslErrors() {
  std::string out;
  unsigned long code;
  char line[256];
  while ((code = ERR_get_error()) != 0) {
    ERR_error_string_n(code, line, sizeof line);
    if (!out.empty()) out += "; ";
    out += line;
  }
  return out.empty() ? "no OpenSSL error recorded" : out;
}

bool GetBytes(const Napi::CallbackInfo& info, size_t index, const uint8_t** data, size_t* length) {
  Napi::Value value = info[index];
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    ThrowError(info.Env(), "INVALID_ARGUMENT", "expected a Buffer or Uint8Array");
    return false;
  }
  Napi::Uint8Array bytes = value.As<Napi::Uint8Array>();
  // An empty view may have a null data pointer; OpenSSL wants a valid one.
  static const uint8_t kEmpty[1] = {0};
  *length = bytes.ByteLength();
  *data = *length == 0 ? kEmpty : bytes.Data();
  return true;
}

bool GetNonNegativeInt(const Napi::CallbackInfo& info, size_t index, int* out) {
  Napi::Value value = info[index];
  if (value.IsNumber()) {
    double d = value.As<Napi::Number>().DoubleValue();
    if (std::isfinite(d) && d >= 0 && d <= INT_MAX && std::floor(d) == d) {
      *out = static_cast<int>(d);
      return true;
    }
  }
  ThrowError(info.Env(), "INVALID_ARGUMENT", "expected an integer in [0, 2^31)");
  return false;
}

const EVP_MD* GetDigest(const Napi::CallbackInfo& info, size_t index) {
  if (info[index].IsString()) {
    std::string name = info[index].As<Napi::String>().Utf8Value();
    if (name == "sha256") return EVP_sha256();
    if (name == "sha384") return EVP_sha384();
  }
  ThrowError(info.Env(), "INVALID_ARGUMENT", "algorithm must be 'sha256' or 'sha384'");
  return nullptr;
}

namespace {

// Called once by daemon/native.ts at load with the AttestdError class.
Napi::Value SetErrorClass(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsFunction()) {
    Napi::TypeError::New(env, "setErrorClass expects a constructor").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  env.GetInstanceData<AddonData>()->errorClass = Napi::Persistent(info[0].As<Napi::Function>());
  return env.Undefined();
}

}  // namespace

void InitErrors(Napi::Env env, Napi::Object exports) {
  exports.Set("setErrorClass", Napi::Function::New(env, SetErrorClass, "setErrorClass"));
}

}  // namespace attestd
