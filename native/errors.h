// Errors leave the core only as AttestdError(code, message), constructed from the class
// that daemon/native.ts hands to setErrorClass(), so callers can match on `code`.
#pragma once

#include <napi.h>
#include <openssl/evp.h>

#include <string>

namespace attestd {

// Builds an AttestdError without throwing it (for Promise rejection).
Napi::Value MakeError(Napi::Env env, const char* code, const std::string& message);

// Throws an AttestdError as a pending JS exception; the caller returns right after.
void ThrowError(Napi::Env env, const char* code, const std::string& message);

// "ENOENT (No such file or directory)": the symbolic name first, so logs stay greppable.
std::string DescribeErrno(int err);

// Drains this thread's OpenSSL error queue into one line. Leaving entries behind would
// leak them into unrelated node:crypto calls on the same thread.
std::string DrainOpenSslErrors();

// Argument checks at the boundary. TypeScript validates first; these keep a direct caller
// of the addon from reaching undefined behaviour. On failure they throw INVALID_ARGUMENT.
bool GetBytes(const Napi::CallbackInfo& info, size_t index, const uint8_t** data, size_t* length);
bool GetNonNegativeInt(const Napi::CallbackInfo& info, size_t index, int* out);
// "sha256" or "sha384" to its digest; nullptr (INVALID_ARGUMENT thrown) for anything else.
const EVP_MD* GetDigest(const Napi::CallbackInfo& info, size_t index);

}  // namespace attestd
