"""Directory users: `otp-admin token add NAME` adds a name the directory has to the store (no `user add`), their
e-mail addresses and phone numbers are read from the directory when a code is sent (never copied), and their failed
logins count toward a lockout like everybody's."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable

import pytest

from otpcore import oath
from otpcore.decision import Reason, Verdict
from tests.core.helpers import Cli
from tests.kit.mail import smtp_table
from tests.kit.netfaults import HOST, closed_port
from tests.kit.slapd import Slapd

from .conftest import Mailbox
from .kit import SEED, Site


def cli(site: Site) -> Cli:
    return Cli(site.folder, site.config_path)


def stored_users(site: Site) -> list[tuple[str, str | None, str | None, int]]:
    with sqlite3.connect(site.folder / "otp.sqlite") as conn:
        rows = conn.execute("SELECT name, email, phone, directory FROM users ORDER BY name").fetchall()
    conn.close()
    return rows


def test_token_add_takes_a_name_from_the_directory(make_site: Callable[..., Site], directory: Slapd):
    site = make_site(directory)
    admin = cli(site)
    out = admin.ok("token", "add", "alice", "--type", "totp", "--qr", "none")
    assert out.startswith("token 1 added for alice")
    listed = json.loads(admin.ok("user", "list", "--json"))
    assert [(u["name"], u["directory"], u["email"], u["password"]) for u in listed] == [("alice", True, None, False)]
    out = admin.ok("token", "add", "alice", "--type", "email")  # an existing directory user: the directory's address
    assert f"codes are sent by email to {directory.user('alice').mail}" in out
    assert stored_users(site) == [("alice", None, None, 1)]  # the address was never copied
    reasons = [r["reason"] for r in json.loads(admin.ok("audit", "--user", "alice", "--json"))]
    assert reasons.count("directory_user_added") == 1 and reasons.count("token_added") == 2


def test_token_add_refuses_a_name_neither_store_nor_directory_has(make_site: Callable[..., Site],
                                                                  directory: Slapd):
    site = make_site(directory)
    out = cli(site).run("token", "add", "nobody", "--type", "totp", "--qr", "none")
    assert (out.returncode, out.stderr) == (1, "otp-admin: no such user: nobody (neither in the store nor in the "
                                                "directory)\n")
    out = cli(site).run("token", "add", "*", "--type", "totp", "--qr", "none")
    assert out.returncode == 1 and "no such user" in out.stderr
    assert stored_users(site) == []


def test_token_add_when_the_directory_is_down_writes_nothing(make_site: Callable[..., Site], openldap: Slapd):
    with closed_port() as port:
        site = make_site(openldap, urls=[f"ldaps://{HOST}:{port}"])
        out = cli(site).run("token", "add", "alice", "--type", "totp", "--qr", "none")
    assert out.returncode == 1
    assert out.stderr.startswith(f"otp-admin: no directory answered (ldaps://{HOST}:{port}: ")
    assert stored_users(site) == []


def test_email_token_needs_the_directory_to_have_an_address(make_site: Callable[..., Site], openldap: Slapd):
    site = make_site(openldap, email_attribute="description")  # an attribute alice's entry does not have
    out = cli(site).run("token", "add", "alice", "--type", "email")
    assert out.returncode == 2
    assert out.stderr == ("otp-admin: error: the directory has no ldap.email_attribute of alice for an email "
                          "token\n")
    assert stored_users(site) == []


def test_addresses_of_directory_users_are_not_set_in_the_store(make_site: Callable[..., Site], openldap: Slapd):
    site = make_site(openldap)
    site.add_token("alice")
    out = cli(site).run("user", "set", "alice", "--email", "elsewhere@example.org")
    assert out.returncode == 2 and "alice is a directory user" in out.stderr
    assert stored_users(site) == [("alice", None, None, 1)]


@pytest.mark.parametrize(("no_token", "verdict", "reason"), [("reject", Verdict.REJECT, Reason.NO_TOKEN),
                                                             ("accept", Verdict.ACCEPT, Reason.NO_TOKEN_ACCEPTED)])
def test_a_directory_user_the_store_does_not_have_is_a_user_without_token(
        make_site: Callable[..., Site], openldap: Slapd, no_token: str, verdict: Verdict, reason: Reason):
    site = make_site(openldap, policy={"no_token": no_token})
    decision = site.login("bob", openldap.user("bob").password)
    assert (decision.verdict, decision.reason) == (verdict, reason)
    assert site.login("bob", "wrong").reason is Reason.WRONG_PASSWORD
    assert site.login("nobody", "wrong").reason is Reason.UNKNOWN_USER
    assert stored_users(site) == []  # a login adds nobody


def test_wrong_directory_passwords_lock_the_user(make_site: Callable[..., Site], directory: Slapd):
    """max_failures = 3 in these sites: a directory user with a row, and one without (counted by name)."""
    site = make_site(directory)
    site.add_token("alice")
    now = time.time()
    for name in ("alice", "bob"):
        for attempt in range(3):
            decision = site.login(name, f"wrong-{attempt}", now=now)
        assert decision.verdict is Verdict.LOCKED, name
    right = site.login("alice", directory.user("alice").password + oath.totp(SEED, now), now=now)
    assert (right.verdict, right.reason) == (Verdict.LOCKED, Reason.LOCKED)
    assert site.login("bob", directory.user("bob").password, now=now).verdict is Verdict.LOCKED


def test_the_code_goes_to_the_directory_address_read_at_send_time(make_site: Callable[..., Site], fresh: Slapd,
                                                                  smtp_server: Callable[..., Mailbox]):
    mail = smtp_server()
    site = make_site(fresh, extra=smtp_table(mail.port), policy={"oob_resend_interval": 0})
    site.add_token("alice", "email")
    alice = fresh.user("alice")
    now = time.time()
    challenge = site.login("alice", alice.password, now=now)
    assert (challenge.verdict, challenge.reason) == (Verdict.CHALLENGE, Reason.CHALLENGE_SENT)
    assert mail.envelopes[-1][1] == [alice.mail]
    answered = site.verifier().answer_challenge(challenge.state, "alice", mail.last_code(6).encode(), door="radius",
                                                client="vpn", now=now + 1)
    assert answered.verdict is Verdict.ACCEPT
    fresh.modify(f"dn: {alice.dn}\nchangetype: modify\nreplace: mail\nmail: moved@example.org\n")
    assert site.login("alice", alice.password, now=now + 2).verdict is Verdict.CHALLENGE
    assert mail.envelopes[-1][1] == ["moved@example.org"]
    assert stored_users(site) == [("alice", None, None, 1)]


def test_no_code_is_sent_when_the_directory_is_gone(make_site: Callable[..., Site], openldap: Slapd,
                                                    smtp_server: Callable[..., Mailbox]):
    """The directory went away after the token was added: no address, no code, a Reject that says the code could
    not be sent (here by the help desk's `token send`)."""
    mail = smtp_server()
    site = make_site(openldap, extra=smtp_table(mail.port))
    site.add_token("alice", "email")
    with closed_port() as port:
        config = site.config_path.read_text()
        site.config_path.write_text(config.replace(openldap.ldaps_url, f"ldaps://{HOST}:{port}"))
        out = cli(site).run("token", "send", "alice")
    assert out.returncode == 1, out.stderr
    assert out.stderr.startswith(f"otp-admin: code not sent: delivery failed: directory ldaps://{HOST}:{port} failed")
    assert mail.envelopes == []
