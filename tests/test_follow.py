"""File following: every complete line exactly once across every kind of rotation, restarts from a
checkpoint, partial lines and invalid UTF-8."""

from __future__ import annotations

import gzip
import os
import random
import shutil
import threading
import time
from pathlib import Path

import pytest

from acctwatch.sources.follow import ByteTail, FileFollower, expand_globs, rotated_chain

KINDS = ["rename", "delaycompress", "compress", "dateext", "copytruncate"]


class Writer:
    """A log writer (syslog) plus a logrotate that rotates its file in one of the usual ways."""

    def __init__(self, path: Path, kind: str) -> None:
        self.path = path
        self.kind = kind
        self.fh = open(path, "ab", buffering=0)  # noqa: SIM115
        self.n = 0
        self.rotations = 0
        self.pending = b""

    def write(self, rnd: random.Random) -> None:
        data = self.pending
        for _ in range(rnd.randrange(0, 6)):
            self.n += 1
            data += f"line {self.n} é".encode() + (b"\xff" if self.n % 7 == 0 else b"") + b"\n"
        cut = rnd.randrange(len(data) + 1) if data and rnd.random() < 0.4 else len(data)
        self.fh.write(data[:cut])  # sometimes half a line: the rest comes with the next write
        self.pending = data[cut:]

    def finish_line(self) -> None:
        self.fh.write(self.pending)
        self.pending = b""

    def rotate(self) -> None:
        self.finish_line()
        self.rotations += 1
        p = str(self.path)
        if self.kind == "dateext":
            os.rename(p, f"{p}-202611{10 + self.rotations:02d}")
            self._reopen()
            return
        for n in range(20, 0, -1):  # shift .N -> .N+1
            for suffix in ("", ".gz"):
                if os.path.exists(f"{p}.{n}{suffix}"):
                    os.rename(f"{p}.{n}{suffix}", f"{p}.{n + 1}{suffix}")
        if self.kind == "copytruncate":
            shutil.copyfile(p, p + ".1")
            os.truncate(p, 0)
            return
        os.rename(p, p + ".1")
        self._reopen()
        if self.kind in ("compress", "delaycompress"):
            src = p + (".1" if self.kind == "compress" else ".2")
            if os.path.exists(src):
                with open(src, "rb") as a, gzip.open(src + ".gz", "wb") as b:
                    shutil.copyfileobj(a, b)
                os.unlink(src)

    def _reopen(self) -> None:  # postrotate: the daemon reopens its log
        self.fh.close()
        self.fh = open(self.path, "ab", buffering=0)  # noqa: SIM115

    def expected(self) -> list[bytes]:
        return [f"line {i} é".encode() + (b"\xff" if i % 7 == 0 else b"") for i in range(1, self.n + 1)]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_rotation_while_appending_with_restarts(tmp_path: Path, kind: str, seed: int) -> None:
    rnd = random.Random(f"{kind}{seed}")
    path = tmp_path / "mail.log"
    w = Writer(path, kind)
    f = FileFollower(str(path), from_start=True, rotate_grace=0)
    got: list[bytes] = []
    restarts = 0
    for _step in range(400):
        w.write(rnd)
        if rnd.random() < 0.03:
            # copytruncate of a file of which nothing was read yet cannot be told from growth (documented)
            if kind == "copytruncate":
                w.finish_line()
            if kind == "copytruncate" or rnd.random() < 0.7:
                got += [ln.raw for ln in f.poll()]
            w.rotate()
        if rnd.random() < 0.5:
            got += [ln.raw for ln in f.poll(limit=rnd.choice([3, 1000]))]
        if rnd.random() < 0.05:  # restart from the committed position (a crash right after a commit)
            cp = f.position()
            f.close()
            f = FileFollower(str(path), cp, rotate_grace=0)
            restarts += 1
    w.finish_line()
    for _ in range(10):
        got += [ln.raw for ln in f.poll()]
    assert w.rotations >= 5 and restarts >= 5
    assert got == w.expected()


@pytest.mark.parametrize("kind", KINDS)
def test_rotation_with_a_real_writer_thread(tmp_path: Path, kind: str) -> None:
    """Timing as in production: the writer runs on its own, the follower polls every 20 ms."""
    path = tmp_path / "mail.log"
    w = Writer(path, kind)
    stop = threading.Event()

    def writer() -> None:
        rnd = random.Random(kind)
        for i in range(300):
            w.write(rnd)
            if i % 60 == 59:
                time.sleep(0.05)  # logrotate runs daily; the follower has read the file since the last one
                w.rotate()
            time.sleep(0.001)
        w.finish_line()
        stop.set()

    f = FileFollower(str(path), from_start=True, rotate_grace=0.05)
    t = threading.Thread(target=writer)
    t.start()
    got: list[bytes] = []
    while not stop.is_set():
        got += [ln.raw for ln in f.poll()]
        time.sleep(0.02)
    t.join()
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline and len(got) < w.n:
        got += [ln.raw for ln in f.poll()]
        time.sleep(0.02)
    assert got == w.expected()


def test_partial_line_is_left_for_the_next_poll(tmp_path: Path) -> None:
    p = tmp_path / "m.log"
    p.write_bytes(b"")
    f = FileFollower(str(p))
    with open(p, "ab") as fh:
        fh.write(b"first\nsec")
        fh.flush()
        assert [ln.raw for ln in f.poll()] == [b"first"]
        assert f.position()["offset"] == 6
        assert f.poll() == []
        fh.write(b"ond\r\n")
    lines = f.poll()
    assert [(ln.raw, ln.lineno) for ln in lines] == [(b"second", 2)]


def test_invalid_utf8_is_passed_as_bytes(tmp_path: Path) -> None:
    p = tmp_path / "m.log"
    p.write_bytes(b"")
    f = FileFollower(str(p))
    p.write_bytes(b"caf\xe9 \xff\xfe\n\x00nul\n")
    assert [ln.raw for ln in f.poll()] == [b"caf\xe9 \xff\xfe", b"\x00nul"]


def test_first_start_reads_from_the_end_of_the_last_complete_line(tmp_path: Path) -> None:
    p = tmp_path / "m.log"
    p.write_bytes(b"old 1\nold 2\nhalf")
    f = FileFollower(str(p))
    assert f.poll() == []
    with open(p, "ab") as fh:
        fh.write(b" written\nnew\n")
    assert [(ln.raw, ln.lineno) for ln in f.poll()] == [(b"half written", 3), (b"new", 4)]
    g = FileFollower(str(p), from_start=True)
    assert len(g.poll()) == 4


def test_unterminated_last_line_of_a_rotated_file_is_not_lost(tmp_path: Path) -> None:
    p = tmp_path / "m.log"
    p.write_bytes(b"a\n")
    f = FileFollower(str(p), from_start=True, rotate_grace=0)
    assert [ln.raw for ln in f.poll()] == [b"a"]
    with open(p, "ab") as fh:
        fh.write(b"crashed writer")
    os.rename(p, str(p) + ".1")
    p.write_bytes(b"b\n")
    got = [ln.raw for ln in f.poll()] + [ln.raw for ln in f.poll()]
    assert got == [b"crashed writer", b"b"]


def test_restart_after_several_rotations_reads_the_chain(tmp_path: Path) -> None:
    p = str(tmp_path / "m.log")
    Path(p).write_bytes(b"1\n2\n")
    f = FileFollower(p, from_start=True)
    assert [ln.raw for ln in f.poll(limit=1)] == [b"1"]
    cp = f.position()
    f.close()
    # while stopped: two rotations, the older one compressed
    with open(p, "ab") as fh:
        fh.write(b"3\n")
    os.rename(p, p + ".1")
    Path(p).write_bytes(b"4\n")
    with open(p + ".1", "rb") as a, gzip.open(p + ".2.gz", "wb") as b:
        shutil.copyfileobj(a, b)
    os.unlink(p + ".1")
    os.rename(p, p + ".1")
    Path(p).write_bytes(b"5\n")
    g = FileFollower(p, cp)
    assert [(ln.raw, os.path.basename(ln.file)) for ln in g.poll()] == [
        (b"2", "m.log.2.gz"), (b"3", "m.log.2.gz"), (b"4", "m.log.1"), (b"5", "m.log")]


def test_replaced_file_without_matching_copy_is_read_from_start(tmp_path: Path) -> None:
    p = tmp_path / "m.log"
    p.write_bytes(b"x" * 50 + b"\n")
    f = FileFollower(str(p), from_start=True)
    f.poll()
    cp = f.position()
    p.unlink()
    p.write_bytes(b"fresh\n")
    assert [ln.raw for ln in FileFollower(str(p), cp).poll()] == [b"fresh"]


def test_file_created_later_is_followed_from_its_start(tmp_path: Path) -> None:
    p = tmp_path / "later.log"
    f = FileFollower(str(p))
    assert f.poll() == []
    p.write_bytes(b"hello\n")
    assert [ln.raw for ln in f.poll()] == [b"hello"]


def test_globs_skip_rotated_and_compressed_files(tmp_path: Path) -> None:
    for n in ("mail.log", "mail.log.1", "mail.log.2.gz", "mail.log-20261126", "dovecot.log"):
        (tmp_path / n).write_bytes(b"")
    got = expand_globs([str(tmp_path / "*.log*"), str(tmp_path / "missing.log")])
    assert [os.path.basename(g) for g in got] == ["dovecot.log", "mail.log", "missing.log"]
    assert [os.path.basename(n) for n in rotated_chain(str(tmp_path / "mail.log"))] == [
        "mail.log-20261126", "mail.log.2.gz", "mail.log.1"]


def test_bytetail_is_a_pygtail_without_offset_files(tmp_path: Path) -> None:
    p = tmp_path / "m.log"
    p.write_bytes(b"a\nb\xff\nc")
    t = ByteTail(str(p))
    assert t.read_lines(10) == [b"a", b"b\xff"]
    assert (t.offset, t.lineno) == (5, 2)
    assert not (tmp_path / "m.log.offset").exists()
    t.close()


@pytest.mark.parametrize("seed", range(6))
def test_block_reads_match_readline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    """Reading a plain file in blocks gives exactly the lines, offsets and line numbers that readline gives
    (CRLF, blank lines, lines longer than a block, an unfinished last line, any limit), also while the file
    grows; MAX_PARTIAL is shrunk so that the block edges fall everywhere."""
    import acctwatch.sources.follow as follow

    monkeypatch.setattr(follow, "MAX_PARTIAL", 64)
    rnd = random.Random(seed)
    p = tmp_path / "mail.log"
    p.write_bytes(b"")
    fast, slow = ByteTail(str(p)), ByteTail(str(p))
    got_fast: list[bytes] = []
    got_slow: list[bytes] = []
    for step in range(60):
        with open(p, "ab") as fh:
            for _ in range(rnd.randrange(0, 8)):
                n = rnd.choice([0, 1, 5, 30, 62, 63, 64, 65, 130])
                fh.write(bytes(rnd.choice(b"ab \r\xff") for _ in range(n)) + rnd.choice([b"\n", b"\r\n", b""]))
        fast.final = slow.final = step == 59
        limit = rnd.choice([1, 2, 7, 1000])
        got_fast += fast.read_lines(limit)
        got_slow += slow._read_each(slow._filehandle(), limit)
        assert (fast.offset, fast.lineno) == (slow.offset, slow.lineno)
        assert got_fast == got_slow
    fast.close()
    slow.close()
