// sd_notify without libsystemd: one datagram to the socket systemd names in NOTIFY_SOCKET.
// Node has no Unix datagram sockets, so this small piece lives in the core. The caller (TS)
// reads NOTIFY_SOCKET and validates the message; this only sends.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "addon.h"
#include "errors.h"

namespace attestd {
namespace {

// notify(socketPath: string, message: string): void. A path starting with '@' is in the
// abstract namespace (the '@' becomes a NUL byte), as systemd documents for NOTIFY_SOCKET.
Napi::Value Notify(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsString()) {
    ThrowError(env, "INVALID_ARGUMENT", "notify(socketPath, message) takes two strings");
    return env.Undefined();
  }
  std::string path = info[0].As<Napi::String>().Utf8Value();
  std::string message = info[1].As<Napi::String>().Utf8Value();
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path) || (path[0] != '/' && path[0] != '@')) {
    ThrowError(env, "INVALID_ARGUMENT", "NOTIFY_SOCKET must be an absolute path or an abstract name");
    return env.Undefined();
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  if (path[0] == '@') addr.sun_path[0] = '\0';
  socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size());

  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    ThrowError(env, "NATIVE_IO_FAILED", "notify socket: " + DescribeErrno(errno));
    return env.Undefined();
  }
  ssize_t sent = sendto(fd, message.data(), message.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&addr), len);
  int err = errno;
  close(fd);
  if (sent < 0 || static_cast<size_t>(sent) != message.size()) {
    ThrowError(env, "NATIVE_IO_FAILED", "notify send: " + DescribeErrno(sent < 0 ? err : EMSGSIZE));
  }
  return env.Undefined();
}

}  // namespace

void InitNotify(Napi::Env env, Napi::Object exports) {
  exports.Set("notify", Napi::Function::New(env, Notify, "notify"));
}

}  // namespace attestd
