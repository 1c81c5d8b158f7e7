#pragma once

#include <string>

namespace attestd {

// Makes sure OpenSSL's secure heap is up, so that key material OpenSSL allocates with
// OPENSSL_secure_malloc lands in locked, non-dumpable memory. Returns false with a reason
// when that cannot be had; callers then refuse to create keys.
bool EnsureSecureHeap(std::string* reason);

}  // namespace attestd
