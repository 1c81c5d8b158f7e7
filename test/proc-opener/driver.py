"""Speaks to attestd-proc-opener as the daemon would, and as a hostile daemon could: run as
`attestd-proc-opener /usr/bin/python3 driver.py SEED`. Prints one JSON object with what each
request was answered, so the test can assert on every case."""
import array
import json
import os
import random
import socket
import struct
import sys

sock = socket.socket(fileno=int(os.environ["ATTESTD_PROC_OPENER_FD"]))


def ask(data, fds=()):
    """Sends one message with `fds` attached; the errno answered and the descriptors received."""
    anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
    sock.sendmsg([data], anc)
    msg, anc, flags, _ = sock.recvmsg(64, socket.CMSG_SPACE(4 * 8))
    got = []
    for level, kind, payload in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            got.extend(array.array("i", payload[: len(payload) - len(payload) % 4]))
    code = struct.unpack("=i", msg)[0] if len(msg) == 4 else None
    return code, got


def errno_of(data, fds=()):
    code, got = ask(data, fds)
    for fd in got:
        os.close(fd)
    return code if not got else ("fds", code, len(got))


out = {}
own = os.pidfd_open(os.getpid())
regular = os.open("/etc/hostname", os.O_RDONLY)
out["no_fd"] = errno_of(b"o")
out["regular_fd"] = errno_of(b"o", [regular])
out["two_fds"] = errno_of(b"o", [own, own])
out["wrong_byte"] = errno_of(b"x", [own])
out["long_message"] = errno_of(b"o" * 40, [own])
out["garbage"] = errno_of(bytes(range(1, 32)))

rng = random.Random(int(sys.argv[1]))
fuzz = set()
for _ in range(300):
    data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40)))
    if data == b"o":
        continue
    fds = [rng.choice([own, regular, 0, 1]) for _ in range(rng.randrange(0, 5))]
    fuzz.add(errno_of(data, fds))
out["fuzz"] = sorted(fuzz, key=str)

child = os.fork()
if child == 0:
    os._exit(0)
gone = os.pidfd_open(child)
os.waitpid(child, 0)
out["exited"] = errno_of(b"o", [gone])

code, got = ask(b"o", [own])
out["own"] = {"code": code, "count": len(got)}
if len(got) == 4:
    out["own"]["exe"] = os.readlink(f"/proc/self/fd/{got[0]}")
    with os.fdopen(got[2], "r") as status:
        out["own"]["pid"] = next(l.split()[1] for l in status if l.startswith("Pid:"))
    out["own"]["self"] = str(os.getpid())
print(json.dumps(out))
