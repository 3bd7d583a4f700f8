"""Archived log reading: compression by content, rotation order, stdin, errors."""

from __future__ import annotations

import bz2
import gzip
import lzma
from pathlib import Path

import pytest

from acctwatch.replay import chains
from acctwatch.sources.files import SourceError, expand, iter_lines, order_oldest_first, rotation_key

LINES = [b"Nov 26 07:11:57 mx postfix/smtpd[1]: connect from a[192.0.2.1]", b"second \xff line", b"third"]


@pytest.mark.parametrize("opener,suffix", [(gzip.open, ".gz"), (bz2.open, ".bz2"), (lzma.open, ".xz"),
                                           (open, "")])
def test_compressed_by_content(tmp_path: Path, opener, suffix: str) -> None:  # type: ignore[no-untyped-def]
    p = tmp_path / f"mail.log.2{suffix}"
    with opener(p, "wb") as fh:
        fh.write(b"\n".join(LINES) + b"\r\n")
    assert list(iter_lines(str(p))) == LINES
    # the name does not matter, the content does
    q = tmp_path / "renamed"
    q.write_bytes(p.read_bytes())
    assert list(iter_lines(str(q))) == LINES


def test_rotation_order_oldest_first() -> None:
    given = ["/l/mail.log", "/l/mail.log.1", "/l/mail.log.10.gz", "/l/mail.log.2.gz", "/l/mail.log.3.gz"]
    assert order_oldest_first(given) == ["/l/mail.log.10.gz", "/l/mail.log.3.gz", "/l/mail.log.2.gz",
                                         "/l/mail.log.1", "/l/mail.log"]
    dated = ["/l/mail.log", "/l/mail.log-20261125.gz", "/l/mail.log-20261124.gz"]
    assert order_oldest_first(dated) == ["/l/mail.log-20261124.gz", "/l/mail.log-20261125.gz", "/l/mail.log"]
    assert rotation_key("mail.log.1")[0] == rotation_key("mail.log")[0] == "mail.log"


def test_chains_group_by_base_name() -> None:
    got = chains(["/l/dovecot.log", "/l/mail.log.1", "/l/dovecot.log.1.gz", "/l/mail.log"])
    assert got == [["/l/dovecot.log.1.gz", "/l/dovecot.log"], ["/l/mail.log.1", "/l/mail.log"]]


def test_truncated_archive_is_a_clear_error(tmp_path: Path) -> None:
    p = tmp_path / "mail.log.1.gz"
    p.write_bytes(gzip.compress(b"a line\n" * 1000)[:-20])
    with pytest.raises(SourceError, match="read error"):
        list(iter_lines(str(p)))


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="cannot read"):
        list(iter_lines(str(tmp_path / "nope")))
    with pytest.raises(SourceError, match="is a directory"):
        expand([tmp_path])


def test_zstd_is_refused_with_advice(tmp_path: Path) -> None:
    p = tmp_path / "mail.log.1.zst"
    p.write_bytes(b"\x28\xb5\x2f\xfd" + b"\0" * 10)
    with pytest.raises(SourceError, match="zstdcat"):
        list(iter_lines(str(p)))
