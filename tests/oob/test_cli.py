"""`otp-admin token add --type email|sms` and `otp-admin token send` (help desk), as a subprocess."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable

from tests.kit.tools import otp_admin

from .conftest import Mailbox, Site, SmsGateway, sms_table, smtp_table


def run(s: Site, *args: str) -> subprocess.CompletedProcess[str]:
    return otp_admin(s.config_path, *args)


def ok(s: Site, *args: str) -> str:
    out = run(s, *args)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_add_email_and_sms_tokens_with_knobs(site: Callable[..., Site]) -> None:
    s = site()
    s.add_user(email="alice@example.org", phone="+15550100")
    out = ok(s, "token", "add", "alice", "--type", "email", "--digits", "8", "--validity", "600",
             "--max-attempts", "5", "--resend-interval", "60")
    assert "codes are sent by email to alice@example.org" in out
    new = json.loads(ok(s, "token", "add", "alice", "--type", "sms", "--length", "6", "--alphabet", "alphanumeric",
                        "--json"))
    assert new["address"] == "+15550100" and new["options"] == {"alphabet": "alphanumeric", "length": 6}
    tokens = json.loads(ok(s, "token", "list", "alice", "--json"))
    assert [t["type"] for t in tokens] == ["email", "sms"]
    assert tokens[0]["oob"] == {"length": 8, "alphabet": "digits", "validity": 600, "max_attempts": 5,
                                "resend_interval": 60, "last_sent": None}
    assert tokens[1]["oob"]["validity"] == 300  # the policy default
    assert "email" in ok(s, "user", "show", "alice")


def test_refused_token_additions(site: Callable[..., Site]) -> None:
    s = site()
    s.add_user(email="alice@example.org")
    for args, message in (
        (["--type", "sms"], "user alice has no phone number"),
        (["--type", "email", "--length", "11"], "length must be between 4 and 10"),
        (["--type", "email", "--secret", "JBSWY3DPEHPK3PXP"], "no secret"),
        (["--type", "totp", "--validity", "60"], "--validity: only for --type email or sms"),
        (["--type", "email", "--digits", "6", "--length", "8"], "disagree"),
    ):
        out = run(s, "token", "add", "alice", *args)
        assert out.returncode == 2, (args, out.stderr)
        assert message in out.stderr and out.stderr.count("\n") == 1
    assert json.loads(ok(s, "token", "list", "--json")) == []


def test_help_desk_send_then_verify(site: Callable[..., Site], smtp_server: Callable[..., Mailbox]) -> None:
    mail = smtp_server()
    s = site(smtp_table(mail.port), oob_resend_interval=30)
    s.add_user(email="alice@example.org")
    s.add_token(type="email")
    assert "code sent to alice" in ok(s, "token", "send", "alice")
    code = mail.last_code(6)
    # a second send within the interval is refused (the last send is in the store, seen by this new process)
    again = run(s, "token", "send", "alice")
    assert again.returncode == 1 and "--force" in again.stderr
    assert len(mail.messages) == 1
    ok(s, "token", "send", "alice", "--force")
    assert len(mail.messages) == 2
    code = mail.last_code(6)
    assert "code accepted" in ok(s, "token", "verify", "alice", code)
    reused = run(s, "token", "verify", "alice", code)
    assert reused.returncode == 1 and "replay" in reused.stderr
    audit = json.loads(ok(s, "audit", "--user", "alice", "--json"))
    assert [(a["result"], a["reason"]) for a in audit if a["door"] == "admin" and a["reason"] != "user_added"
            and a["reason"] != "token_added"] == [("challenge", "challenge"), ("reject", "resend_too_soon"),
                                                  ("challenge", "challenge"), ("accept", "ok"), ("reject", "replay")]
    assert json.loads(ok(s, "token", "list", "--json"))[0]["oob"]["last_sent"] is not None


def test_help_desk_send_by_sms(site: Callable[..., Site], sms_gateway: SmsGateway) -> None:
    s = site(sms_table(sms_gateway.url))
    s.add_user(phone="+15550100")
    s.add_token(type="sms")
    ok(s, "token", "send", "alice")
    code = sms_gateway.requests[-1].json()["text"].split()[-1]
    ok(s, "token", "verify", "alice", code)


def test_send_with_the_mail_server_down(site: Callable[..., Site], closed_port: int) -> None:
    s = site(smtp_table(closed_port))
    s.add_user(email="alice@example.org")
    s.add_token(type="email")
    started = time.monotonic()
    out = run(s, "token", "send", "alice")
    assert out.returncode == 1 and "delivery failed" in out.stderr
    assert time.monotonic() - started < 10
    no_token = site(smtp_table(closed_port))
    no_token.add_user(email="alice@example.org")
    out = run(no_token, "token", "send", "alice")
    assert out.returncode == 1 and "no active email or sms token" in out.stderr
    assert run(no_token, "token", "send", "bob").returncode == 1


def test_bad_delivery_config_is_one_line_and_exit_2(site: Callable[..., Site]) -> None:
    s = site()
    s.config_path.write_text(s.config_path.read_text() + '[delivery.smtp]\nport = "25"\n')
    out = run(s, "user", "list")
    assert out.returncode == 2 and "delivery.smtp.port" in out.stderr and out.stderr.count("\n") == 1


# -- issue 14, item 4: a channel that is not configured, a send that fails ---------------------------------------------


def test_a_token_whose_channel_is_not_configured_is_added_with_a_warning_and_not_sent(site: Callable[..., Site]
                                                                                       ) -> None:
    s = site()
    s.add_user(email="alice@example.org", phone="+15550100")
    for kind, table in (("email", "[delivery.smtp]"), ("sms", "[delivery.sms]")):
        out = run(s, "token", "add", "alice", "--type", kind)
        assert out.returncode == 0 and f"codes are sent by {kind}" in out.stdout
        assert out.stderr == (f"otp-admin: warning: no {table} in {s.config_path}: no {kind} code can be sent until "
                              "it is configured\n")
    store = s.folder / "otp.sqlite"
    before = store.read_bytes()
    out = run(s, "token", "send", "alice", "--force")
    assert (out.returncode, out.stdout) == (1, "")
    assert out.stderr == f"otp-admin: code not sent: no [delivery.sms] or [delivery.smtp] in {s.config_path}\n"
    assert store.read_bytes() == before  # refused before anything was sent, counted or audited


def test_a_failed_send_is_exit_1_and_one_line_saying_why(site: Callable[..., Site], closed_port: int,
                                                         sms_gateway: SmsGateway) -> None:
    s = site(smtp_table(closed_port) + sms_table(sms_gateway.url))
    s.add_user(email="alice@example.org", phone="+15550100")
    s.add_token(type="email")
    out = run(s, "token", "send", "alice", "--force")
    assert (out.returncode, out.stdout) == (1, "")
    assert out.stderr == (f"otp-admin: code not sent: delivery failed: user=alice mail server 127.0.0.1:{closed_port}:"
                          " connection refused\n")
    s.add_token(type="sms")  # one channel of two still works: sent, and the other one's failure is a warning
    out = run(s, "token", "send", "alice", "--force")
    assert out.returncode == 0 and out.stdout.startswith("code sent to alice")
    assert out.stderr.startswith("otp-admin: warning: code not sent: user=alice ") and out.stderr.count("\n") == 1
    assert len(sms_gateway.requests) == 1
