"""Self-tests of the LDAP test kit: the private slapd (both flavours) answers ldap3 the way the LDAP first factor
will ask, TLS is verified both ways, and the network faults make ldap3 give up within the timeouts it was given."""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import subprocess
import time
import warnings
from collections.abc import Iterator

import pytest
from ldap3 import BASE, NONE, SAFE_SYNC, Connection, Server, Tls
from ldap3.core.exceptions import (
    LDAPPasswordIsMandatoryError,
    LDAPSocketOpenError,
    LDAPSocketReceiveError,
    LDAPStartTLSError,
)
from ldap3.utils.conv import escape_filter_chars

from tests.kit.directory import DirectoryUser
from tests.kit.netfaults import HOST, closed_port, silent_server, unanswered_port
from tests.kit.slapd import Slapd, SlapdError, running_slapd, tool

TIMEOUT = 1  # seconds; ldap3 needs whole seconds for receive_timeout (see test_receive_timeout_must_be_whole_seconds)
SLACK = 2.0  # scheduling allowance on a loaded 2-core machine; a missing timeout would wait forever instead


@pytest.fixture(scope="module")
def openldap() -> Iterator[Slapd]:
    with running_slapd("openldap") as directory:
        yield directory


@pytest.fixture(scope="module")
def ad() -> Iterator[Slapd]:
    with running_slapd("ad") as directory:
        yield directory


@pytest.fixture(params=["openldap", "ad"])
def directory(request: pytest.FixtureRequest) -> Slapd:
    return request.getfixturevalue(request.param)


def tls_trusting(ca_file: os.PathLike[str]) -> Tls:
    return Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=os.fspath(ca_file))


def ldaps_server(directory: Slapd, *, ca_file: os.PathLike[str] | None = None) -> Server:
    return Server(directory.ldaps_url, use_ssl=True, tls=tls_trusting(ca_file or directory.ca_file), get_info=NONE)


@contextlib.contextmanager
def service_connection(directory: Slapd) -> Iterator[Connection]:
    """The service account's connection, bound, closed on exit. (ldap3's own `with` closes only a connection it
    opened itself, and with SAFE_SYNC it does not notice a failed bind: bind() returns a tuple, always true.)"""
    connection = Connection(ldaps_server(directory), directory.layout.service_dn, directory.layout.service_password,
                            client_strategy=SAFE_SYNC, receive_timeout=TIMEOUT)
    try:
        status, result, _, _ = connection.bind()
        assert status, result
        yield connection
    finally:
        connection.unbind()


def find_one(connection: Connection, directory: Slapd, search_filter: str) -> dict:
    status, result, response, _ = connection.search(directory.layout.base_dn, search_filter,
                                                    attributes=["mail", "mobile", "memberOf", "userPrincipalName"])
    assert status, result
    entries = [r for r in response if r["type"] == "searchResEntry"]
    assert len(entries) == 1, entries
    return entries[0]


def failed_bind(connection: Connection) -> tuple[float, Exception]:
    """Seconds until connection.bind() raised, and what. Closes the socket ldap3 leaves open when opening fails
    after connect() (a certificate name mismatch, a connect timeout): the first factor must do the same."""
    start = time.monotonic()
    try:
        connection.bind()
    except Exception as exc:  # the caller asserts which
        return time.monotonic() - start, exc
    finally:
        if connection.socket is not None:
            connection.socket.close()
    raise AssertionError("the bind succeeded")


def bind_as(server: Server, dn: str, password: str) -> tuple[bool, int]:
    connection = Connection(server, dn, password, client_strategy=SAFE_SYNC, receive_timeout=TIMEOUT)
    status, result, _, _ = connection.bind()
    connection.unbind()
    return status, result["result"]


def test_service_account_finds_user_over_ldaps_and_user_binds(directory: Slapd):
    server = ldaps_server(directory)
    alice = directory.user("alice")
    with service_connection(directory) as connection:
        user_filter = directory.layout.user_filter.format(user=escape_filter_chars(alice.login))
        entry = find_one(connection, directory, user_filter)
    assert entry["attributes"]["mail"] == [alice.mail]
    assert entry["attributes"]["mobile"] == [alice.mobile]
    assert entry["attributes"]["memberOf"] == [directory.layout.group_dn]
    assert bind_as(server, entry["dn"], alice.password) == (True, 0)
    assert bind_as(server, entry["dn"], alice.password + "x") == (False, 49)  # invalidCredentials
    assert bind_as(server, entry["dn"], directory.user("bob").password) == (False, 49)


def test_user_outside_the_group_has_no_member_of_and_the_group_does_not_list_them(directory: Slapd):
    bob = directory.user("bob")
    with service_connection(directory) as connection:
        entry = find_one(connection, directory, directory.layout.user_filter.format(user="bob"))
        assert entry["attributes"]["memberOf"] == []
        for user, expected in ((bob, 0), (directory.user("alice"), 1)):
            status, _, response, _ = connection.search(directory.layout.group_dn,
                                                       f"(member={escape_filter_chars(user.dn)})", BASE)
            assert status == bool(expected)
            assert len(response) == expected


def test_anonymous_clients_read_nothing(directory: Slapd):
    with Connection(ldaps_server(directory), client_strategy=SAFE_SYNC, receive_timeout=TIMEOUT) as anonymous:
        _, _, response, _ = anonymous.search(directory.layout.base_dn, "(objectClass=*)")
    assert response == []


def test_start_tls_on_the_plain_port(directory: Slapd):
    server = Server(directory.ldap_url, tls=tls_trusting(directory.ca_file), get_info=NONE)
    alice = directory.user("alice")
    connection = Connection(server, alice.dn, alice.password, client_strategy=SAFE_SYNC, receive_timeout=TIMEOUT)
    connection.open()
    assert connection.start_tls()
    assert connection.tls_started
    assert connection.bind()[0]
    connection.unbind()


def test_client_trusting_another_ca_is_refused(openldap: Slapd):
    alice = openldap.user("alice")
    untrusted = ldaps_server(openldap, ca_file=openldap.untrusted_ca_file)
    _, error = failed_bind(Connection(untrusted, alice.dn, alice.password))
    assert isinstance(error, LDAPSocketOpenError) and "CERTIFICATE_VERIFY_FAILED" in str(error), error
    start_tls = Connection(Server(openldap.ldap_url, tls=tls_trusting(openldap.untrusted_ca_file), get_info=NONE),
                           alice.dn, alice.password)
    start_tls.open()
    with pytest.raises(LDAPStartTLSError, match="CERTIFICATE_VERIFY_FAILED"):
        start_tls.start_tls()
    start_tls.socket.close()


def test_server_name_missing_from_the_certificate_is_refused(openldap: Slapd):
    """The certificate names localhost, 127.0.0.1 and ::1; "127.1" reaches the same address under another name.
    ldap3 checks the name after the handshake and drops the TLS socket without closing it (only the garbage
    collector does, with a ResourceWarning): the refusal holds, the leak is ldap3's."""
    server = Server(openldap.ldaps_url.replace(HOST, "127.1"), use_ssl=True, tls=tls_trusting(openldap.ca_file),
                    get_info=NONE)
    alice = openldap.user("alice")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, error = failed_bind(Connection(server, alice.dn, alice.password))
    assert isinstance(error, LDAPSocketOpenError) and "doesn't match any name" in str(error), error
    assert any(w.category is ResourceWarning and "unclosed <ssl.SSLSocket" in str(w.message) for w in caught)


def test_ad_entry_found_by_sam_account_name_and_principal(ad: Slapd):
    alice = ad.user("alice")
    assert alice.principal is not None
    with service_connection(ad) as connection:
        by_sam = find_one(connection, ad, f"(sAMAccountName={escape_filter_chars('ALICE')})")  # case-insensitive
        by_upn = find_one(connection, ad, f"(userPrincipalName={escape_filter_chars(alice.principal)})")
        by_class = find_one(connection, ad, "(&(objectClass=user)(sAMAccountName=bob))")
    # The server spells the DN its own way ("Adams\\2C Alice" for "Adams\\, Alice"): DNs are compared by the
    # server, never as strings; the DN it returned is the one to bind with.
    assert by_sam["dn"] == by_upn["dn"] != alice.dn
    assert by_sam["attributes"]["mail"] == [alice.mail]
    assert by_upn["attributes"]["userPrincipalName"] == [alice.principal]
    assert by_class["dn"] == ad.user("bob").dn
    assert bind_as(ldaps_server(ad), by_sam["dn"], alice.password) == (True, 0)


@pytest.mark.parametrize(("flavour", "outcome"), [("openldap", 53), ("ad", 0)])
def test_unauthenticated_bind_succeeds_like_ad_only_in_the_ad_flavour(flavour: str, outcome: int,
                                                                       request: pytest.FixtureRequest):
    """A DN with an empty password is an anonymous bind (RFC 4513 5.1.2): AD answers success, which a first factor
    must never take for a login; stock OpenLDAP refuses it (53, unwillingToPerform). ldapwhoami sends it as is."""
    directory: Slapd = request.getfixturevalue(flavour)
    alice = directory.user("alice")
    result = subprocess.run([tool("ldapwhoami"), "-x", "-H", directory.ldap_url, "-D", alice.dn, "-w", ""],
                            capture_output=True, text=True, timeout=10, check=False)
    assert result.returncode == outcome, result.stderr
    if outcome == 0:
        assert result.stdout.strip() == "anonymous"


def test_ldap3_itself_refuses_to_send_an_empty_password(ad: Slapd):
    for empty in ("", b""):
        _, error = failed_bind(Connection(ldaps_server(ad), ad.user("alice").dn, empty))
        assert isinstance(error, LDAPPasswordIsMandatoryError), error


def test_added_entries_are_searchable(openldap: Slapd):
    """Tests add their own entries (a second match, odd names) through the admin's ldapadd."""
    extra = DirectoryUser("st*r", "uid=st*r,ou=people,dc=example,dc=org", "x", "star@example.org", "+15550100009")
    openldap.add(f"dn: {extra.dn}\nobjectClass: inetOrgPerson\nuid: {extra.login}\ncn: Star\nsn: Star\n"
                 f"mail: {extra.mail}\n")
    with service_connection(openldap) as connection:
        entry = find_one(connection, openldap, f"(uid={escape_filter_chars(extra.login)})")
    assert entry["attributes"]["mail"] == [extra.mail]
    openldap.modify(f"dn: {extra.dn}\nchangetype: delete\n")


# --- faults: each ends within the timeout that governs it, and with the exception the first factor will catch ---

def test_silent_server_bind_ends_at_receive_timeout():
    with silent_server() as port:
        server = Server(f"ldap://{HOST}:{port}", connect_timeout=10 * TIMEOUT, get_info=NONE)
        connection = Connection(server, "cn=x", "y", receive_timeout=TIMEOUT)
        seconds, error = failed_bind(connection)
    assert isinstance(error, LDAPSocketReceiveError), error
    assert TIMEOUT <= seconds < TIMEOUT + SLACK


def test_silent_server_tls_handshake_ends_at_receive_timeout():
    """ldaps:// to a server that accepts and says nothing: the handshake, not the connect, waits; ldap3 sets the
    receive timeout before wrapping the socket, so it bounds the handshake."""
    with silent_server() as port:
        server = Server(f"ldaps://{HOST}:{port}", use_ssl=True, tls=Tls(validate=ssl.CERT_REQUIRED),
                        connect_timeout=10 * TIMEOUT, get_info=NONE)
        connection = Connection(server, "cn=x", "y", receive_timeout=TIMEOUT)
        seconds, error = failed_bind(connection)
    assert isinstance(error, LDAPSocketOpenError) and "handshake" in str(error), error
    assert TIMEOUT <= seconds < TIMEOUT + SLACK


def test_without_receive_timeout_the_connect_timeout_also_bounds_reads():
    """ldap3 leaves the socket timeout it set for connect() in place when receive_timeout is None."""
    with silent_server() as port:
        server = Server(f"ldap://{HOST}:{port}", connect_timeout=TIMEOUT, get_info=NONE)
        seconds, error = failed_bind(Connection(server, "cn=x", "y"))
    assert isinstance(error, LDAPSocketReceiveError), error
    assert TIMEOUT <= seconds < TIMEOUT + SLACK


def test_unanswered_connect_ends_at_connect_timeout():
    with unanswered_port() as port:
        server = Server(f"ldap://{HOST}:{port}", connect_timeout=TIMEOUT, get_info=NONE)
        seconds, error = failed_bind(Connection(server, "cn=x", "y", receive_timeout=10 * TIMEOUT))
    assert isinstance(error, LDAPSocketOpenError) and "timed out" in str(error), error
    assert TIMEOUT <= seconds < TIMEOUT + SLACK


def test_closed_port_is_refused_at_once():
    with closed_port() as port:
        server = Server(f"ldap://{HOST}:{port}", connect_timeout=10 * TIMEOUT, get_info=NONE)
        seconds, error = failed_bind(Connection(server, "cn=x", "y", receive_timeout=10 * TIMEOUT))
    assert isinstance(error, LDAPSocketOpenError) and "refused" in str(error), error
    assert seconds < SLACK


def test_receive_timeout_must_be_whole_seconds(openldap: Slapd):
    """ldap3 2.9.1 packs receive_timeout into SO_RCVTIMEO with struct 'LL': a float fails at open with struct.error,
    which is no LDAPException. The first factor must pass an int (or catch this)."""
    alice = openldap.user("alice")
    connection = Connection(Server(openldap.ldap_url, get_info=NONE), alice.dn, alice.password, receive_timeout=1.5)
    _, error = failed_bind(connection)
    assert type(error).__module__ == "struct" and "not an integer" in str(error), error


# --- the harness itself ---

def test_missing_tool_fails_instead_of_skipping():
    with pytest.raises(SlapdError, match="not installed"):
        tool("no-such-ldap-tool")


def test_slapd_is_stopped_and_its_files_removed_when_the_test_fails():
    with pytest.raises(RuntimeError, match="test failed"), running_slapd() as directory:
        assert directory.process is not None
        process, workdir, port = directory.process, directory.workdir, directory.ldap_port
        assert process.poll() is None and workdir.is_dir()
        raise RuntimeError("test failed")
    assert process.returncode is not None
    assert not workdir.exists()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((HOST, port), timeout=2).close()
