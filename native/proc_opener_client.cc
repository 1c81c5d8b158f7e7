// The daemon's side of attestd-proc-opener (native/proc_opener.c) and the daemon's own
// non-dumpable flag. The opener holds CAP_SYS_PTRACE so that the daemon does not: the daemon
// hands it a pidfd and gets back descriptors of that process's /proc entries.
#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "addon.h"
#include "errors.h"

namespace attestd {
namespace {

constexpr int kOutFds = 4;
// The opener answers from memory (procfs lookups); a reply this late means it is wedged.
constexpr int kReplyTimeoutMs = 1000;

// Takes over the descriptor the opener's launcher left open across exec: it must be the
// SOCK_SEQPACKET end of a Unix socket pair, and is marked close-on-exec at once so that no
// program the daemon runs (nvidia-smi, say) inherits a way to ask for /proc descriptors.
Napi::Value AdoptProcOpener(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = -1;
  if (!GetNonNegativeInt(info, 0, &fd)) return env.Undefined();
  int type = 0;
  int domain = 0;
  socklen_t length = sizeof type;
  bool ok = getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &length) == 0 && type == SOCK_SEQPACKET;
  length = sizeof domain;
  ok = ok && getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &length) == 0 && domain == AF_UNIX;
  if (!ok) {
    ThrowError(env, "PROC_OPENER_FAILED", "fd " + std::to_string(fd) + " is not a Unix SOCK_SEQPACKET socket");
    return env.Undefined();
  }
  if (fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
    ThrowError(env, "NATIVE_IO_FAILED", "fcntl(FD_CLOEXEC): " + DescribeErrno(errno));
    return env.Undefined();
  }
  return env.Undefined();
}

bool SendRequest(int sock, int pidfd, std::string* why) {
  char byte = 'o';
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } control;
  std::memset(control.buf, 0, sizeof control.buf);
  struct iovec iov = {&byte, 1};
  struct msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.buf;
  msg.msg_controllen = sizeof control.buf;
  struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &pidfd, sizeof(int));
  ssize_t n;
  do {
    n = sendmsg(sock, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n != 1) *why = "sendmsg: " + DescribeErrno(n < 0 ? errno : EIO);
  return n == 1;
}

bool WaitReadable(int sock, std::string* why) {
  struct pollfd p = {sock, POLLIN, 0};
  int ready;
  do {
    ready = poll(&p, 1, kReplyTimeoutMs);
  } while (ready < 0 && errno == EINTR);
  if (ready == 0) *why = "no answer within " + std::to_string(kReplyTimeoutMs) + " ms";
  if (ready < 0) *why = "poll: " + DescribeErrno(errno);
  return ready > 0;
}

// One reply: the errno in *code and, when it is 0, exactly kOutFds descriptors in fds.
// Any other shape closes whatever arrived and fails: the channel is then not to be trusted.
bool ReceiveReply(int sock, int32_t* code, int fds[kOutFds], std::string* why) {
  union {
    char buf[CMSG_SPACE(sizeof(int) * kOutFds)];
    struct cmsghdr align;
  } control;
  struct iovec iov = {code, sizeof *code};
  struct msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.buf;
  msg.msg_controllen = sizeof control.buf;
  ssize_t n;
  do {
    n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  int count = 0;
  for (struct cmsghdr* c = CMSG_FIRSTHDR(&msg); n >= 0 && c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < k; i++) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      if (count < kOutFds) fds[count] = fd;
      else close(fd);
      count++;
    }
  }
  bool shaped = n == static_cast<ssize_t>(sizeof *code) && !(msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) &&
                (*code == 0 ? count == kOutFds : (*code > 0 && count == 0));
  if (shaped) return true;
  for (int i = 0; i < count && i < kOutFds; i++) close(fds[i]);
  *why = n < 0 ? "recvmsg: " + DescribeErrno(errno) : n == 0 ? std::string("the opener has exited") : std::string("malformed answer");
  return false;
}

// procOpen(sock, pidfd): { fds: [exe (O_PATH), stat, status, cgroup] } or { refused: "ESRCH (...)" }
// when the opener declined; throws NATIVE_IO_FAILED when the channel itself failed.
Napi::Value ProcOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int sock = -1;
  int pidfd = -1;
  if (!GetNonNegativeInt(info, 0, &sock) || !GetNonNegativeInt(info, 1, &pidfd)) return env.Undefined();
  std::string why;
  int32_t code = 0;
  int fds[kOutFds] = {-1, -1, -1, -1};
  if (!SendRequest(sock, pidfd, &why) || !WaitReadable(sock, &why) || !ReceiveReply(sock, &code, fds, &why)) {
    ThrowError(env, "PROC_OPENER_FAILED", "/proc opener: " + why);
    return env.Undefined();
  }
  Napi::Object out = Napi::Object::New(env);
  if (code != 0) {
    out.Set("refused", Napi::String::New(env, DescribeErrno(code)));
    return out;
  }
  Napi::Array list = Napi::Array::New(env, kOutFds);
  for (int i = 0; i < kOutFds; i++) list.Set(static_cast<uint32_t>(i), Napi::Number::New(env, fds[i]));
  out.Set("fds", list);
  return out;
}

// Not dumpable: no core file, and no process of the same uid may ptrace this one or open
// its /proc/PID/mem; its /proc entries belong to root.
Napi::Value SetNotDumpable(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
    ThrowError(env, "NATIVE_IO_FAILED", "prctl(PR_SET_DUMPABLE, 0): " + DescribeErrno(errno));
  }
  return env.Undefined();
}

}  // namespace

void InitProcOpener(Napi::Env env, Napi::Object exports) {
  exports.Set("adoptProcOpener", Napi::Function::New(env, AdoptProcOpener));
  exports.Set("procOpen", Napi::Function::New(env, ProcOpen));
  exports.Set("setNotDumpable", Napi::Function::New(env, SetNotDumpable));
}

}  // namespace attestd
