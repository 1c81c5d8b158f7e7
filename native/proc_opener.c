// attestd-proc-opener: keeps CAP_SYS_PTRACE out of the Node process.
//
// Usage: attestd-proc-opener PROGRAM [ARG...]
//
// It is the first program of the service. It makes a SOCK_SEQPACKET socket pair and forks:
//  - the child keeps CAP_SYS_PTRACE (and nothing else), becomes non-dumpable and serves one
//    request on its end of the pair: "here is a pidfd; open that process's /proc entries".
//    It exits when the pair closes, that is when the daemon is gone.
//  - the parent removes CAP_SYS_PTRACE from what execve hands on (so from every thread Node
//    will later start), sets no_new_privs, names its end of the pair in
//    ATTESTD_PROC_OPENER_FD and execs PROGRAM, the daemon, as the same pid.
// Dropping the capability here rather than in Node matters: capabilities belong to each
// thread, and by the time JavaScript runs Node has started threads that would keep it.
//
// A request is one byte 'o' with exactly one pidfd attached (SCM_RIGHTS). The answer is a
// 4-byte errno (0 for success) and, on success, four descriptors: /proc/PID/exe as O_PATH
// (a reference to the executable that grants no read access of its own: the daemon reopens it
// with its own permissions, and no filesystem's open() runs here, so a stalled FUSE server
// cannot wedge this loop), then /proc/PID/stat, status and cgroup opened for reading. They
// are opened only while the pidfd's process is alive before and after, so they describe it
// and not a later holder of its pid. Every byte of a request is treated as hostile: anything
// else is answered with EINVAL and the loop goes on.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#define ENV_NAME "ATTESTD_PROC_OPENER_FD"
#define SERVE_FD 3
// Descriptors a hostile request might carry; all are closed. More are cut off by MSG_CTRUNC.
#define MAX_IN_FDS 8
#define OUT_FDS 4

static const char* const kEntries[OUT_FDS] = {"exe", "stat", "status", "cgroup"};

static void die(const char* what) {
  fprintf(stderr, "attestd-proc-opener: %s: %s\n", what, strerror(errno));
  exit(111);
}

static int get_caps(struct __user_cap_data_struct data[2]) {
  struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  return (int)syscall(SYS_capget, &header, data);
}

static int set_caps(struct __user_cap_data_struct data[2]) {
  struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  return (int)syscall(SYS_capset, &header, data);
}

// CAP_SYS_PTRACE is bit 19, in the first of the two 32-bit words.
#define PTRACE_BIT (1u << CAP_SYS_PTRACE)

// The daemon's side. Under the service (a non-root User=), execve gives the new program
// exactly the ambient set, so lowering CAP_SYS_PTRACE there is what removes it from Node; as
// root, execve fills the permitted set from the bounding set, so it leaves that too (root
// holds CAP_SETPCAP; the service user does not, and needs not). capset() clears the rest
// where the service's seccomp filter (~@privileged) allows it. Node checks after exec that
// the capability is gone from every set that could use it, and refuses to start otherwise.
static void drop_ptrace(void) {
  struct __user_cap_data_struct data[2];
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_LOWER, CAP_SYS_PTRACE, 0, 0) != 0 && errno != EINVAL) die("lower ambient CAP_SYS_PTRACE");
  if (getuid() == 0 || geteuid() == 0) {
    if (prctl(PR_CAPBSET_DROP, CAP_SYS_PTRACE, 0, 0, 0) != 0) die("drop CAP_SYS_PTRACE from the bounding set");
  }
  if (get_caps(data) != 0) die("capget");
  data[0].effective &= ~PTRACE_BIT;
  data[0].permitted &= ~PTRACE_BIT;
  data[0].inheritable &= ~PTRACE_BIT;
  (void)set_caps(data);
  // With no_new_privs no file capability can bring it back through a later execve.
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) die("no_new_privs");
}

// The opener's side: CAP_SYS_PTRACE only, if it was given at all (without it the opener
// still serves processes of its own uid, as the daemon itself would). Where seccomp refuses
// capset() the service's bounding set already holds nothing else, which is checked.
static void keep_only_ptrace(void) {
  struct __user_cap_data_struct data[2];
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0) die("clear ambient capabilities");
  if (get_caps(data) != 0) die("capget");
  uint32_t keep = data[0].permitted & PTRACE_BIT;
  memset(data, 0, sizeof(struct __user_cap_data_struct) * 2);
  data[0].permitted = keep;
  data[0].effective = keep;
  (void)set_caps(data);
  if (get_caps(data) != 0) die("capget");
  if ((data[0].permitted & ~PTRACE_BIT) != 0 || data[1].permitted != 0) {
    errno = EPERM;
    die("cannot give up capabilities other than CAP_SYS_PTRACE");
  }
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) die("no_new_privs");
  // Not dumpable: no process of the service's uid may ptrace it or read its memory.
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) die("dumpable");
}

// The pid a pidfd refers to, from the "Pid:" line of its fdinfo; -1 for a process that has
// exited or lives outside this pid namespace, -2 for a descriptor that is not a pidfd.
static pid_t pidfd_pid(int fd) {
  char path[64];
  char text[4096];
  snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
  int info = open(path, O_RDONLY | O_CLOEXEC);
  if (info < 0) return -2;
  ssize_t n = read(info, text, sizeof text - 1);
  close(info);
  if (n <= 0) return -2;
  text[n] = '\0';
  const char* line = strstr(text, "\nPid:\t");
  if (line == NULL) return -2;
  char* end = NULL;
  errno = 0;
  long pid = strtol(line + 6, &end, 10);
  if (errno != 0 || end == line + 6 || *end != '\n') return -2;
  if (pid <= 0 || pid > 0x3fffffff) return -1;
  return (pid_t)pid;
}

// Alive: the pidfd is not readable yet (it turns readable when the process terminates).
static int pidfd_alive(int fd) {
  struct pollfd p = {fd, POLLIN, 0};
  int ready;
  do {
    ready = poll(&p, 1, 0);
  } while (ready < 0 && errno == EINTR);
  return ready == 0;
}

static void close_all(int* fds, int count) {
  for (int i = 0; i < count; i++) {
    if (fds[i] >= 0) close(fds[i]);
    fds[i] = -1;
  }
}

// Opens the four entries of the process behind `pidfd` into `out`; 0 or an errno.
static int open_entries(int pidfd, int out[OUT_FDS]) {
  pid_t pid = pidfd_pid(pidfd);
  if (pid == -2) return EINVAL;
  if (pid <= 0) return ESRCH;
  if (!pidfd_alive(pidfd)) return ESRCH;
  char path[64];
  snprintf(path, sizeof path, "/proc/%d", (int)pid);
  int dir = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return errno;
  int err = 0;
  for (int i = 0; i < OUT_FDS && err == 0; i++) {
    out[i] = openat(dir, kEntries[i], (i == 0 ? O_PATH : O_RDONLY) | O_CLOEXEC);
    if (out[i] < 0) err = errno;
  }
  close(dir);
  // Alive after the opens, with the same pid: it held that pid throughout.
  if (err == 0 && (!pidfd_alive(pidfd) || pidfd_pid(pidfd) != pid)) err = ESRCH;
  if (err != 0) close_all(out, OUT_FDS);
  return err;
}

// Receives one request; its pidfd in *pidfd, or -1 if the message was malformed.
// Returns 0 on EOF (the daemon is gone), 1 when there is a request to answer.
static int receive(int sock, int* pidfd) {
  unsigned char byte[16];
  union {
    char buf[CMSG_SPACE(sizeof(int) * MAX_IN_FDS)];
    struct cmsghdr align;
  } control;
  struct iovec iov = {byte, sizeof byte};
  struct msghdr msg = {0};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.buf;
  msg.msg_controllen = sizeof control.buf;
  ssize_t n;
  do {
    n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) die("recvmsg");
  if (n == 0 && msg.msg_controllen == 0) return 0;
  int fds[MAX_IN_FDS];
  int count = 0;
  for (struct cmsghdr* c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < k && count < MAX_IN_FDS; i++) memcpy(&fds[count++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
  }
  int good = n == 1 && byte[0] == 'o' && count == 1 && !(msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC));
  *pidfd = good ? fds[0] : -1;
  if (!good) close_all(fds, count);
  return 1;
}

static void answer(int sock, int err, const int fds[OUT_FDS]) {
  int32_t code = err;
  union {
    char buf[CMSG_SPACE(sizeof(int) * OUT_FDS)];
    struct cmsghdr align;
  } control;
  struct iovec iov = {&code, sizeof code};
  struct msghdr msg = {0};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (err == 0) {
    memset(control.buf, 0, sizeof control.buf);
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof control.buf;
    struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * OUT_FDS);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * OUT_FDS);
  }
  ssize_t n;
  do {
    n = sendmsg(sock, &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) exit(errno == EPIPE || errno == ECONNRESET ? 0 : 111);
}

static void serve(int sock) {
  for (;;) {
    int pidfd = -1;
    if (receive(sock, &pidfd) == 0) exit(0);
    int fds[OUT_FDS] = {-1, -1, -1, -1};
    int err = pidfd < 0 ? EINVAL : open_entries(pidfd, fds);
    if (pidfd >= 0) close(pidfd);
    answer(sock, err, fds);
    close_all(fds, OUT_FDS);
  }
}

static void run_opener(int sock, pid_t daemon) {
  // Gone with the daemon even if something kept its end of the pair open.
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) die("pdeathsig");
  if (getppid() != daemon) exit(0);
  if (sock != SERVE_FD) {
    if (dup2(sock, SERVE_FD) < 0) die("dup2");
    close(sock);
  }
  // Nothing inherited beyond stdio and the pair: the listening socket, say, stays with the daemon.
  if (syscall(SYS_close_range, SERVE_FD + 1, ~0u, 0) != 0) die("close_range");
  keep_only_ptrace();
  serve(SERVE_FD);
}

int main(int argc, char** argv) {
  if (argc < 2 || argv[1][0] != '/') {
    fprintf(stderr, "usage: attestd-proc-opener /ABSOLUTE/PROGRAM [ARG...]\n");
    return 2;
  }
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) die("socketpair");
  pid_t self = getpid();
  pid_t child = fork();
  if (child < 0) die("fork");
  if (child == 0) {
    close(pair[0]);
    run_opener(pair[1], self);
  }
  close(pair[1]);
  drop_ptrace();
  // The daemon's end survives exec; the daemon marks it close-on-exec again at once.
  if (fcntl(pair[0], F_SETFD, 0) != 0) die("fcntl");
  char value[16];
  snprintf(value, sizeof value, "%d", pair[0]);
  if (setenv(ENV_NAME, value, 1) != 0) die("setenv");
  execv(argv[1], argv + 1);
  die(argv[1]);
  return 111;
}
