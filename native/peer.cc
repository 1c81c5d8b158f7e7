// Who is on the other end of a Unix socket, and is that process still there. The kernel
// records the peer's credentials and the peer process itself at connect(); a pidfd for that
// process (SO_PEERPIDFD) pins it, so a later liveness check cannot be fooled by its pid
// being handed to another process, not even one that took the pid before accept().
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "addon.h"
#include "errors.h"

namespace attestd {
namespace {

Napi::Value PeerCredentials(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = -1;
  if (!GetNonNegativeInt(info, 0, &fd)) return env.Undefined();
  struct ucred cred = {};
  socklen_t length = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &length) != 0) {
    ThrowError(env, "NATIVE_PEERCRED_FAILED", "getsockopt(SO_PEERCRED): " + DescribeErrno(errno));
    return env.Undefined();
  }
  // A socket without a connected peer reports pid 0 rather than failing.
  if (length != sizeof cred || cred.pid <= 0) {
    ThrowError(env, "NATIVE_PEERCRED_FAILED", "socket has no connected peer");
    return env.Undefined();
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("pid", Napi::Number::New(env, cred.pid));
  out.Set("uid", Napi::Number::New(env, static_cast<double>(cred.uid)));
  out.Set("gid", Napi::Number::New(env, static_cast<double>(cred.gid)));
  return out;
}

// Linux 6.5 and later; older headers do not name it, the value is fixed ABI.
#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif

// A pidfd for the process that connected, or null when the kernel does not know the option
// (ENOPROTOOPT: older than 6.5), in which case the caller falls back to pidfd_open of the
// SO_PEERCRED pid.
Napi::Value PeerPidfd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = -1;
  if (!GetNonNegativeInt(info, 0, &fd)) return env.Undefined();
  int pidfd = -1;
  socklen_t length = sizeof pidfd;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &length) != 0) {
    int err = errno;
    if (err == ENOPROTOOPT) return env.Null();
    ThrowError(env, "NATIVE_PIDFD_FAILED", "getsockopt(SO_PEERPIDFD): " + DescribeErrno(err));
    return env.Undefined();
  }
  if (length != sizeof pidfd || pidfd < 0) {
    if (pidfd >= 0) close(pidfd);
    ThrowError(env, "NATIVE_PIDFD_FAILED", "getsockopt(SO_PEERPIDFD) returned no descriptor");
    return env.Undefined();
  }
  // The kernel sets close-on-exec on pidfds; make sure, as a hook or child must not inherit it.
  if (fcntl(pidfd, F_SETFD, FD_CLOEXEC) != 0) {
    int err = errno;
    close(pidfd);
    ThrowError(env, "NATIVE_PIDFD_FAILED", "fcntl(FD_CLOEXEC): " + DescribeErrno(err));
    return env.Undefined();
  }
  return Napi::Number::New(env, static_cast<double>(pidfd));
}

// pidfd_open always sets close-on-exec on the new descriptor.
Napi::Value PidfdOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int pid = 0;
  if (!GetNonNegativeInt(info, 0, &pid)) return env.Undefined();
  long fd = syscall(SYS_pidfd_open, static_cast<pid_t>(pid), 0);
  if (fd < 0) {
    ThrowError(env, "NATIVE_PIDFD_FAILED", "pidfd_open(" + std::to_string(pid) + "): " + DescribeErrno(errno));
    return env.Undefined();
  }
  return Napi::Number::New(env, static_cast<double>(fd));
}

// Signal 0 checks existence without delivering anything; it also fails with EBADF/EINVAL
// for a descriptor that is not a pidfd. EPERM means the process exists but belongs to
// someone we may not signal, which still answers the question: it is alive. A process
// that has exited but is not yet reaped (a zombie) still accepts signal 0, so the pidfd
// is also polled: it turns readable as soon as the process has terminated.
Napi::Value PidfdIsAlive(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = -1;
  if (!GetNonNegativeInt(info, 0, &fd)) return env.Undefined();
  if (syscall(SYS_pidfd_send_signal, fd, 0, nullptr, 0) != 0) {
    int err = errno;
    if (err == ESRCH) return Napi::Boolean::New(env, false);
    if (err != EPERM) {
      ThrowError(env, "NATIVE_PIDFD_FAILED", "pidfd_send_signal: " + DescribeErrno(err));
      return env.Undefined();
    }
  }
  struct pollfd p = {fd, POLLIN, 0};
  int ready;
  do {
    ready = poll(&p, 1, 0);
  } while (ready < 0 && errno == EINTR);
  if (ready < 0) {
    ThrowError(env, "NATIVE_PIDFD_FAILED", "poll(pidfd): " + DescribeErrno(errno));
    return env.Undefined();
  }
  return Napi::Boolean::New(env, ready == 0);
}

// Linux releases the descriptor even when close() reports EINTR, so it is never retried:
// a retry could close a descriptor another thread has just been handed.
Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = -1;
  if (!GetNonNegativeInt(info, 0, &fd)) return env.Undefined();
  if (close(fd) != 0 && errno != EINTR) {
    ThrowError(env, "NATIVE_IO_FAILED", "close(" + std::to_string(fd) + "): " + DescribeErrno(errno));
  }
  return env.Undefined();
}

}  // namespace

void InitPeer(Napi::Env env, Napi::Object exports) {
  exports.Set("peerCredentials", Napi::Function::New(env, PeerCredentials, "peerCredentials"));
  exports.Set("peerPidfd", Napi::Function::New(env, PeerPidfd, "peerPidfd"));
  exports.Set("pidfdOpen", Napi::Function::New(env, PidfdOpen, "pidfdOpen"));
  exports.Set("pidfdIsAlive", Napi::Function::New(env, PidfdIsAlive, "pidfdIsAlive"));
  exports.Set("closeFd", Napi::Function::New(env, CloseFd, "closeFd"));
}

}  // namespace attestd
