"""Tests of attestd_client.

- Wire format: against golden bytes made by attestd's own protobuf code (the file named by
  $ATTESTD_GOLDEN, written by test/integration/python-client.test.ts), plus unknown fields,
  truncation and random bytes. Skipped without $ATTESTD_GOLDEN, except the self-contained ones.
- Against a fake daemon on a socket of this process: a lost connection revokes a held lease.
- Against a live daemon ($ATTESTD_SOCKET with $ATTESTD_TEST_TCTI, the software TPM's TCTI, to
  drive a PCR drift): acquire, renew, watch, release, and revocation seen by lease().

Run: python3 -m unittest -v test_attestd_client
"""

import json
import os
import random
import socket
import struct
import subprocess
import tempfile
import threading
import time
import unittest

import attestd_client as ac
from attestd_client import (AttestdClient, AttestdError, AttestdUnavailable, DecodeError, LeaseEvent, LeaseLost,
                            decode_response, encode_request, lease)

GOLDEN = os.environ.get("ATTESTD_GOLDEN")
LIVE_SOCKET = os.environ.get("ATTESTD_SOCKET")
TCTI = os.environ.get("ATTESTD_TEST_TCTI")


def _lease_dict(lease_obj):
    return {
        "lease_id": lease_obj.lease_id, "expires_at_ms": lease_obj.expires_at_ms, "rule": lease_obj.rule,
        "scopes": lease_obj.scopes, "token": lease_obj.token.token.hex(), "signature": lease_obj.token.signature.hex(),
    }


@unittest.skipUnless(GOLDEN, "ATTESTD_GOLDEN not set")
class GoldenTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(GOLDEN, encoding="utf-8") as f:
            cls.golden = json.load(f)

    def test_requests_encode_like_attestd(self):
        self.assertGreaterEqual(len(self.golden["requests"]), 5)
        for r in self.golden["requests"]:
            with self.subTest(call=r["call"], arg=r["arg"]):
                nonce = bytes.fromhex(r["nonce"]) if r.get("nonce") else None
                self.assertEqual(encode_request(int(r["id"]), r["call"], r["arg"], nonce, r.get("intent"), r.get("derive"),
                                                r.get("authorizations")).hex(), r["hex"])

    def test_responses_decode_like_attestd(self):
        seen = set()
        for r in self.golden["responses"]:
            with self.subTest(result=r["result"]):
                rid, name, value = decode_response(bytes.fromhex(r["hex"]))
                seen.add(name)
                self.assertEqual(rid, int(r["id"]))
                self.assertEqual(name, r["result"])
                self.check_value(name, value, r.get("expect"))
        self.assertTrue({"error", "acquire_lease", "renew_lease", "release_lease", "lease_event", "get_status",
                         "derive_lease", "unknown"} <= seen)

    def check_value(self, name, value, expect):
        if name == "error":
            self.assertIsInstance(value, AttestdError)
            self.assertEqual((value.code, value.message), (expect["code"], expect["message"]))
        elif name in ("acquire_lease", "renew_lease", "derive_lease"):
            self.assertEqual(_lease_dict(value), expect)
        elif name == "lease_event":
            self.assertEqual((value.kind_name, value.lease_id, value.reason_code, value.reason),
                             (expect["kind"], expect["lease_id"], expect["reason_code"], expect["reason"]))
            self.assertEqual(_lease_dict(value.lease) if value.lease else None, expect["lease"])
        elif name == "get_lease_result":
            self.assertEqual(value, expect["bundle"])
        elif name == "get_status":
            got = {"state": value.state_name, "epoch": str(value.epoch), "reasons": value.reasons,
                   "appraised_at_ms": value.appraised_at_ms, "valid_until_ms": value.valid_until_ms,
                   "session_public_key": value.session_public_key.hex(), "ak_public_pem": value.ak_public_pem,
                   "policy_sha256": value.policy_sha256.hex(), "active_leases": value.active_leases}
            self.assertEqual(got, expect)
        else:
            self.assertIsNone(value)

    def test_every_truncation_is_refused_cleanly(self):
        for r in self.golden["responses"]:
            full = bytes.fromhex(r["hex"])
            for cut in range(len(full)):
                try:
                    decode_response(full[:cut])
                except DecodeError:
                    pass  # a prefix may also be a valid shorter message; what matters is no other error


class WireTest(unittest.TestCase):
    def test_get_status_request_matches_the_documented_example(self):
        # proto/README.md: GetStatus with id 1 is 08 01 32 00.
        self.assertEqual(ac.frame(encode_request(1, "get_status")).hex(), "0000000408013200")

    def test_varint_round_trip_at_the_edges(self):
        for n in (0, 1, 127, 128, 300, 2**32 - 1, 2**63, 2**64 - 1):
            value, pos = ac._read_varint(ac._varint(n), 0)
            self.assertEqual((value, pos), (n, len(ac._varint(n))))
        with self.assertRaises(DecodeError):
            ac._read_varint(b"\xff" * 10 + b"\x01", 0)
        with self.assertRaises(DecodeError):
            ac._read_varint(b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f", 0)  # above 2^64 - 1

    def test_unknown_fields_of_every_wire_type_are_skipped(self):
        unknown = (ac._tag(20, 0) + ac._varint(99) + ac._tag(21, 1) + b"\x00" * 8 + ac._tag(22, 5) + b"\x00" * 4
                   + ac._len_field(23, b"later"))
        token = ac._len_field(1, b"tok") + unknown + ac._len_field(2, b"\x01" * 64)
        lease_msg = (ac._len_field(1, b"a" * 32) + unknown + ac._len_field(2, token) + ac._tag(3, 0) + ac._varint(1234)
                     + ac._len_field(4, b"r") + ac._len_field(5, b"s1") + ac._len_field(5, b"s2"))
        resp = ac._tag(1, 0) + ac._varint(9) + unknown + ac._len_field(3, ac._len_field(1, lease_msg) + unknown)
        rid, name, value = decode_response(resp)
        self.assertEqual((rid, name), (9, "acquire_lease"))
        self.assertEqual(value.lease_id, "a" * 32)
        self.assertEqual((value.token.token, value.token.signature), (b"tok", b"\x01" * 64))
        self.assertEqual((value.expires_at_ms, value.rule, value.scopes), (1234, "r", ["s1", "s2"]))

    def test_malformed_messages_raise_decode_error(self):
        for bad in (b"\x0b", b"\x08", b"\x1a\x05ab", b"\x00\x01", b"\x09\x00", b"\x1a\x02\xff\xfe",
                    ac._tag(1, 0) + b"\x01" + ac._len_field(2, ac._len_field(1, b"\xff"))):
            with self.subTest(bad=bad.hex()):
                with self.assertRaises(DecodeError):
                    decode_response(bad)

    def test_random_bytes_never_raise_anything_but_decode_error(self):
        rng = random.Random(1)
        for _ in range(3000):
            data = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 40)))
            try:
                decode_response(data)
            except DecodeError:
                pass

    def test_encoder_refuses_what_the_protocol_does_not_allow(self):
        with self.assertRaises(ValueError):
            encode_request(0, "get_status")
        with self.assertRaises(ValueError):
            encode_request(1, "no_such_call")
        with self.assertRaises(ValueError):
            encode_request(1, "derive_lease", "ab" * 16)
        with self.assertRaises(ValueError):
            encode_request(1, "derive_lease", "ab" * 16, derive={"child_pid": 1})
        with self.assertRaises(ValueError):
            encode_request(1, "renew_lease", "ab" * 16, authorizations=["a.b.c"])
        with self.assertRaises(ValueError):
            encode_request(1, "acquire_lease", None, authorizations=["a.b.c"] * 5)
        with self.assertRaises(ValueError):
            encode_request(1, "renew_lease", "ab" * 16, derive={"child_pid": 42})
        with self.assertRaises(ValueError):
            ac.frame(b"\x00" * (ac.MAX_FRAME + 1))


class FakeDaemon:
    """Answers acquire and watch with canned responses, then closes the connection."""

    def __init__(self, path):
        self.path = path
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(path)
        self.server.listen(1)
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        conn, _ = self.server.accept()
        lease_msg = (ac._len_field(1, b"f" * 32) + ac._len_field(2, ac._len_field(1, b"t"))
                     + ac._tag(3, 0) + ac._varint(int(time.time() * 1000) + 60_000) + ac._len_field(4, b"fake"))
        buf = b""
        answered = 0
        while answered < 2:
            buf += conn.recv(4096)
            while len(buf) >= 4 and len(buf) >= 4 + struct.unpack(">I", buf[:4])[0]:
                n = struct.unpack(">I", buf[:4])[0]
                req = ac._fields(buf[4:4 + n])
                buf = buf[4 + n:]
                rid = req[1][0]
                if 2 in req:
                    body = ac._len_field(3, ac._len_field(1, lease_msg))
                else:
                    event = ac._tag(1, 0) + ac._varint(1) + ac._len_field(2, b"f" * 32)
                    body = ac._len_field(6, event)
                conn.sendall(ac.frame(ac._tag(1, 0) + ac._varint(rid) + body))
                answered += 1
        time.sleep(0.2)
        conn.close()
        self.server.close()


class ConnectionLossTest(unittest.TestCase):
    def test_a_lost_connection_is_a_lost_lease(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "fake.sock")
            FakeDaemon(path)
            lost = threading.Event()
            with lease(socket_path=path, on_revoked=lambda e: lost.set()) as held:
                self.assertEqual(held.lease.rule, "fake")
                self.assertTrue(lost.wait(5), "on_revoked was not called")
                with self.assertRaises(LeaseLost) as ctx:
                    held.check()
                self.assertIn("connection", ctx.exception.reason)

    def test_an_absent_socket_raises_unavailable(self):
        with self.assertRaises(AttestdUnavailable):
            AttestdClient("/nonexistent/attestd.sock", timeout=1)


def _tpm2(*args):
    env = dict(os.environ, TPM2TOOLS_TCTI=TCTI)
    env.pop("TSS2_LOG", None)
    subprocess.run(["tpm2_" + args[0], *args[1:]], env=env, check=True, capture_output=True, timeout=20)


@unittest.skipUnless(LIVE_SOCKET and TCTI, "ATTESTD_SOCKET and ATTESTD_TEST_TCTI not set")
class LiveDaemonTest(unittest.TestCase):
    def setUp(self):
        self.client = AttestdClient(timeout=5)
        self.wait_state("TRUSTED")

    def tearDown(self):
        self.client.close()

    def wait_state(self, name, timeout=15):
        end = time.time() + timeout
        while time.time() < end:
            st = self.client.status()
            if st.state_name == name:
                return st
            time.sleep(0.1)
        self.fail(f"daemon did not become {name}")

    def test_status(self):
        st = self.client.status()
        self.assertEqual(st.state_name, "TRUSTED")
        self.assertGreaterEqual(st.epoch, 1)
        self.assertEqual((len(st.session_public_key), len(st.policy_sha256)), (32, 32))
        self.assertIn("BEGIN PUBLIC KEY", st.ak_public_pem)
        self.assertGreater(st.valid_until_ms, st.appraised_at_ms)

    def test_acquire_renew_release(self):
        got = self.client.acquire()
        self.assertRegex(got.lease_id, r"^[0-9a-f]{32}$")
        self.assertEqual((got.rule, got.scopes, len(got.token.signature)), ("tests", ["gpu:all"], 64))
        renewed = self.client.renew(got.lease_id)
        self.assertEqual(renewed.lease_id, got.lease_id)
        self.assertNotEqual(renewed.token.token, got.token.token)
        self.client.release(got.lease_id)
        with self.assertRaises(AttestdError) as ctx:
            self.client.renew(got.lease_id)
        self.assertEqual(ctx.exception.code, "LEASE_NOT_FOUND")

    def test_derive_for_a_child_process(self):
        got = self.client.acquire()
        child = subprocess.Popen(["sleep", "30"])
        try:
            with self.assertRaises(AttestdError) as ctx:
                self.client.derive(got.lease_id, child.pid, scopes=["not-the-parents"])
            self.assertEqual(ctx.exception.code, "LINEAGE_NOT_SUBSET")
            with self.assertRaises(AttestdError) as ctx:
                self.client.derive(got.lease_id, os.getppid())
            self.assertEqual(ctx.exception.code, "LINEAGE_NOT_DESCENDANT")
            derived = self.client.derive(got.lease_id, child.pid)
            self.assertRegex(derived.lease_id, r"^[0-9a-f]{32}$")
            self.assertNotEqual(derived.lease_id, got.lease_id)
            self.assertEqual((derived.rule, derived.scopes), ("tests", ["gpu:all"]))
            self.assertLessEqual(derived.expires_at_ms, got.expires_at_ms)
            ended = []
            self.client.watch(derived.lease_id, ended.append)
            self.client.release(got.lease_id)
            end = time.time() + 5
            while not ended and time.time() < end:
                time.sleep(0.05)
            self.assertEqual((ended[0].kind_name, ended[0].reason_code), ("REVOKED", "ANCESTOR_ENDED"))
        finally:
            child.kill()
            child.wait()

    def test_result_for_a_held_lease(self):
        got = self.client.acquire()
        bundle = json.loads(self.client.result(got.lease_id, bytes(range(16))))
        self.assertEqual(bundle["attestd_result"], "bundle/v1")
        self.assertEqual(bundle["nonce"], "AAECAwQFBgcICQoLDA0ODw==")
        self.assertEqual(bundle["ear"].count("."), 2)
        with self.assertRaises(ValueError):
            self.client.result(got.lease_id, b"short")
        self.client.release(got.lease_id)

    def test_acquire_under_a_rule_the_caller_does_not_match(self):
        with self.assertRaises(AttestdError) as ctx:
            self.client.acquire("no-such-rule")
        self.assertEqual(ctx.exception.code, "NO_MATCHING_RULE")

    def test_watch_sees_renewal_and_release(self):
        got = self.client.acquire()
        events = []
        done = threading.Event()

        def on_event(e):
            events.append(e)
            if e is None or e.final:
                done.set()

        active = self.client.watch(got.lease_id, on_event)
        self.assertEqual((active.kind_name, active.lease_id), ("ACTIVE", got.lease_id))
        self.client.renew(got.lease_id)
        self.client.release(got.lease_id)
        self.assertTrue(done.wait(5))
        kinds = [e.kind_name for e in events]
        self.assertIn("RENEWED", kinds)
        self.assertEqual(kinds[-1], "RELEASED")

    def test_lease_is_kept_past_its_first_term_then_released(self):
        with lease() as held:
            first = held.lease.expires_at_ms
            # The test policy's max_age is 2 s: without renewals the lease would be gone.
            time.sleep((first - time.time() * 1000) / 1000 + 0.5)
            held.check()
            self.assertGreater(held.lease.expires_at_ms, first)
            lease_id = held.lease_id
        with self.assertRaises(AttestdError) as ctx:
            self.client.renew(lease_id)
        self.assertEqual(ctx.exception.code, "LEASE_NOT_FOUND")

    def test_revocation_reaches_the_context_manager(self):
        revoked = threading.Event()
        seen = []
        try:
            with lease(on_revoked=lambda e: (seen.append(e), revoked.set())) as held:
                held.check()
                _tpm2("pcrextend", "16:sha256=" + "1" * 64)
                self.assertTrue(revoked.wait(10), "on_revoked was not called after PCR 16 changed")
                with self.assertRaises(LeaseLost) as ctx:
                    held.check()
                self.assertEqual(ctx.exception.code, "NOT_TRUSTED")
                self.assertIs(seen[0], ctx.exception)
        finally:
            _tpm2("pcrreset", "16")
        self.wait_state("TRUSTED")


if __name__ == "__main__":
    unittest.main()
