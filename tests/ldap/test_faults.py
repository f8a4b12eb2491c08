"""A directory that is down, silent or not who it says it is: the next URL is tried, a check ends within
timeout x URLs, and a login is refused (never let through) when no URL answers."""

from __future__ import annotations

import contextlib
import gc
import logging
import time
import warnings
from collections.abc import Callable, Iterator

import pytest

from otpcore.decision import Reason, Verdict
from otpcore.firstfactor.ldap import Directory
from tests.kit.netfaults import HOST, closed_port, silent_server, unanswered_port
from tests.kit.slapd import Slapd

from .kit import SLACK, TIMEOUT, Site, SlapdLog

FAULTS: dict[str, Callable[[], contextlib.AbstractContextManager[int]]] = {
    "closed": closed_port, "unanswered": unanswered_port, "silent": silent_server}


@contextlib.contextmanager
def bad_url(fault: str, scheme: str = "ldaps") -> Iterator[str]:
    with FAULTS[fault]() as port:
        yield f"{scheme}://{HOST}:{port}"


def timed(call: Callable[[], object]) -> tuple[object, float]:
    start = time.monotonic()
    result = call()
    return result, time.monotonic() - start


@pytest.mark.parametrize("fault", FAULTS)
def test_first_url_down_the_second_answers(make_site: Callable[..., Site], openldap: Slapd, fault: str):
    with bad_url(fault) as url:
        directory = Directory(make_site(openldap, urls=[url, openldap.ldaps_url]).config.ldap)
        alice = openldap.user("alice")
        reason, seconds = timed(lambda: directory.authenticate("alice", alice.password))
        assert reason is Reason.OK
        if fault == "closed":
            assert seconds < SLACK
        else:  # the first URL had its whole timeout
            assert TIMEOUT <= seconds < TIMEOUT + SLACK
        # the next checks stay on the URL that answered, even once its connections are gone
        reason, seconds = timed(lambda: directory.authenticate("alice", alice.password))
        assert (reason, seconds < 0.5) == (Reason.OK, True)
        directory.close()
        reason, seconds = timed(lambda: directory.authenticate("alice", alice.password))
        assert (reason, seconds < 0.5) == (Reason.OK, True)
        directory.close()


def test_both_down_is_a_reject_within_timeout_times_urls(make_site: Callable[..., Site], openldap: Slapd,
                                                         caplog: pytest.LogCaptureFixture):
    with bad_url("unanswered") as first, bad_url("silent") as second:
        site = make_site(openldap, urls=[first, second])
        with caplog.at_level(logging.WARNING, "otpcore.ldap"):
            decision, seconds = timed(lambda: site.login("alice", openldap.user("alice").password + "123456"))
            # the next login tries both again (ldap3 alone would skip addresses that failed lately, at once)
            again, seconds_again = timed(lambda: site.login("alice", openldap.user("alice").password + "654321"))
    assert (decision.verdict, decision.reason) == (Verdict.REJECT, Reason.FIRST_FACTOR_UNAVAILABLE)
    assert again.reason is Reason.FIRST_FACTOR_UNAVAILABLE
    for spent in (seconds, seconds_again):
        assert 2 * TIMEOUT <= spent < 2 * TIMEOUT + SLACK
    assert f"directory {first} failed: " in caplog.text and f"directory {second} failed: " in caplog.text


@pytest.mark.parametrize("scheme", ["ldaps", "ldap"])
def test_a_silent_server_ends_at_the_timeout(make_site: Callable[..., Site], openldap: Slapd, scheme: str):
    """ldaps:// waits in the TLS handshake, ldap:// with StartTLS in the StartTLS request."""
    with bad_url("silent", scheme) as url:
        directory = Directory(make_site(openldap, urls=[url], start_tls=scheme == "ldap").config.ldap)
        reason, seconds = timed(lambda: _unavailable(directory))
    assert reason == "unavailable"
    assert TIMEOUT <= seconds < TIMEOUT + SLACK


def test_start_tls_on_the_plain_port(make_site: Callable[..., Site], directory: Slapd):
    log = SlapdLog(directory)
    checked = Directory(make_site(directory, urls=[directory.ldap_url], start_tls=True).config.ldap)
    assert checked.authenticate("alice", directory.user("alice").password) is Reason.OK
    checked.close()
    assert log.count()["starttls"] == 2  # both connections, before anything else was sent


@pytest.mark.parametrize("how", ["ldaps", "start_tls", "system CAs", "name"])
def test_a_certificate_not_trusted_is_refused(make_site: Callable[..., Site], openldap: Slapd, how: str,
                                              caplog: pytest.LogCaptureFixture):
    overrides: dict[str, object] = {"ca_file": str(openldap.untrusted_ca_file)}
    if how == "start_tls":
        overrides.update(urls=[openldap.ldap_url], start_tls=True)
    elif how == "system CAs":
        overrides["ca_file"] = None
    elif how == "name":  # the right CA, but 127.1 is a name the certificate does not carry
        overrides.update(ca_file=str(openldap.ca_file), urls=[openldap.ldaps_url.replace(HOST, "127.1")])
    log = SlapdLog(openldap)
    directory = Directory(make_site(openldap, **overrides).config.ldap)
    with caplog.at_level(logging.WARNING, "otpcore.ldap"), warnings.catch_warnings():
        # ldap3 drops the TLS socket of a name mismatch without closing it (tests/kit/test_slapd_kit.py)
        warnings.simplefilter("ignore", ResourceWarning)
        assert _unavailable(directory) == "unavailable"
        gc.collect()
    expected = "doesn't match" if how == "name" else "CERTIFICATE_VERIFY_FAILED"
    assert expected in caplog.text
    assert log.count()["binds"] == 0  # no password ever sent


def test_a_refused_service_account_is_unavailable_not_a_wrong_password(make_site: Callable[..., Site],
                                                                        openldap: Slapd, tmp_path,
                                                                        caplog: pytest.LogCaptureFixture):
    (tmp_path / "wrong.password").write_text("not-the-service-password\n")
    wrong = make_site(openldap, bind_password_file=str(tmp_path / "wrong.password"))
    with caplog.at_level(logging.WARNING, "otpcore.ldap"):
        assert _unavailable(Directory(wrong.config.ldap)) == "unavailable"
    assert "service account's bind (ldap.bind_dn) was refused: invalidCredentials" in caplog.text


def _unavailable(directory: Directory) -> str:
    from otpcore.errors import DirectoryError

    try:
        directory.authenticate("alice", "any password")
    except DirectoryError:
        return "unavailable"
    finally:
        directory.close()
    return "answered"
