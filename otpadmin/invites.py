"""`otp-admin user invite NAME [--send]`: a one-time enrolment code for the portal's `self_enrollment = "invite"`."""

from __future__ import annotations

import argparse
import time
from typing import Any

from otpcore.admin import Admin
from otpcore.config import Config
from otpcore.errors import DeliveryError, InputError, NotFoundError
from otpcore.selfservice import SelfService

from .output import escaped

__all__ = ["register"]

SUBJECT = "Your enrolment code"


def register(user: Any) -> None:
    s = user.add_parser("invite", help="issue a one-time enrolment code for the self-service portal (printed, or "
                                       "e-mailed to the user with --send)")
    s.add_argument("name")
    s.add_argument("--send", action="store_true", help="e-mail the code to the user's address ([delivery.smtp]) "
                                                       "instead of printing it")
    s.set_defaults(handler=invite)


def invite(args: argparse.Namespace, config: Config) -> int:
    web = config.web
    with Admin(config) as admin:
        email = _address(admin, args.name)  # also: a user of the store or the directory, or nobody to invite
        if not args.send:
            email = None
        elif not email:
            raise InputError(f"{args.name} has no e-mail address to send the code to (user set --email)")
        now = time.time()
        service = SelfService(admin.store, admin.sealer, config.policy)
        code = service.issue_invite(args.name, hours=web.invite_hours, now=now)
    if email is None:
        print(f"enrolment code for {escaped(args.name)}: {code} (single use, valid {web.invite_hours} hours)")
        return 0
    from otpcore.delivery import Sender  # smtplib: only when a mail goes out

    where = f" at {web.public_url}" if web.public_url else ""
    body = (f"Your enrolment code is {code}\n\nLog in to the self-service portal{where} with your user name and "
            f"password, and enter this code to enrol your authenticator. It can be used once, within "
            f"{web.invite_hours} hours.\n")
    try:
        Sender(config.delivery).send_mail(email, SUBJECT, body)
    except DeliveryError as exc:
        with Admin(config) as admin:  # a code nobody received must not stay valid
            admin.store.delete_invite(args.name)
        raise DeliveryError(f"enrolment code not sent, none issued: {exc}") from None
    print(f"enrolment code for {escaped(args.name)} sent to {escaped(email)} (valid {web.invite_hours} hours)")
    return 0


def _address(admin: Admin, name: str) -> str | None:
    try:
        return admin.contacts(name)[0]
    except NotFoundError:
        if admin.config.ldap is None:
            raise
        entry = admin.directory.find(name)
        if entry is None:
            raise NotFoundError(f"no such user: {name} (neither in the store nor in the directory)") from None
        return entry.email
