// Shared declarations of the attestd native core. Each concept lives in its own .cc file;
// this header only names what module init needs to wire them together.
#pragma once

#include <napi.h>

namespace attestd {

class ExeHasher;

// Per-environment state. Worker threads load the addon into their own environment, so
// nothing JS-facing may live in a static: each env gets one of these via SetInstanceData.
struct AddonData {
  Napi::FunctionReference errorClass;  // AttestdError, handed in by daemon/native.ts
  ExeHasher* exeHasher = nullptr;       // started on first use; freed at environment teardown
};

void InitErrors(Napi::Env env, Napi::Object exports);
void InitSessionKey(Napi::Env env, Napi::Object exports);
void InitHash(Napi::Env env, Napi::Object exports);
void InitExeHasher(Napi::Env env, Napi::Object exports);
void InitPeer(Napi::Env env, Napi::Object exports);
void InitNotify(Napi::Env env, Napi::Object exports);
void InitCvm(Napi::Env env, Napi::Object exports);
void InitProcOpener(Napi::Env env, Napi::Object exports);

}  // namespace attestd
