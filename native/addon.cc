// Module init: one AddonData per environment, then each concept registers its exports.
// C++ exceptions are disabled (NODE_ADDON_API_DISABLE_CPP_EXCEPTIONS, -fno-exceptions):
// every failure is thrown as a JS AttestdError and the function returns at once.
#include "addon.h"

namespace {

// NODE_API_MODULE pastes the name into an identifier, so it cannot be qualified.
Napi::Object InitModule(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData<attestd::AddonData>(new attestd::AddonData());
  attestd::InitErrors(env, exports);
  attestd::InitSessionKey(env, exports);
  attestd::InitHash(env, exports);
  attestd::InitExeHasher(env, exports);
  attestd::InitPeer(env, exports);
  attestd::InitNotify(env, exports);
  attestd::InitCvm(env, exports);
  attestd::InitProcOpener(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(attestd_native, InitModule)
