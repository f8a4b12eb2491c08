"""pam_module.trust on real files: which files and directories a login may read its config, store and key from."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest

from pam_module.trust import SERVICE_USER, Untrusted, trusted_owners, trusted_path

NOBODY = pwd.getpwnam("nobody").pw_uid
ROOT_ONLY = {0: "root"}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A folder in pytest's root-owned 0700 chain under the sticky /tmp, with a root-owned 0600 file `f`."""
    (tmp_path / "f").write_text("x")
    (tmp_path / "f").chmod(0o600)
    return tmp_path


def refused(path: Path, owners: dict[int, str] = ROOT_ONLY) -> str:
    with pytest.raises(Untrusted) as caught:
        trusted_path(path, "key file", owners)
    return str(caught.value)


def test_a_root_owned_file_in_a_root_owned_chain(folder: Path):
    assert trusted_path(folder / "f", "key file", ROOT_ONLY) == str(folder / "f")
    (folder / "f").chmod(0o644)  # readable by others is not this check's business (the key loader refuses it)
    assert trusted_path(folder / "f", "key file", ROOT_ONLY) == str(folder / "f")


@pytest.mark.parametrize(("mode", "who"), [(0o620, "group"), (0o602, "others"), (0o666, "group and others")])
def test_a_file_others_can_write(folder: Path, mode: int, who: str):
    (folder / "f").chmod(mode)
    assert refused(folder / "f") == f"key file {folder}/f: writable by {who} (mode {mode:o})"


def test_a_file_of_another_user_unless_it_is_the_service_user(folder: Path):
    os.chown(folder / "f", NOBODY, -1)
    assert refused(folder / "f") == f"key file {folder}/f: owned by uid {NOBODY}, not by root"
    as_service_user = {0: "root", NOBODY: SERVICE_USER}
    assert trusted_path(folder / "f", "key file", as_service_user) == str(folder / "f")


def test_the_service_user_is_trusted_when_it_exists():
    try:
        expected = {0: "root", pwd.getpwnam(SERVICE_USER).pw_uid: SERVICE_USER}
    except KeyError:
        expected = {0: "root"}
    assert trusted_owners() == expected


def test_a_folder_others_can_write_without_the_sticky_bit(folder: Path):
    (folder / "sub").mkdir()
    (folder / "sub" / "f").write_text("x")
    (folder / "sub").chmod(0o775)
    assert refused(folder / "sub" / "f") == (
        f"directory {folder}/sub (of key file {folder}/sub/f): writable by group (mode 775)")
    (folder / "sub").chmod(0o1777)  # as /tmp: others may write, but not rename or delete root's files
    assert trusted_path(folder / "sub" / "f", "key file", ROOT_ONLY) == str(folder / "sub" / "f")


def test_a_folder_of_another_user_even_sticky(folder: Path):
    (folder / "sub").mkdir(mode=0o1755)
    (folder / "sub" / "f").write_text("x")
    os.chown(folder / "sub", NOBODY, -1)
    why = refused(folder / "sub" / "f")
    assert why == f"directory {folder}/sub (of key file {folder}/sub/f): owned by uid {NOBODY}, not by root"


def test_every_folder_up_to_the_root_is_checked(folder: Path):
    (folder / "a" / "b" / "c").mkdir(parents=True)
    (folder / "a" / "b" / "c" / "f").write_text("x")
    (folder / "a").chmod(0o757)
    assert refused(folder / "a" / "b" / "c" / "f").startswith(f"directory {folder}/a (of key file ")


def test_a_symlink_is_checked_where_it_leads(folder: Path):
    (folder / "theirs").mkdir()
    (folder / "theirs" / "f").write_text("x")
    os.chown(folder / "theirs", NOBODY, -1)
    (folder / "link").symlink_to(folder / "theirs" / "f")
    assert refused(folder / "link").startswith(f"directory {folder}/theirs (of key file {folder}/theirs/f)")
    (folder / "good").symlink_to(folder / "f")
    assert trusted_path(folder / "good", "key file", ROOT_ONLY) == str(folder / "f")  # the real path is used


def test_missing_and_not_regular(folder: Path):
    assert refused(folder / "missing") == f"key file {folder}/missing: No such file or directory"
    (folder / "dir").mkdir()
    assert refused(folder / "dir") == f"key file {folder}/dir: not a regular file"
