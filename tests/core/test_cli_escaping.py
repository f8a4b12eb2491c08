"""Stored text reaches the admin's terminal escaped in every human-readable output, and exact with `--json`."""

from __future__ import annotations

import json

from otpbase.escape import escape

from .helpers import Cli

EMAIL = "bob\x1b[2J@example.org"  # an address imported from a file nobody read closely
PHONE = "+41 79\nname: root"  # a second line posing as a field


def test_user_show_and_list_escape_stored_text(cli_alice: Cli) -> None:
    cli = cli_alice
    cli.ok("user", "add", "bob", "--email", EMAIL, "--phone", PHONE)
    shown = cli.ok("user", "show", "bob")
    assert "\x1b" not in shown
    assert f"email: {escape(EMAIL)}\n" in shown and f"phone: {escape(PHONE)}\n" in shown
    assert not any(line.startswith("name: root") for line in shown.splitlines())
    listed = cli.ok("user", "list")
    assert "\x1b" not in listed and len(listed.splitlines()) == 3  # header, alice, bob
    assert escape(EMAIL) in listed.splitlines()[2]
    exact = json.loads(cli.ok("user", "show", "bob", "--json"))
    assert (exact["email"], exact["phone"]) == (EMAIL, PHONE)


def test_email_token_added_names_the_address_escaped(cli_alice: Cli) -> None:
    cli = cli_alice
    cli.ok("user", "add", "bob", "--email", EMAIL)
    out = cli.ok("token", "add", "bob", "--type", "email")
    assert "\x1b" not in out and out.endswith(f"codes are sent by email to {escape(EMAIL)}\n")
    assert json.loads(cli.ok("token", "add", "bob", "--type", "email", "--json"))["address"] == EMAIL
