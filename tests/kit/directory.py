"""What the private slapd of tests.kit.slapd holds and how it is configured, as LDIF.

Two flavours of the same directory:
- "openldap": users `uid=NAME,ou=people,dc=example,dc=org` (inetOrgPerson + posixAccount), a service account
  `cn=otp,ou=services,...`, a groupOfNames `cn=vpn-users,ou=groups,...`; searched with (uid=NAME).
- "ad": an Active-Directory-like tree `dc=ad,dc=example,dc=org`: users `cn=Full Name,cn=Users,...` (one with an
  escaped comma in its DN, as AD writes "Surname, Given") carrying `sAMAccountName` and `userPrincipalName`, the
  service account a user too, a group `cn=VPN Users,cn=Users,...`; searched with (sAMAccountName=NAME). Like AD, the
  server accepts an unauthenticated bind (a DN with an empty password) as a successful anonymous bind.
Both flavours maintain `memberOf` on the members of groups (the memberof overlay), as AD does.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = [
    "DirectoryUser", "Flavour", "Layout", "TlsFiles", "ad_layout", "config_ldif", "data_ldif", "layout_for",
    "openldap_layout", "ssha",
]

Flavour = Literal["openldap", "ad"]
SCHEMA_DIR = Path("/etc/ldap/schema")
MODULE_DIR = Path("/usr/lib/ldap")

# Stand-in for AD's schema: its attribute types (with Microsoft's OIDs, and case-insensitive matching as in AD),
# `user` as an AUXILIARY class (structural in AD; a search filter cannot tell) and AD's `container`.
AD_SCHEMA_LDIF = """\
dn: cn=adlike,cn=schema,cn=config
objectClass: olcSchemaConfig
cn: adlike
olcAttributeTypes: ( 1.2.840.113556.1.4.221 NAME 'sAMAccountName' EQUALITY caseIgnoreMatch
  SUBSTR caseIgnoreSubstringsMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
olcAttributeTypes: ( 1.2.840.113556.1.4.656 NAME 'userPrincipalName' EQUALITY caseIgnoreMatch
  SUBSTR caseIgnoreSubstringsMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
olcObjectClasses: ( 1.2.840.113556.1.5.9 NAME 'user' DESC 'test stand-in for AD user' SUP top AUXILIARY
  MAY ( sAMAccountName $ userPrincipalName ) )
olcObjectClasses: ( 1.2.840.113556.1.3.23 NAME 'container' SUP top STRUCTURAL MUST cn )
"""


@dataclass(frozen=True)
class DirectoryUser:
    login: str  # what the user types: uid, or sAMAccountName in the AD flavour
    dn: str
    password: str
    mail: str
    mobile: str
    principal: str | None = None  # userPrincipalName (AD flavour)
    in_group: bool = False


@dataclass(frozen=True)
class Layout:
    flavour: Flavour
    base_dn: str
    login_attribute: str
    service_dn: str
    service_password: str
    group_dn: str
    users: tuple[DirectoryUser, ...]

    @property
    def admin_dn(self) -> str:
        return f"cn=admin,{self.base_dn}"

    @property
    def user_filter(self) -> str:
        """The search filter for a login, `{user}` standing for the (escaped) name, as the [ldap] config will have."""
        object_class = "user" if self.flavour == "ad" else "inetOrgPerson"
        return f"(&(objectClass={object_class})({self.login_attribute}={{user}}))"


@dataclass(frozen=True)
class TlsFiles:
    ca_cert: Path
    cert: Path
    key: Path


def openldap_layout() -> Layout:
    base = "dc=example,dc=org"
    return Layout(
        flavour="openldap", base_dn=base, login_attribute="uid",
        service_dn=f"cn=otp,ou=services,{base}", service_password="service-Secret-0",
        group_dn=f"cn=vpn-users,ou=groups,{base}",
        users=(
            DirectoryUser("alice", f"uid=alice,ou=people,{base}", "Alice pässword 1", "alice@example.org",
                          "+15550100001", in_group=True),
            DirectoryUser("bob", f"uid=bob,ou=people,{base}", "bob-Secret-2", "bob@example.org", "+15550100002"),
        ))


def ad_layout() -> Layout:
    base = "dc=ad,dc=example,dc=org"
    users = f"cn=Users,{base}"
    return Layout(
        flavour="ad", base_dn=base, login_attribute="sAMAccountName",
        service_dn=f"cn=otp-svc,{users}", service_password="service-Secret-0",
        group_dn=f"cn=VPN Users,{users}",
        users=(
            DirectoryUser("alice", f"cn=Adams\\, Alice,{users}", "Alice pässword 1", "alice@ad.example.org",
                          "+15550100011", principal="alice@ad.example.org", in_group=True),
            DirectoryUser("bob", f"cn=Bob Brown,{users}", "bob-Secret-2", "bob.brown@ad.example.org",
                          "+15550100012", principal="bob.brown@ad.example.org"),
        ))


def layout_for(flavour: Flavour) -> Layout:
    return ad_layout() if flavour == "ad" else openldap_layout()


def ssha(password: str) -> str:
    """RFC 2307 {SSHA} userPassword value, which slapd checks natively."""
    salt = os.urandom(8)
    digest = hashlib.sha1(password.encode() + salt).digest()
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


def config_ldif(layout: Layout, workdir: Path, tls: TlsFiles, admin_password: str) -> str:
    """cn=config for `slapadd -n0`: modules, schemas, TLS, one mdb database with the memberof overlay."""
    schemas = "".join(f"include: file://{SCHEMA_DIR / name}.ldif\n\n"
                      for name in ("core", "cosine", "nis", "inetorgperson"))
    allows = "olcAllows: bind_anon_dn\n" if layout.flavour == "ad" else ""
    return f"""\
dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: {workdir}/slapd.pid
olcArgsFile: {workdir}/slapd.args
olcLogLevel: stats
olcTLSCACertificateFile: {tls.ca_cert}
olcTLSCertificateFile: {tls.cert}
olcTLSCertificateKeyFile: {tls.key}
{allows}
dn: cn=module{{0}},cn=config
objectClass: olcModuleList
cn: module{{0}}
olcModulePath: {MODULE_DIR}
olcModuleLoad: back_mdb
olcModuleLoad: memberof

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

{schemas}{AD_SCHEMA_LDIF if layout.flavour == "ad" else ""}
dn: olcDatabase={{-1}}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {{-1}}frontend

dn: olcDatabase={{0}}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {{0}}config
olcAccess: {{0}}to * by * none

dn: olcDatabase={{1}}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {{1}}mdb
olcSuffix: {layout.base_dn}
olcRootDN: {layout.admin_dn}
olcRootPW: {ssha(admin_password)}
olcDbDirectory: {workdir}/db
olcDbIndex: objectClass eq
olcAccess: {{0}}to attrs=userPassword by anonymous auth by * none
olcAccess: {{1}}to * by dn.exact="{layout.service_dn}" read by self read by * none

dn: olcOverlay={{0}}memberof,olcDatabase={{1}}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcMemberOf
olcOverlay: {{0}}memberof
olcMemberOfRefInt: TRUE
"""


def data_ldif(layout: Layout) -> str:
    """The entries, in an order ldapadd accepts (parents first, the group after its members)."""
    if layout.flavour == "ad":
        containers = [_container(f"cn=Users,{layout.base_dn}")]
        service = _ad_user(layout.service_dn, "otp-svc", None, layout.service_password)
    else:
        containers = [_ou(f"ou={ou},{layout.base_dn}") for ou in ("people", "services", "groups")]
        service = _entry(layout.service_dn, ["applicationProcess", "simpleSecurityObject"],
                         userPassword=ssha(layout.service_password))
    root = _entry(layout.base_dn, ["dcObject", "organization"], dc=_first_value(layout.base_dn), o="otp tests")
    people = [_person(layout, user, number) for number, user in enumerate(layout.users, start=10001)]
    members = [user.dn for user in layout.users if user.in_group]
    group = _entry(layout.group_dn, ["groupOfNames"], cn=_first_value(layout.group_dn), member=members)
    return "\n".join([root, *containers, service, *people, group])


def _person(layout: Layout, user: DirectoryUser, number: int) -> str:
    if layout.flavour == "ad":
        entry = _ad_user(user.dn, user.login, user.principal, user.password)
        return entry + _attributes(mail=user.mail, mobile=user.mobile)
    given = user.login.capitalize()
    return _entry(user.dn, ["inetOrgPerson", "posixAccount"], uid=user.login, cn=f"{given} Test", sn="Test",
                  givenName=given, mail=user.mail, mobile=user.mobile, userPassword=ssha(user.password),
                  uidNumber=str(number), gidNumber="10000", homeDirectory=f"/home/{user.login}")


def _ad_user(dn: str, login: str, principal: str | None, password: str) -> str:
    extra = {"userPrincipalName": principal} if principal else {}
    cn = _first_value(dn).replace("\\", "")
    surname = cn.split(",")[0] if "," in cn else cn.split()[-1]  # "Adams, Alice" / "Bob Brown"
    return _entry(dn, ["inetOrgPerson", "user"], cn=cn, sn=surname, sAMAccountName=login,
                  userPassword=ssha(password), **extra)


def _ou(dn: str) -> str:
    return _entry(dn, ["organizationalUnit"], ou=_first_value(dn))


def _container(dn: str) -> str:
    return _entry(dn, ["container"], cn=_first_value(dn))


def _first_value(dn: str) -> str:
    """The value of the RDN, still escaped (only the comma of 'Adams\\, Alice' occurs here)."""
    head = dn.replace("\\,", "\0").split(",", 1)[0]
    return head.split("=", 1)[1].replace("\0", "\\,")


def _entry(dn: str, classes: list[str], **attributes: str | list[str]) -> str:
    return f"dn: {dn}\n" + "".join(f"objectClass: {c}\n" for c in classes) + _attributes(**attributes)


def _attributes(**attributes: str | list[str]) -> str:
    lines = []
    for name, value in attributes.items():
        for one in [value] if isinstance(value, str) else value:
            lines.append(_ldif_line(name, one))
    return "".join(lines)


def _ldif_line(name: str, value: str) -> str:
    """An LDIF attribute line; values that are not safe as plain text (RFC 2849) are base64."""
    if value.isascii() and value.isprintable() and not value.startswith((" ", ":", "<")) and not value.endswith(" "):
        return f"{name}: {value}\n"
    return f"{name}:: {base64.b64encode(value.encode()).decode()}\n"
