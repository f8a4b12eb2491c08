"""The validate API of a real otp-web, called with a real HTTP client: decisions, errors, throttling, the OpenAPI
document, and the core's lockout, replay protection and audit shared with the other doors."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from tests.kit.codes import totp, totp_after, wrong_totp
from tests.kit.config import Client
from tests.kit.mail import Mailbox, smtp_table
from tests.kit.ports import free_tcp_port
from tests.kit.radius_client import UdpClient, build_request
from tests.kit.radiusd import RadiusServer
from tests.kit.web import API_KEY, App, WebServer, web_table

CODE_ONLY = App("portal-sso", "code-only-key-0123456789", "none")


def test_code_only_accept_then_replay(web_server: Callable[..., WebServer]) -> None:
    web = web_server(apps=[CODE_ONLY])
    web.add_user()
    secret = web.add_token().secret_b32
    code = totp(secret)
    assert web.api("check", {"user": "alice", "pass": code}, key=CODE_ONLY.key) == (
        200, {"result": "accept", "message": "Welcome"})
    status, body = web.api("check", {"user": "alice", "pass": code}, key=CODE_ONLY.key)
    assert (status, body["result"]) == (200, "reject")
    assert [row[1:] for row in web.audit("alice") if row[0] == "web"] == [("accept", "ok"), ("reject", "replay")]


def test_password_and_code_in_one_and_the_challenge_flow(web_server: Callable[..., WebServer]) -> None:
    web = web_server()
    web.add_user()
    secret = web.add_token().secret_b32
    assert web.api("check", {"user": "alice", "pass": "s3cret-pass" + totp(secret)})[1]["result"] == "accept"
    status, body = web.api("check", {"user": "alice", "pass": "s3cret-pass"})
    assert (status, body["result"]) == (200, "challenge") and len(body["transaction_id"]) == 32
    answer = {"user": "alice", "pass": totp_after(secret, 1), "transaction_id": body["transaction_id"]}
    assert web.api("check", answer)[1]["result"] == "accept"
    assert web.api("check", answer)[1]["result"] == "reject"  # a transaction is single use
    assert web.api("check", {"user": "alice", "pass": "wrong" + totp(secret)})[1] == {
        "result": "reject", "message": "Authentication failed"}


def test_missing_or_wrong_key_is_401(web_server: Callable[..., WebServer]) -> None:
    web = web_server()
    for key in (None, "not-the-key-0123456789", API_KEY[:-1]):
        status, body = web.api("check", {"user": "alice", "pass": "x"}, key=key)
        assert status == 401 and "API key" in body["error"]
    status, headers, _ = web.request("POST", "/api/v1/validate/trigger", b"{}", {"Authorization": "Basic eDp5"})
    assert status == 401 and headers["www-authenticate"].startswith("Bearer")
    assert web.audit() == []  # nothing decided


def test_malformed_bodies_are_400_with_one_line(web_server: Callable[..., WebServer]) -> None:
    web = web_server()
    cases = {
        b"not json": "the body is not JSON",
        b"[1, 2]": "the body must be a JSON object",
        b'{"pass": "x"}': "missing 'user'",
        b'{"user": 5, "pass": "x"}': "'user' must be a string",
        b'{"user": "", "pass": "x"}': "'user' must not be empty",
        b'{"user": "a", "pass": "x", "extra": 1}': "unknown member 'extra'",
        b'{"user": "a", "pass": "x", "transaction_id": "zz"}': "'transaction_id' is not one of ours",
        b'{"user": "a"}': "missing 'pass'",
    }
    for body, error in cases.items():
        status, answer = web.api("check", body)
        assert status == 400 and answer["error"].startswith(error) and "\n" not in answer["error"], body
    assert web.api("check", b"x" * 20_000)[0] == 400


def test_a_client_causing_too_many_failures_is_throttled_with_429(web_server: Callable[..., WebServer]) -> None:
    web = web_server(apps=[CODE_ONLY], policy={"client_max_failures": 3, "client_failure_window": 3600,
                                               "max_failures": 100})
    web.add_user()
    secret = web.add_token().secret_b32
    answers = [web.api("check", {"user": "alice", "pass": wrong_totp(secret)}, key=CODE_ONLY.key) for _ in range(5)]
    assert [status for status, _ in answers] == [200, 200, 200, 429, 429]
    status, body = web.api("check", {"user": "alice", "pass": totp(secret)}, key=CODE_ONLY.key)
    assert status == 429 and body["result"] == "reject"  # even the right code, until the rate falls


def test_wrong_codes_lock_the_user_for_every_door(web_server: Callable[..., WebServer]) -> None:
    web = web_server(apps=[CODE_ONLY])  # TEST_POLICY: 3 failures lock until unlocked
    web.add_user()
    secret = web.add_token().secret_b32
    for _ in range(3):
        web.api("check", {"user": "alice", "pass": wrong_totp(secret)}, key=CODE_ONLY.key)
    assert web.api("check", {"user": "alice", "pass": totp(secret)}, key=CODE_ONLY.key)[1]["result"] == "reject"
    assert web.user().locked_at is not None


def test_trigger_sends_the_email_code_and_answers_unknown_users_alike(web_server: Callable[..., WebServer],
                                                                      smtp_server: Callable[..., Mailbox]) -> None:
    box = smtp_server()
    web = web_server(extra=smtp_table(box.port))
    web.add_user(email="alice@example.org")
    web.add_token(type="email")
    status, body = web.api("trigger", {"user": "alice"})
    assert (status, body["result"]) == (200, "challenge")
    box.wait(1)
    code = box.last_code()
    assert box.envelopes[-1][1] == ["alice@example.org"]
    status, unknown = web.api("trigger", {"user": "nobody"})
    assert (status, unknown["result"], unknown.keys()) == (200, "challenge", body.keys())
    answer = {"user": "alice", "pass": code, "transaction_id": body["transaction_id"]}
    assert web.api("check", answer)[1]["result"] == "accept"


def test_openapi_document(web_server: Callable[..., WebServer]) -> None:
    web = web_server()
    status, headers, body = web.request("GET", "/api/openapi.json")
    document = json.loads(body)
    assert status == 200 and headers["content-type"] == "application/json"
    assert document["openapi"].startswith("3.1")
    assert set(document["paths"]) == {"/api/v1/validate/check", "/api/v1/validate/trigger"}
    assert set(document["paths"]["/api/v1/validate/check"]["post"]["responses"]) == {"200", "400", "401", "429",
                                                                                    "503"}


def test_answers_carry_the_security_headers_and_the_log_no_secret(web_server: Callable[..., WebServer]) -> None:
    web = web_server()
    web.add_user()
    secret = web.add_token().secret_b32
    code = totp(secret)
    status, headers, _ = web.request("POST", "/api/v1/validate/check",
                                     json.dumps({"user": "alice", "pass": "s3cret-pass" + code}).encode(),
                                     {"Authorization": f"Bearer {API_KEY}"})
    assert status == 200 and headers["cache-control"] == "no-store"
    assert "default-src 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    log = web.log()
    assert "check user=alice client=intranet from=127.0.0.1 result=accept reason=ok" in log
    for secret_text in (code, "s3cret-pass", API_KEY, secret):
        assert secret_text not in log


def test_a_code_accepted_by_the_api_is_a_replay_for_radius_and_the_other_way_round(
        make_server: Callable[..., RadiusServer], tmp_path: Path) -> None:
    web_port = free_tcp_port()
    radius = make_server(clients=[Client("nas", "127.0.0.1", first_factor="none")],
                         extra_config=web_table(web_port, [CODE_ONLY]))
    radius.start()
    web = WebServer(tmp_path, config_path=radius.config_path, port=web_port).start()
    try:
        user = radius.add_user("carol", None)
        now = time.time()
        first, second = totp_after(user.secret_b32, 0, now), totp_after(user.secret_b32, 1, now)
        assert web.api("check", {"user": "carol", "pass": first}, key=CODE_ONLY.key)[1]["result"] == "accept"
        with UdpClient(radius.address) as client:
            assert client.ask(build_request("carol", first.encode())).code == 3  # Access-Reject: a replay
            assert client.ask(build_request("carol", second.encode())).code == 2
        assert web.api("check", {"user": "carol", "pass": second}, key=CODE_ONLY.key)[1]["result"] == "reject"
        reasons = [(door, reason) for door, _, reason in web.audit("carol") if door in ("web", "radius")]
        assert reasons == [("web", "ok"), ("radius", "replay"), ("radius", "ok"), ("web", "replay")]
    finally:
        assert web.stop() == 0
