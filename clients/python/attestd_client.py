"""Client of attestd's workload API, in one module with the standard library only.

The wire protocol is described in proto/README.md of attestd: a Unix stream socket, each
message one frame of a 4-byte big-endian length and a protobuf message (``Request`` from
the client, ``Response`` from the daemon). The few messages this client needs are encoded and
decoded here by hand; unknown fields are skipped, so newer daemons stay readable.

Use::

    from attestd_client import AttestdClient, lease, LeaseLost

    with AttestdClient() as c:
        print(c.status().state_name)

    with lease(rule="trainer", on_revoked=lambda reason: print("lost:", reason)) as held:
        for step in work():
            held.check()          # raises LeaseLost once the lease is gone
            step()

The daemon identifies the caller by the kernel (SO_PEERCRED): the lease belongs to the process
that opened the connection, so open it from the process that does the work.
"""

import contextlib
import os
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

__all__ = [
    "DEFAULT_SOCKET", "MAX_FRAME", "AttestdError", "AttestdUnavailable", "LeaseLost", "DecodeError",
    "SignedLeaseToken", "Lease", "LeaseEvent", "Status", "AttestdClient", "HeldLease", "lease",
    "encode_request", "decode_response",
]

DEFAULT_SOCKET = "/run/attestd/attestd.sock"
MAX_FRAME = 65536


class AttestdError(Exception):
    """A refusal from the daemon. ``code`` is one of the stable codes of docs/errors.md."""

    def __init__(self, code: str, message: str = ""):
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message


class AttestdUnavailable(Exception):
    """The socket could not be reached, timed out, or closed under a call."""


class LeaseLost(Exception):
    """The lease held by ``lease()`` was revoked, expired, refused renewal, or the connection
    to the daemon was lost. ``code`` is the daemon's reason code when it gave one."""

    def __init__(self, reason: str, code: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.code = code


class DecodeError(ValueError):
    """Bytes that are not a well-formed protobuf message or frame."""


# --- protobuf wire format -------------------------------------------------------------------

_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5


def _varint(n: int) -> bytes:
    if n < 0 or n >= 1 << 64:
        raise ValueError("varint out of range")
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _read_varint(buf: bytes, pos: int) -> Tuple[int, int]:
    value = 0
    for i in range(10):
        if pos >= len(buf):
            raise DecodeError("truncated varint")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << (7 * i)
        if not b & 0x80:
            if value >= 1 << 64:
                raise DecodeError("varint exceeds 64 bits")
            return value, pos
    raise DecodeError("varint longer than 10 bytes")


def _tag(number: int, wire: int) -> bytes:
    return _varint(number << 3 | wire)


def _len_field(number: int, data: bytes) -> bytes:
    return _tag(number, _LEN) + _varint(len(data)) + data


def _fields(buf: bytes) -> Dict[int, List[object]]:
    """Field number -> values in order (ints for varints, bytes for length-delimited).
    Fixed-width fields and unknown numbers are skipped by their wire type; groups are refused."""
    out: Dict[int, List[object]] = {}
    pos = 0
    while pos < len(buf):
        key, pos = _read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise DecodeError("field number 0")
        if wire == _VARINT:
            value, pos = _read_varint(buf, pos)
            out.setdefault(number, []).append(value)
        elif wire == _LEN:
            length, pos = _read_varint(buf, pos)
            if length > len(buf) - pos:
                raise DecodeError("length-delimited field runs past the message")
            out.setdefault(number, []).append(bytes(buf[pos:pos + length]))
            pos += length
        elif wire in (_I64, _I32):
            width = 8 if wire == _I64 else 4
            if width > len(buf) - pos:
                raise DecodeError("fixed-width field runs past the message")
            pos += width
        else:
            raise DecodeError(f"unsupported wire type {wire}")
    return out


def _last(f: Dict[int, List[object]], number: int, kind: type, default):
    values = f.get(number)
    if not values:
        return default
    value = values[-1]
    if not isinstance(value, kind):
        raise DecodeError(f"field {number} has the wrong wire type")
    return value


def _int(f, number: int) -> int:
    return _last(f, number, int, 0)


def _bytes(f, number: int) -> bytes:
    return _last(f, number, bytes, b"")


def _str(f, number: int) -> str:
    try:
        return _bytes(f, number).decode("utf-8")
    except UnicodeDecodeError as e:
        raise DecodeError(f"field {number} is not UTF-8") from e


def _strs(f, number: int) -> List[str]:
    out = []
    for v in f.get(number, []):
        if not isinstance(v, bytes):
            raise DecodeError(f"field {number} has the wrong wire type")
        try:
            out.append(v.decode("utf-8"))
        except UnicodeDecodeError as e:
            raise DecodeError(f"field {number} is not UTF-8") from e
    return out


def _msg(f, number: int) -> Optional[Dict[int, List[object]]]:
    values = f.get(number)
    return None if not values else _fields(_last(f, number, bytes, b""))


# --- messages ---------------------------------------------------------------------------------

@dataclass
class SignedLeaseToken:
    token: bytes = b""       # a serialized LeaseToken
    signature: bytes = b""   # Ed25519, 64 bytes

    @staticmethod
    def decode(f) -> "SignedLeaseToken":
        return SignedLeaseToken(_bytes(f, 1), _bytes(f, 2))


@dataclass
class Lease:
    lease_id: str = ""
    token: SignedLeaseToken = field(default_factory=SignedLeaseToken)
    expires_at_ms: int = 0
    rule: str = ""
    scopes: List[str] = field(default_factory=list)

    @staticmethod
    def decode(f) -> "Lease":
        t = _msg(f, 2)
        return Lease(_str(f, 1), SignedLeaseToken.decode(t) if t is not None else SignedLeaseToken(),
                     _int(f, 3), _str(f, 4), _strs(f, 5))


@dataclass
class LeaseEvent:
    KINDS = {0: "KIND_UNSPECIFIED", 1: "ACTIVE", 2: "RENEWED", 3: "EXPIRING", 4: "REVOKED", 5: "EXPIRED", 6: "RELEASED"}
    ACTIVE, RENEWED, EXPIRING, REVOKED, EXPIRED, RELEASED = 1, 2, 3, 4, 5, 6

    kind: int = 0
    lease_id: str = ""
    lease: Optional[Lease] = None
    reason_code: str = ""
    reason: str = ""

    @property
    def kind_name(self) -> str:
        return self.KINDS.get(self.kind, str(self.kind))

    @property
    def final(self) -> bool:
        """No more events come after this one."""
        return self.kind in (self.REVOKED, self.EXPIRED, self.RELEASED)

    @staticmethod
    def decode(f) -> "LeaseEvent":
        lf = _msg(f, 3)
        return LeaseEvent(_int(f, 1), _str(f, 2), Lease.decode(lf) if lf is not None else None, _str(f, 4), _str(f, 5))


@dataclass
class Status:
    STATES = {0: "STATE_UNSPECIFIED", 1: "STARTING", 2: "TRUSTED", 3: "UNTRUSTED"}

    state: int = 0
    epoch: int = 0
    reasons: List[str] = field(default_factory=list)
    appraised_at_ms: int = 0
    valid_until_ms: int = 0
    session_public_key: bytes = b""
    ak_public_pem: str = ""
    policy_sha256: bytes = b""
    active_leases: int = 0

    @property
    def state_name(self) -> str:
        return self.STATES.get(self.state, str(self.state))

    @staticmethod
    def decode(f) -> "Status":
        return Status(_int(f, 1), _int(f, 2), _strs(f, 3), _int(f, 4), _int(f, 5), _bytes(f, 6), _str(f, 7),
                      _bytes(f, 8), _int(f, 9))


# Request.call field numbers, and what each call carries (field 1 of the call message).
_CALLS = {"acquire_lease": 2, "renew_lease": 3, "release_lease": 4, "watch_lease": 5, "get_status": 6,
          "get_lease_result": 9, "derive_lease": 10}
# Response.result field numbers.
_RESULTS = {2: "error", 3: "acquire_lease", 4: "renew_lease", 5: "release_lease", 6: "lease_event", 7: "get_status",
            10: "get_lease_result", 11: "derive_lease"}


def _encode_intent(intent: dict) -> bytes:
    """An Intent message from the JSON form of ``attestctl --intent`` files (docs/attestctl.md):
    artifacts with ``path`` or ``sha256`` (hex) and an optional ``name``; ``image_digest``,
    ``job_id``, ``labels``. The daemon checks every bound; the command line is never sent."""
    unknown = set(intent) - {"artifacts", "image_digest", "job_id", "labels"}
    if unknown:
        raise ValueError(f"unknown intent keys: {sorted(unknown)}")
    out = b""
    for a in intent.get("artifacts", []):
        if bool(a.get("path")) == bool(a.get("sha256")) or set(a) - {"path", "sha256", "name"}:
            raise ValueError("each artifact needs exactly one of path and sha256, and may have a name")
        body = _len_field(1, a["name"].encode("utf-8")) if a.get("name") else b""
        if a.get("path"):
            body += _len_field(2, os.path.abspath(a["path"]).encode("utf-8"))
        else:
            body += _len_field(3, bytes.fromhex(a["sha256"]))
        out += _len_field(1, body)
    if intent.get("image_digest"):
        out += _len_field(2, intent["image_digest"].encode("utf-8"))
    if intent.get("job_id"):
        out += _len_field(3, intent["job_id"].encode("utf-8"))
    for k, v in intent.get("labels", {}).items():
        out += _len_field(4, _len_field(1, k.encode("utf-8")) + _len_field(2, v.encode("utf-8")))
    return out


def _encode_derive(derive: dict) -> bytes:
    """The DeriveLeaseRequest fields after the parent lease id: the child's pid, then the
    scopes and GPUs asked for (subsets of the parent's; none for all of them)."""
    pid = derive.get("child_pid")
    if not isinstance(pid, int) or not 1 < pid < 1 << 32:
        raise ValueError("derive needs the child's pid")
    out = _tag(2, _VARINT) + _varint(pid)
    for s in derive.get("scopes") or []:
        out += _len_field(3, s.encode("utf-8"))
    for g in derive.get("gpus") or []:
        out += _len_field(4, g.encode("utf-8"))
    return out


def encode_request(request_id: int, call: str, arg: Optional[str] = None, nonce: Optional[bytes] = None,
                   intent: Optional[dict] = None, derive: Optional[dict] = None,
                   authorizations: Optional[List[str]] = None) -> bytes:
    """A serialized Request. ``arg`` is the rule (acquire_lease) or the lease id (renew, release,
    watch, get_lease_result); ``nonce`` the relying party's nonce (get_lease_result, 8 to 64
    bytes); ``intent`` an execution intent (acquire_lease, see _encode_intent); ``derive`` the
    child of derive_lease (``arg`` is then the parent lease id; see _encode_derive); proto3
    leaves empty values out, as here."""
    if call not in _CALLS:
        raise ValueError(f"unknown call {call}")
    if not 0 < request_id < 1 << 64:
        raise ValueError("request id must be non-zero")
    if nonce is not None and (call != "get_lease_result" or not 8 <= len(nonce) <= 64):
        raise ValueError("a nonce is for get_lease_result only, 8 to 64 bytes")
    if intent is not None and call != "acquire_lease":
        raise ValueError("an intent is for acquire_lease only")
    if authorizations and (call != "acquire_lease" or len(authorizations) > 4
                           or any(not isinstance(a, str) or not a or len(a) > 16384 for a in authorizations)):
        raise ValueError("authorizations are for acquire_lease only: at most 4 compact JWTs of at most 16 KiB")
    if (derive is not None) != (call == "derive_lease"):
        raise ValueError("derive_lease takes a child, and only it")
    body = _len_field(1, arg.encode("utf-8")) if arg else b""
    if nonce:
        body += _len_field(2, bytes(nonce))
    if intent is not None:
        body += _len_field(3, _encode_intent(intent))
    for a in authorizations or []:
        body += _len_field(4, a.encode("ascii"))
    if derive is not None:
        body += _encode_derive(derive)
    return _tag(1, _VARINT) + _varint(request_id) + _len_field(_CALLS[call], body)


def decode_response(buf: bytes) -> Tuple[int, str, object]:
    """(request id, result name, value): an AttestdError for "error", a Lease for acquire and
    renew, None for release, a LeaseEvent, a Status, or None for a result this client does not
    know (a newer daemon's)."""
    f = _fields(buf)
    rid = _int(f, 1)
    # The daemon sets exactly one result; a result number this client does not know is a
    # newer daemon's call and is reported as "unknown".
    known = [n for n in f if n in _RESULTS]
    if not known:
        return rid, "unknown", None
    number = known[0]
    name = _RESULTS[number]
    m = _msg(f, number) or {}
    if name == "error":
        return rid, name, AttestdError(_str(m, 1) or "INTERNAL", _str(m, 2))
    if name in ("acquire_lease", "renew_lease", "derive_lease"):
        lf = _msg(m, 1)
        if lf is None:
            raise DecodeError(f"{name} without a lease")
        return rid, name, Lease.decode(lf)
    if name == "lease_event":
        return rid, name, LeaseEvent.decode(m)
    if name == "get_status":
        return rid, name, Status.decode(m)
    if name == "get_lease_result":
        return rid, name, _str(m, 1)
    return rid, name, None


def frame(payload: bytes) -> bytes:
    if len(payload) > MAX_FRAME:
        raise ValueError("frame too large")
    return struct.pack(">I", len(payload)) + payload


# --- the connection ---------------------------------------------------------------------------

class _Pending:
    __slots__ = ("done", "result", "error", "on_push")

    def __init__(self, on_push):
        self.done = threading.Event()
        self.result = None
        self.error: Optional[Exception] = None
        self.on_push = on_push


def _now_ms() -> int:
    return int(time.time() * 1000)


class AttestdClient:
    """One connection to attestd. Calls may come from several threads; a background thread
    reads the answers and the pushed watch events.

    ``socket_path`` defaults to ``$ATTESTD_SOCKET``, else ``/run/attestd/attestd.sock``.
    ``timeout`` bounds connecting and each call, in seconds."""

    def __init__(self, socket_path: Optional[str] = None, timeout: float = 5.0):
        self.socket_path = socket_path or os.environ.get("ATTESTD_SOCKET") or DEFAULT_SOCKET
        self.timeout = timeout
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(self.socket_path)
        except OSError as e:
            sock.close()
            raise AttestdUnavailable(f"cannot connect to {self.socket_path}: {e}") from e
        sock.settimeout(None)
        self._sock = sock
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._next_id = 1
        self._pending: Dict[int, _Pending] = {}
        self._watches: Dict[int, Callable[[Optional[LeaseEvent]], None]] = {}
        self._closed: Optional[str] = None
        self._reader = threading.Thread(target=self._read_loop, name="attestd-client", daemon=True)
        self._reader.start()

    def __enter__(self) -> "AttestdClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def status(self) -> Status:
        return self._call("get_status")

    def acquire(self, rule: Optional[str] = None, intent: Optional[dict] = None,
                authorizations: Optional[List[str]] = None) -> Lease:
        """A new lease for this process, under ``rule`` or the first rule that matches it;
        ``intent``: an execution intent in the JSON form of ``attestctl --intent`` files;
        ``authorizations``: signed authorizations (compact JWTs) the rule requires."""
        return self._call("acquire_lease", rule, intent=intent, authorizations=authorizations)

    def derive(self, parent_id: str, pid: int, scopes: Optional[List[str]] = None, gpus: Optional[List[str]] = None) -> Lease:
        """A narrower lease, derived from ``parent_id`` (held by this very process), for the
        process ``pid``, which must descend from this one: at most the parent's ``scopes`` and
        ``gpus`` (none asked: all of them). The child holds it: it renews, releases and derives
        further itself, and the lease ends whenever the parent does."""
        return self._call("derive_lease", parent_id, derive={"child_pid": pid, "scopes": scopes or [], "gpus": gpus or []})

    def renew(self, lease_id: str) -> Lease:
        return self._call("renew_lease", lease_id)

    def release(self, lease_id: str) -> None:
        self._call("release_lease", lease_id)

    def watch(self, lease_id: str, callback: Callable[[Optional[LeaseEvent]], None]) -> LeaseEvent:
        """Returns the ACTIVE event; later events go to ``callback`` on the reader thread, and
        ``callback(None)`` when the connection is lost (the lease must then be taken as lost)."""
        return self._call("watch_lease", lease_id, callback)

    def result(self, lease_id: str, nonce: Optional[bytes] = None) -> str:
        """An attestation result for a live lease of this uid: the evidence bundle (JSON) with
        an IETF RATS EAR, over a fresh TPM quote of ``nonce`` (the relying party's, 8 to 64
        bytes). Check it anywhere with ``attestctl verify-result``."""
        return self._call("get_lease_result", lease_id, nonce=nonce)

    def close(self) -> None:
        with self._lock:
            if self._closed is None:
                self._closed = "the connection was closed"
            self._watches.clear()
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        self._fail("the connection was closed")

    @property
    def closed(self) -> bool:
        return self._closed is not None

    def _call(self, call: str, arg: Optional[str] = None, on_push=None, nonce: Optional[bytes] = None,
              intent: Optional[dict] = None, derive: Optional[dict] = None, authorizations: Optional[List[str]] = None):
        with self._lock:
            if self._closed is not None:
                raise AttestdUnavailable(self._closed)
            rid = self._next_id
            self._next_id += 1
            pending = _Pending(on_push)
            self._pending[rid] = pending
        try:
            with self._send_lock:
                self._sock.sendall(frame(encode_request(rid, call, arg, nonce, intent, derive, authorizations)))
        except OSError as e:
            self._fail(f"connection to attestd lost: {e}")
        if not pending.done.wait(self.timeout):
            with self._lock:
                self._pending.pop(rid, None)
                self._watches.pop(rid, None)
            raise AttestdUnavailable(f"attestd did not answer within {self.timeout} s")
        if pending.error is not None:
            raise pending.error
        return pending.result

    def _read_loop(self) -> None:
        buf = bytearray()
        try:
            while True:
                chunk = self._sock.recv(MAX_FRAME)
                if not chunk:
                    raise AttestdUnavailable("connection closed by attestd")
                buf += chunk
                while len(buf) >= 4:
                    (length,) = struct.unpack_from(">I", buf)
                    if length > MAX_FRAME:
                        raise AttestdUnavailable(f"attestd sent a frame of {length} bytes")
                    if len(buf) < 4 + length:
                        break
                    payload = bytes(buf[4:4 + length])
                    del buf[:4 + length]
                    self._dispatch(payload)
        except (OSError, AttestdUnavailable, DecodeError) as e:
            self._fail(str(e) if isinstance(e, AttestdUnavailable) else f"connection to attestd lost: {e}")

    def _dispatch(self, payload: bytes) -> None:
        rid, name, value = decode_response(payload)
        push = None
        with self._lock:
            pending = self._pending.pop(rid, None)
            if pending is not None:
                if name == "error":
                    pending.error = value
                else:
                    pending.result = value
                    if pending.on_push is not None:
                        self._watches[rid] = pending.on_push
                pending.done.set()
                return
            if name == "lease_event":
                push = self._watches.get(rid)
                if push is not None and value.final:
                    del self._watches[rid]
        if push is not None:
            _safely(push, value)

    def _fail(self, reason: str) -> None:
        with self._lock:
            if self._closed is None:
                self._closed = reason
            pending = list(self._pending.values())
            self._pending.clear()
            watches = list(self._watches.values())
            self._watches.clear()
        for p in pending:
            p.error = AttestdUnavailable(reason)
            p.done.set()
        for cb in watches:
            _safely(cb, None)


def _safely(fn, arg) -> None:
    # A failing user callback must not stop the reader thread, which serves every call.
    try:
        fn(arg)
    except Exception:  # noqa: BLE001
        pass


# --- a held lease -----------------------------------------------------------------------------

class HeldLease:
    """A lease kept alive by ``lease()``: renewed in the background at half its remaining
    term, watched for revocation. ``check()`` raises LeaseLost once it is gone."""

    def __init__(self, client: AttestdClient, granted: Lease, on_revoked: Optional[Callable[[LeaseLost], None]]):
        self._client = client
        self._lease = granted
        self._on_revoked = on_revoked
        self._lock = threading.Lock()
        self._lost: Optional[LeaseLost] = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew_loop, name="attestd-lease", daemon=True)

    @property
    def lease(self) -> Lease:
        with self._lock:
            return self._lease

    @property
    def lease_id(self) -> str:
        return self.lease.lease_id

    @property
    def lost(self) -> Optional[LeaseLost]:
        """Why the lease is gone, or None while it is held."""
        with self._lock:
            return self._lost

    def check(self) -> None:
        """Raises LeaseLost if the lease was revoked, expired or could not be kept."""
        if self.lost is None and _now_ms() >= self.lease.expires_at_ms:
            self._lose("the lease reached its expiry without a renewal", "LEASE_EXPIRED")
        lost = self.lost
        if lost is not None:
            raise lost

    def _start(self) -> None:
        self._thread.start()

    def _finish(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(self._client.timeout + 1)
        if self.lost is None:
            try:
                self._client.release(self.lease_id)
            except (AttestdError, AttestdUnavailable):
                pass

    def _lose(self, reason: str, code: str = "") -> None:
        with self._lock:
            if self._lost is not None or self._stop.is_set():
                return
            self._lost = LeaseLost(reason, code)
            lost = self._lost
        self._stop.set()
        if self._on_revoked is not None:
            _safely(self._on_revoked, lost)

    def _on_event(self, event: Optional[LeaseEvent]) -> None:
        if event is None:
            self._lose("connection to attestd lost")
        elif event.kind == LeaseEvent.RENEWED and event.lease is not None:
            with self._lock:
                self._lease = event.lease
        elif event.kind == LeaseEvent.REVOKED:
            self._lose(f"lease revoked: {event.reason_code} {event.reason}".strip(), event.reason_code)
        elif event.kind == LeaseEvent.EXPIRED:
            self._lose("lease expired", "LEASE_EXPIRED")
        elif event.kind == LeaseEvent.RELEASED:
            self._lose("lease released by another process", "LEASE_NOT_FOUND")

    def _renew_loop(self) -> None:
        while True:
            # Half the remaining term leaves time for a second try before expiry.
            delay = max(0.1, (self.lease.expires_at_ms - _now_ms()) / 2000.0)
            if self._stop.wait(delay):
                return
            try:
                renewed = self._client.renew(self.lease_id)
            except AttestdError as e:
                self._lose(f"renewal refused: {e.code}", e.code)
                return
            except AttestdUnavailable as e:
                self._lose(f"connection to attestd lost: {e}")
                return
            with self._lock:
                self._lease = renewed


@contextlib.contextmanager
def lease(rule: Optional[str] = None, on_revoked: Optional[Callable[[LeaseLost], None]] = None,
          socket_path: Optional[str] = None, timeout: float = 5.0):
    """Acquires a lease, keeps it renewed and watched while the block runs, releases it after.

    When the lease is lost (revoked, expired, renewal refused, connection lost) ``on_revoked``
    is called once with a LeaseLost, from a background thread, and ``check()`` raises it in the
    block's own flow. Refusal to grant raises AttestdError; an unreachable daemon raises
    AttestdUnavailable."""
    client = AttestdClient(socket_path, timeout)
    try:
        granted = client.acquire(rule)
        held = HeldLease(client, granted, on_revoked)
        try:
            client.watch(granted.lease_id, held._on_event)
        except AttestdError as e:
            raise LeaseLost(f"lease lost before it could be watched: {e.code}", e.code) from e
        held._start()
        try:
            yield held
        finally:
            held._finish()
    finally:
        client.close()
