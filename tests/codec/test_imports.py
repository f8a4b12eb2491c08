"""The codec stays import-light: the client side (what a PAM login in radius mode runs) pulls in only the standard
library's hashing, never `typing`, `dataclasses` or a third-party package; the package itself only its numbers."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json, sys
before = set(sys.modules)
for name in sys.argv[1:]:
    __import__(name)
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def imported(*modules: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", PROBE, *modules], capture_output=True, text=True, check=True,
                         timeout=60)
    return set(json.loads(out.stdout))


def test_the_client_side_imports_only_the_standard_library() -> None:
    new = imported("otpbase.radius.client")
    ours = {m for m in new if m.split(".")[0] == "otpbase"}
    assert ours == {"otpbase", "otpbase.radius", "otpbase.radius.authenticators", "otpbase.radius.client",
                    "otpbase.radius.constants", "otpbase.radius.framing", "otpbase.radius.pap"}
    others = {m.split(".")[0] for m in new - ours}
    assert others <= set(sys.stdlib_module_names), others - set(sys.stdlib_module_names)
    assert not others & {"typing", "dataclasses", "ipaddress", "pyrad", "otpcore", "radiusd"}, others


def test_the_package_alone_is_its_numbers() -> None:
    assert imported("otpbase.radius") == {"otpbase", "otpbase.radius", "otpbase.radius.constants",
                                          "otpbase.radius.framing"}
