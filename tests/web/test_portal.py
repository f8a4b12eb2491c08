"""The self-service portal in a real browser (Debian's chromium, headless, through Selenium): enrolment by the QR
code's otpauth URI, logins with password and code, replays refused, invites, a lost token disabled and replaced, an
e-mail address confirmed through a real SMTP server. A screenshot of each page is kept (tests.kit.browser)."""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

from tests.kit.browser import Browser
from tests.kit.codes import totp, totp_after
from tests.kit.mail import Mailbox, smtp_table
from tests.kit.tools import otp_admin
from tests.kit.web import WebServer

PASSWORD = "s3cret-pass"


def login(browser: Browser, user: str = "alice", password: str = PASSWORD) -> None:
    browser.open("/")
    browser.fill("#user", user)
    browser.fill("#password", password)
    browser.submit("#login")


def enter_code(browser: Browser, code: str) -> None:
    browser.fill("#otp", code)
    browser.submit("#code")


def enrol_totp(browser: Browser, shot: str = "") -> str:
    """On the enrolment page: choose an app, read the otpauth URI beneath the QR code, prove it with its code now."""
    browser.click("#start-totp")
    assert browser.find("figure.qr svg").get_attribute("class") == "qr"
    uri = browser.find("#otpauth-uri").text
    parts = urlsplit(uri)
    assert (parts.scheme, parts.netloc) == ("otpauth", "totp")
    secret = parse_qs(parts.query)["secret"][0]
    if shot:
        browser.shot(shot)
    browser.fill("#first-code", totp(secret))
    browser.submit("#enrol")
    return secret


def test_enrol_by_the_qr_code_then_log_in_and_a_replay_is_refused(web_server: Callable[..., WebServer],
                                                                   browser: Browser) -> None:
    web = web_server(web={"issuer": "Example Corp"})
    web.add_user()
    browser.base_url = web.url
    browser.open("/")
    browser.shot("01-login")
    login(browser)
    assert browser.path == "/enrol"
    browser.shot("02-enrol-choose")
    assert web.tokens() == []  # nothing yet: an abandoned enrolment leaves nothing active
    secret = enrol_totp(browser, "03-enrol-qr")
    assert browser.path == "/tokens" and "Your token is active" in browser.text
    browser.shot("04-tokens")
    [token] = web.tokens()
    assert token.active and token.type == "totp" and token.issuer == "Example Corp"
    browser.click("button.link")  # log out
    login(browser)
    assert browser.path == "/code"
    browser.shot("05-code")
    code = totp_after(secret, 1)
    enter_code(browser, code)
    assert browser.path == "/tokens"
    browser.click("button.link")
    login(browser)
    enter_code(browser, code)  # the same code again
    assert browser.path == "/code" or "Authentication failed" in browser.text
    assert browser.path != "/tokens"
    browser.shot("06-replay-refused")
    reasons = [reason for door, _, reason in web.audit("alice") if door == "web"]
    assert reasons[-2:] == ["challenge", "replay"] and "token_enrolled_totp" in reasons


def test_an_abandoned_enrolment_leaves_nothing_and_a_wrong_first_code_activates_nothing(
        web_server: Callable[..., WebServer], browser: Browser) -> None:
    web = web_server()
    web.add_user()
    browser.base_url = web.url
    login(browser)
    browser.click("#start-totp")
    assert browser.find("#otpauth-uri").text.startswith("otpauth://totp/")
    browser.fill("#first-code", "000000")
    browser.submit("#enrol")
    assert "not the code your app shows" in browser.text
    assert web.tokens() == []
    browser.open("/")  # walks away
    assert web.tokens() == []
    assert web.request("GET", "/enrol")[0] == 303  # another browser has no enrolment to see


def test_invite_mode_needs_the_enrolment_code_sent_by_otp_admin(web_server: Callable[..., WebServer],
                                                                browser: Browser,
                                                                smtp_server: Callable[..., Mailbox]) -> None:
    box = smtp_server()
    web = web_server(web={"self_enrollment": "invite"}, extra=smtp_table(box.port))
    web.add_user(email="alice@example.org")
    sent = otp_admin(web.config_path, "user", "invite", "alice", "--send")
    assert sent.returncode == 0 and "sent to alice@example.org" in sent.stdout
    box.wait(1)
    code = box.matching(r"[A-Z0-9]{5}-[A-Z0-9]{5}")
    assert code not in sent.stdout
    browser.base_url = web.url
    login(browser)
    assert browser.path == "/enrol" and "enrolment code" in browser.text
    browser.shot("07-invite")
    browser.fill("#invite-code", "AAAAA-AAAAA")
    browser.submit("#invite")
    assert "wrong, used or expired" in browser.text
    browser.fill("#invite-code", code.lower())
    browser.submit("#invite")
    enrol_totp(browser)
    assert browser.path == "/tokens" and len(web.tokens()) == 1
    reasons = [reason for _, _, reason in web.audit("alice")]
    assert [r for r in reasons if r.startswith("invite")] == ["invite_issued", "invite_refused", "invite_used"]


def test_a_lost_token_is_disabled_and_replaced_after_the_password_again(web_server: Callable[..., WebServer],
                                                                       browser: Browser) -> None:
    web = web_server()
    web.add_user()
    old = web.add_token().secret_b32
    browser.base_url = web.url
    login(browser)
    enter_code(browser, totp(old))
    token_id = web.tokens()[0].id
    browser.click(f"#disable-{token_id}")
    assert "disabled" in browser.find(f"#token-{token_id} .state").text
    browser.shot("08-token-disabled")
    assert not web.tokens()[0].active
    browser.click("#replace")
    browser.shot("09-reauth")
    browser.fill("#password", "wrong")
    browser.submit("#reauth")
    assert "Wrong password" in browser.text
    browser.fill("#password", PASSWORD)
    browser.submit("#reauth")
    assert browser.path == "/enrol"
    enrol_totp(browser)
    assert [t.active for t in web.tokens()] == [False, True]


def test_email_address_registered_once_confirmed_by_a_code(web_server: Callable[..., WebServer], browser: Browser,
                                                          smtp_server: Callable[..., Mailbox]) -> None:
    box = smtp_server()
    web = web_server(extra=smtp_table(box.port))
    web.add_user()
    secret = web.add_token().secret_b32
    browser.base_url = web.url
    login(browser)
    enter_code(browser, totp(secret))
    browser.open("/profile")
    browser.fill("#new-email", "alice@new.example.org")
    browser.submit("#contact-email")
    box.wait(1)
    assert box.envelopes[-1][1] == ["alice@new.example.org"]
    assert web.user().email is None  # not before it is confirmed
    browser.shot("10-profile-confirm")
    browser.fill("#confirm-code", "ZZZZZZ")
    browser.submit("#confirm")
    assert "Wrong code" in browser.text and web.user().email is None
    browser.fill("#confirm-code", box.last_code())
    browser.submit("#confirm")
    assert "confirmed and saved" in browser.text
    assert browser.find("#email").text == "alice@new.example.org" == web.user().email
    browser.shot("11-profile-saved")


def test_forms_without_the_csrf_token_are_refused(web_server: Callable[..., WebServer], browser: Browser) -> None:
    web = web_server()
    web.add_user()
    status, headers, body = web.request("GET", "/")
    cookie = headers["set-cookie"].split(";")[0]
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', body.decode())
    assert csrf
    form = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie}
    for body_text in (f"user=alice&password={PASSWORD}", f"user=alice&password={PASSWORD}&csrf=0123456789abcdef"):
        status, _, page = web.request("POST", "/login", body_text.encode(), form)
        assert status == 403 and b"did not come from this site" in page
    assert [row for row in web.audit("alice") if row[0] == "web"] == []  # refused before any check
    status, _, _ = web.request("POST", "/login", f"user=alice&password={PASSWORD}&csrf={csrf[1]}".encode(), form)
    assert status == 303
    browser.base_url = web.url
    browser.open("/")
    browser.driver.execute_script("document.querySelector('#login input[name=csrf]').value = 'forged'")
    browser.fill("#user", "alice")
    browser.fill("#password", PASSWORD)
    browser.submit("#login")
    assert "did not come from this site" in browser.text
    browser.shot("12-csrf-refused")


def test_cookie_flags_cache_control_and_csp(web_server: Callable[..., WebServer]) -> None:
    web = web_server(web={"session_seconds": 60})
    web.add_user()
    status, headers, body = web.request("GET", "/")
    cookie = headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Secure" not in cookie  # plain HTTP on loopback
    assert headers["cache-control"] == "no-store" and "script-src" not in headers["content-security-policy"]
    assert "default-src 'none'" in headers["content-security-policy"] and b"<script" not in body
    status, headers, _ = web.request("GET", "/static/style.css")
    assert status == 200 and "no-store" not in headers.get("cache-control", "")
