// Why OpenSSL's secure heap and not our own mlock'd buffer: the Ed25519 private key has to
// live inside an EVP_PKEY for signing, and OpenSSL 3 allocates ECX private keys with
// OPENSSL_secure_zalloc and frees them with OPENSSL_secure_clear_free. Once
// CRYPTO_secure_malloc_init has run, those calls use one arena that OpenSSL maps with
// mmap, surrounds with PROT_NONE guard pages, mlock()s and marks MADV_DONTDUMP; freed
// blocks are cleansed. So the key is generated straight into locked memory, never copied
// out, and zeroed when the EVP_PKEY is freed. The arena shows in /proc/self/smaps with the
// VmFlags "lo" (locked) and "dd" (do not dump); OpenSSL uses mlock2(MLOCK_ONFAULT) where
// the kernel has it ("lf"), so "Locked:" counts only pages touched so far, each of which
// is pinned from its first use and never reaches swap.
//
// The heap is process-wide and shared with Node's own crypto (node --secure-heap uses the
// same call), so it is sized with room for node:crypto private keys held elsewhere in the
// daemon, and is set up lazily at the first key, not at load, so loading the addon only
// for hashing locks nothing.
#include "secure_heap.h"

#include <openssl/crypto.h>

#include <mutex>

namespace attestd {
namespace {

// 1 MiB: within the default RLIMIT_MEMLOCK of current kernels and systemd (8 MiB).
// Each Ed25519 key takes one 32-byte block; the rest is headroom for node:crypto.
constexpr size_t kArenaBytes = 1 << 20;
constexpr size_t kMinBlockBytes = 32;

enum class HeapState { kUnknown, kReady, kFailed };

// Process-wide, like the heap itself; guarded because worker threads load their own
// instance of the addon and may create keys concurrently.
std::mutex g_mutex;
HeapState g_state = HeapState::kUnknown;
std::string g_failure;

}  // namespace

bool EnsureSecureHeap(std::string* reason) {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (g_state == HeapState::kReady) return true;
  if (g_state == HeapState::kFailed) {
    *reason = g_failure;
    return false;
  }
  // Already set up by `node --secure-heap=N`. Node only warns on stderr when that arena
  // could not be locked, which we cannot observe from here; operators who pass the flag
  // take that responsibility.
  if (CRYPTO_secure_malloc_initialized()) {
    g_state = HeapState::kReady;
    return true;
  }
  // Returns 1 when the arena is mapped, locked and marked non-dumpable, 2 when it is
  // mapped but mlock or madvise failed (typically RLIMIT_MEMLOCK), 0 when nothing worked.
  int rc = CRYPTO_secure_malloc_init(kArenaBytes, kMinBlockBytes);
  if (rc == 1) {
    g_state = HeapState::kReady;
    return true;
  }
  if (rc == 2) {
    // An unlocked arena is worse than none: it would tell OpenSSL the memory is secure.
    // Undo it while nothing is allocated from it yet. Should the undo fail, the state
    // stays kFailed, so no key is ever put there.
    CRYPTO_secure_malloc_done();
    g_failure = "secure heap mapped but mlock or MADV_DONTDUMP failed (check RLIMIT_MEMLOCK)";
  } else {
    g_failure = "secure heap could not be mapped";
  }
  g_state = HeapState::kFailed;
  *reason = g_failure;
  return false;
}

}  // namespace attestd
