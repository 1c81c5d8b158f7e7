// A caller for the identification tests. `peer_helper connect SOCKET [PROGRAM]` connects to
// a Unix socket on a descriptor that survives exec, so the connection stays open under
// whatever it runs next; `peer_helper idle` does nothing. Both then obey one-letter commands
// on standard input, one at a time, answering each on standard output:
//   x  exec PROGRAM idle (the same process, now running another executable)
//   u  seteuid(65534)        g  setegid(65534)
//   q  exit                  end of input: exit
// Each build is compiled with its own VARIANT, so each has its own digest.
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#ifndef VARIANT
#define VARIANT "a"
#endif

static const char kBanner[] = "peer_helper " VARIANT "\n";

static void say(const char* text) {
  size_t length = strlen(text);
  if (write(STDOUT_FILENO, text, length) != (ssize_t)length) _exit(3);
}

static int connect_to(const char* path) {
  struct sockaddr_un addr;
  memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  if (strlen(path) >= sizeof addr.sun_path) return -1;
  strcpy(addr.sun_path, path);
  // No SOCK_CLOEXEC: the point is that the connection outlives an exec.
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  if (fd < 0 || connect(fd, (struct sockaddr*)&addr, sizeof addr) != 0) return -1;
  return fd;
}

int main(int argc, char** argv) {
  const char* program = NULL;
  if (argc >= 3 && strcmp(argv[1], "connect") == 0) {
    if (connect_to(argv[2]) < 0) {
      perror("connect");
      return 1;
    }
    if (argc >= 4) program = argv[3];
  } else if (argc != 2 || strcmp(argv[1], "idle") != 0) {
    fprintf(stderr, "usage: peer_helper connect SOCKET [PROGRAM] | peer_helper idle\n");
    return 2;
  }
  say(kBanner);
  char command;
  while (read(STDIN_FILENO, &command, 1) == 1) {
    switch (command) {
      case 'x':
        if (program == NULL) return 2;
        execl(program, program, "idle", (char*)NULL);
        perror("exec");
        return 1;
      case 'u':
        if (seteuid(65534) != 0) return 1;
        say("ok\n");
        break;
      case 'g':
        if (setegid(65534) != 0) return 1;
        say("ok\n");
        break;
      case 'q':
        return 0;
      default:
        break;
    }
  }
  return 0;
}
