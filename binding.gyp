# Build policy of the native core. OpenSSL comes from Node's own headers (node-gyp adds
# <nodedir>/include/node, which carries openssl/) and its symbols resolve against the
# running node binary at load time: no system library is linked. attestd-proc-opener is a
# plain C program on libc alone (native/proc_opener.c): the service's first process, the only
# one that keeps CAP_SYS_PTRACE.
{
  "targets": [
    {
      "target_name": "attestd_native",
      "sources": [
        "native/addon.cc",
        "native/errors.cc",
        "native/secure_heap.cc",
        "native/session_key.cc",
        "native/hash.cc",
        "native/file_digest.cc",
        "native/exe_hasher.cc",
        "native/peer.cc",
        "native/notify.cc",
        "native/cvm.cc",
        "native/proc_opener_client.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": [
        "NAPI_VERSION=9",
        "NODE_ADDON_API_DISABLE_CPP_EXCEPTIONS",
        "OPENSSL_API_COMPAT=30000",
        "OPENSSL_NO_DEPRECATED"
      ],
      "cflags": ["-Wall", "-Wextra", "-Werror", "-fvisibility=hidden"],
      "cflags_cc!": ["-std=gnu++17", "-std=gnu++20"],
      "cflags_cc": ["-std=c++17", "-fno-exceptions", "-fvisibility-inlines-hidden"],
      "ldflags": ["-Wl,-z,relro", "-Wl,-z,now"],
      "configurations": {
        "Release": {
          "cflags!": ["-O3"],
          "cflags": ["-O2", "-U_FORTIFY_SOURCE", "-D_FORTIFY_SOURCE=2", "-fstack-protector-strong"]
        },
        "Debug": {
          "cflags": ["--coverage", "-O0"],
          "ldflags": ["--coverage"]
        }
      }
    },
    {
      "target_name": "attestd-proc-opener",
      "type": "executable",
      "sources": ["native/proc_opener.c"],
      "cflags!": ["-O3"],
      "cflags_c": ["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-U_FORTIFY_SOURCE", "-D_FORTIFY_SOURCE=2", "-fstack-protector-strong", "-fPIE"],
      "ldflags": ["-pie", "-Wl,-z,relro", "-Wl,-z,now"]
    }
  ]
}
