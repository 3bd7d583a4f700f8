"""Parsing stage: raw log lines -> typed events, driven by the pattern data in ``patterns/*.toml``.

Per line, cheapest test first:

1. a substring prefilter: the line must contain one of the patterns' literals (no regex yet);
2. the framing (:mod:`acctwatch.headers`) gives program and message;
3. the program selects the daemon family (Postfix, Dovecot) and its patterns;
4. each candidate pattern's own literal, then its anchored regex;
5. only then is the timestamp turned into a datetime and the event built.

Nothing in here raises on bad input: undecodable bytes, absurdly long lines and garbage are counted in
:class:`ParseStats` and skipped (or decoded with replacement characters), never lost silently.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .events import EVENT_FIELDS, EVENT_TYPES, INT_FIELDS, Event
from .headers import Clock, Header, split_header
from .ipaddr import ip_text

MAX_LINE = 16 * 1024
MAX_FIELD = 512

FAMILIES = ("postfix", "dovecot", "cyrus")

#: what a Postfix queue/delivery line holds, which the parser checks for before its queue id (iter_events)
_QUEUE_MARKS = (" status=", " nrcpt=", ": removed")
#: first characters of a line that is neither blank, nor a comment, nor a journal entry (a log line's date)
_PLAIN_START = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")

#: Words that make an unmatched line "relevant": somebody should look at it in ``acctwatch explain``.
RELEVANT_WORDS = ("auth", "login", "sasl", "reject", "password", "mismatch", "unknown user", "credentials")

DOVECOT_PROCESSES = frozenset({
    "imap-login", "pop3-login", "submission-login", "managesieve-login", "lmtp", "auth", "auth-worker",
    "imap", "pop3", "managesieve", "submission", "master", "config", "lda", "dovecot-lda", "indexer-worker",
    "indexer", "anvil", "log", "doveadm", "quota-status", "dict", "director", "stats",
})
LOGIN_SERVICE = {
    "imap-login": "imap", "pop3-login": "pop3", "submission-login": "submission",
    "managesieve-login": "managesieve", "imap": "imap", "pop3": "pop3", "managesieve": "managesieve",
    "submission": "submission", "lmtp": "lmtp",
}
_DOVECOT_SUB_RE = re.compile(r"([a-z][a-z0-9-]*)(?:\([^()\s]*\))?(?:<[^<>\s]*>){0,2}:(?: |\Z)")
_LOGIN_PROCESSES = frozenset({"imap-login", "pop3-login", "submission-login", "managesieve-login"})
_LEVELS = ("Info: ", "Warning: ", "Error: ", "Fatal: ", "Panic: ", "Debug: ", "Warn: ")


AUTH_PROCESSES = frozenset({"auth", "auth-worker"})


class PatternError(ValueError):
    """A pattern file is invalid; the message says which file, which pattern and what to fix."""


@dataclass(slots=True)
class Example:
    line: str
    expect: dict[str, Any] | None  # None: must NOT match


@dataclass(slots=True)
class Pattern:
    name: str
    family: str
    programs: tuple[str, ...]
    prefilter: str
    regex: re.Pattern[str]
    event: str
    fields: dict[str, Any]
    examples: list[Example]
    origin: str
    priority: int = 0
    int_fields: tuple[str, ...] = ()
    #: queue/delivery patterns whose line starts with the queue id: skippable when nobody wants that id
    queue_gated: bool = False

    #: the named groups that become event fields (``_`` groups are for matching only)
    groups: tuple[str, ...] = ()
    #: whether a field needs normalising after the match (addresses, status words, the account)
    fixups: bool = True
    #: the ``_`` groups (for matching only)
    hidden: tuple[str, ...] = ()
    #: whether the match's ``groupdict()`` can become the event's fields as it is (every group a field whose
    #: default is None, or one without a default, none also a static field)
    whole: bool = False
    #: the groups for fields without a default (when such a group took no text, the event cannot be built)
    required: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.regex, _LazyRegex):
            self.regex.owner = self
        self.int_fields = tuple(k for k in (*self.regex.groupindex, *self.fields) if k in INT_FIELDS)
        self.groups = tuple(g for g in self.regex.groupindex if not g.startswith("_"))
        self.queue_gated = (self.event in ("queue", "delivery", "removed")
                            and self.regex.pattern.startswith("^(?P<queue_id>"))
        self.fixups = any(k in _FIXUP_FIELDS for k in (*self.groups, *self.fields))
        self.hidden = tuple(g for g in self.regex.groupindex if g.startswith("_"))
        cls = EVENT_TYPES.get(self.event)
        defaults = {f.name: f.default for f in dataclasses.fields(cls)} if cls is not None else {}
        self.whole = (cls is not None and not set(self.groups) & set(self.fields)
                      and all(defaults.get(g, ...) in (None, dataclasses.MISSING) for g in self.groups))
        self.required = tuple(g for g in self.groups if defaults.get(g) is dataclasses.MISSING)


_FIXUP_FIELDS = frozenset({"ip", "local_ip", "orig_ip", "status", "account"})


def _check_regex(name: str, origin: str, text: str, lazy: bool = False) -> re.Pattern[str]:
    """The compiled regex; with *lazy* (acctwatch's own patterns, checked by its tests) a stand-in that
    compiles it at its first use (a start-up compiles only what the log needs)."""
    if not text.startswith("^") or not (text.endswith("$") or text.endswith(r"\Z")):
        raise PatternError(f"{origin}: pattern {name!r}: regex must be anchored: start with ^ and end with $")
    if lazy:
        return _LazyRegex(text)  # type: ignore[return-value]
    try:
        return re.compile(text)
    except re.error as exc:
        raise PatternError(f"{origin}: pattern {name!r}: bad regex: {exc}") from exc


_GROUP_NAME_RE = re.compile(r"(?<!\\)\(\?P<([A-Za-z_][A-Za-z0-9_]*)>")


class _LazyRegex:
    """A pattern's regex before its first use: its text and group names; ``match`` compiles it and puts the
    compiled regex in the pattern's place (from then on the parser calls the real one)."""

    __slots__ = ("groupindex", "owner", "pattern")

    def __init__(self, text: str) -> None:
        self.pattern = text
        self.groupindex = {g: i for i, g in enumerate(_GROUP_NAME_RE.findall(text), 1)}
        self.owner: Pattern | None = None

    def compiled(self) -> re.Pattern[str]:
        rx = re.compile(self.pattern)
        if self.owner is not None:
            self.owner.regex = rx
        return rx

    def match(self, text: str) -> re.Match[str] | None:
        return self.compiled().match(text)


def _load_file(path: Path | Any, origin: str, builtin: bool = False) -> list[Pattern]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise PatternError(f"{origin}: not valid TOML: {exc}") from exc
    family = data.get("family")
    if family not in FAMILIES:
        raise PatternError(f"{origin}: 'family' must be one of {', '.join(FAMILIES)}, got {family!r}")
    out = []
    for i, raw in enumerate(data.get("pattern", [])):
        name = raw.get("name") or f"#{i}"
        where = f"{origin}: pattern {name!r}"
        for key in ("name", "programs", "prefilter", "regex", "event"):
            if key not in raw:
                raise PatternError(f"{where}: missing key {key!r}")
        event = raw["event"]
        if event not in EVENT_TYPES and event != "ignore":
            raise PatternError(f"{where}: unknown event {event!r} (one of {', '.join(EVENT_TYPES)}, ignore)")
        regex = _check_regex(name, origin, raw["regex"], lazy=builtin)
        allowed = EVENT_FIELDS[event] if event != "ignore" else frozenset()
        static = dict(raw.get("fields", {}))
        bad = [g for g in (*regex.groupindex, *static) if g not in allowed and not g.startswith("_")]
        if bad and event == "ignore":
            raise PatternError(f"{where}: an ignore pattern takes no fields; name groups _like_this")
        if bad:
            raise PatternError(f"{where}: {', '.join(sorted(bad))} not a field of {event!r} events "
                               f"(fields: {', '.join(sorted(allowed))})")
        if raw["prefilter"] not in raw["regex"].replace("\\", ""):
            raise PatternError(f"{where}: prefilter {raw['prefilter']!r} must appear literally in the regex")
        examples = []
        for e in raw.get("example", []):
            if "line" not in e:
                raise PatternError(f"{where}: an example has no 'line'")
            expect = dict(e.get("expect", {}))
            expect.update({k: None for k in e.get("none", [])})  # fields that must be empty
            examples.append(Example(e["line"], expect))
        if not examples:
            raise PatternError(f"{where}: add at least one [[pattern.example]] (a line it must take)")
        examples += [Example(line, None) for line in raw.get("not_match", [])]
        progs = raw["programs"]
        out.append(Pattern(name, family, tuple([progs] if isinstance(progs, str) else progs),
                           raw["prefilter"], regex, event, static, examples, origin,
                           int(raw.get("priority", 0))))
    return out


def builtin_pattern_dir() -> Path:
    """The pattern files shipped with acctwatch (inside the wheel, or the checkout's ``patterns/``)."""
    here = Path(__file__).resolve().parent
    for cand in (here / "patterns", here.parent / "patterns"):
        if cand.is_dir():
            return cand
    raise PatternError("acctwatch's own pattern files are missing: reinstall the package")


def _minimal(lits: set[str]) -> tuple[str, ...]:
    """A line containing "authentication fail" contains "auth": only the shortest literals need a search."""
    return tuple(sorted({lit for lit in lits if not any(o != lit and o in lit for o in lits)}, key=len))


class PatternSet:
    """All patterns, indexed by (family, daemon). Later files override earlier ones by name."""

    def __init__(self, patterns: Iterable[Pattern]) -> None:
        by_name: dict[str, Pattern] = {}
        for p in patterns:
            by_name[p.name] = p
        self.patterns = list(by_name.values())
        self.index: dict[tuple[str, str], list[Pattern]] = {}
        for p in sorted(self.patterns, key=lambda p: -p.priority):
            for prog in p.programs:
                self.index.setdefault((p.family, prog), []).append(p)
        # The hot path only needs the literals of patterns that emit events: a line that could only match
        # an "ignore" pattern yields nothing either way. ``explain`` (track_unmatched) uses all of them, so
        # that known-and-ignored lines are not reported as relevant-unmatched.
        # Patterns that only apply to Dovecot's auth processes have lines that contain "auth" (the process
        # name): one cheap gate literal instead of one per message shape.
        self.literals = self.literals_for(None)
        self.all_literals = _minimal({p.prefilter for p in self.patterns})

    @classmethod
    def load(cls, extra_dirs: Iterable[str | os.PathLike[str]] = (), builtin: bool = True) -> PatternSet:
        pats: list[Pattern] = []
        own = builtin_pattern_dir() if builtin else None
        dirs: list[Path] = [own] if own is not None else []
        dirs += [Path(d) for d in extra_dirs]
        for d in dirs:
            if not d.is_dir():
                raise PatternError(f"pattern directory {d} does not exist")
            for f in sorted(d.glob("*.toml")):
                pats.extend(_load_file(f, str(f), builtin=d is own))
        return cls(pats)

    def literals_for(self, kinds: frozenset[str] | None) -> tuple[str, ...]:
        """Prefilter literals of the patterns that emit events of *kinds* (all kinds: None)."""
        return _minimal({"auth" if set(p.programs) <= AUTH_PROCESSES else p.prefilter
                         for p in self.patterns if p.event != "ignore" and (kinds is None or p.event in kinds)})

    def index_for(self, kinds: frozenset[str] | None) -> dict[tuple[str, str], list[Pattern]]:
        """The (family, daemon) index restricted to patterns of *kinds* (and the ignore patterns)."""
        if kinds is None:
            return self.index
        return {k: [p for p in v if p.event == "ignore" or p.event in kinds] for k, v in self.index.items()}


@dataclass
class ParseStats:
    lines: int = 0
    blank: int = 0
    comments: int = 0
    invalid_utf8: int = 0
    too_long: int = 0
    no_header: int = 0
    bad_time: int = 0
    bad_field: int = 0
    prefiltered: int = 0  # contained no pattern literal: skipped before any regex
    other_program: int = 0
    unmatched: int = 0  # right daemon and literal, but no pattern matched
    ignored: int = 0  # matched an "ignore" pattern: known, deliberately not an event
    unwanted_queue: int = 0  # queue/delivery lines of mail nobody authenticated (skipped by queue_filter)
    events: Counter[str] = field(default_factory=Counter)
    hits: Counter[str] = field(default_factory=Counter)
    relevant_unmatched: int = 0
    relevant_no_header: int = 0  # relevant words, but no log header at all (e.g. message-only samples)
    internal_errors: int = 0  # a bug caught by the safety net in parse(); the line is skipped
    unmatched_examples: list[tuple[str, int, str]] = field(default_factory=list)
    no_header_examples: list[tuple[str, int, str]] = field(default_factory=list)
    max_examples: int = 20

    def to_dict(self) -> dict[str, Any]:
        return {
            "lines": self.lines, "blank": self.blank, "comments": self.comments,
            "invalid_utf8": self.invalid_utf8, "too_long": self.too_long, "no_header": self.no_header,
            "bad_time": self.bad_time, "bad_field": self.bad_field, "prefiltered": self.prefiltered,
            "other_program": self.other_program, "unmatched": self.unmatched, "ignored": self.ignored,
            "unwanted_queue": self.unwanted_queue,
            "events": dict(self.events), "hits": dict(self.hits),
            "relevant_unmatched": self.relevant_unmatched, "relevant_no_header": self.relevant_no_header,
            "internal_errors": self.internal_errors,
            "unmatched_examples": [{"source": s, "lineno": n, "line": t} for s, n, t in self.unmatched_examples],
            "no_header_examples": [{"source": s, "lineno": n, "line": t} for s, n, t in self.no_header_examples],
        }


#: Postfix program name (e.g. "postfix/submission/smtpd") -> (daemon, service hint): a log has a few
_POSTFIX_PROGRAMS: dict[str, tuple[str, str | None]] = {}
CYRUS_SIEVE = frozenset({"timsieved", "sieve", "cyrus/timsieved", "cyrus/sieve"})
_CONN_WORKER_RE = re.compile(r"conn unix:[^\s()]*auth-worker \([^()]*\): auth-worker<\d+>: ")
_REQUEST_RE = re.compile(r"request \[\d+\]: ")


def classify_program(program: str, msg: str) -> tuple[str, str, str | None, str] | None:
    """(family, daemon, service hint, message without the daemon/level prefix) or None.

    Dovecot is seen in three framings: syslog (``dovecot: imap-login: msg``, sometimes doubled as
    ``dovecot[1]: dovecot: auth(default): msg``), ``log_path`` files (program ``imap-login``, then
    ``Info: msg``) and 2.4 event prefixes (``auth(user,ip,sasl:plain)<session>: Info: sql: ...``). For the
    last one the whole prefix is kept at the start of the message, because it carries the user and the IP;
    so is the ``imap(user)<pid><session>`` prefix of an ``ID sent:`` line (``imap_id_log`` after login).
    """
    if program.startswith("postfix"):
        known = _POSTFIX_PROGRAMS.get(program)
        if known is None:
            parts = program.split("/")
            hint = None
            for p in parts[1:-1]:
                if p in ("submission", "smtps", "submissions"):
                    hint = "submission"
            known = (parts[-1], hint)
            if len(_POSTFIX_PROGRAMS) >= 4096:  # (bounded: program names come from the log)
                _POSTFIX_PROGRAMS.clear()
            _POSTFIX_PROGRAMS[program] = known
        return "postfix", known[0], known[1], msg
    if program in CYRUS_SIEVE:
        return "cyrus", program.rpartition("/")[2], "managesieve", msg
    if program == "dovecot":  # fast path for the most common shape: "dovecot: imap-login: Login: ..."
        sub, sep, rest = msg.partition(": ")
        if sep and sub in _LOGIN_PROCESSES and rest[:1] not in "IWEFPD":
            return "dovecot", sub, LOGIN_SERVICE.get(sub), rest
    prefix = program
    if program.startswith("dovecot"):
        if program == "dovecot-auth":
            prefix = "auth"
        else:
            msg = _strip_level(msg)  # some templates put the level first: "dovecot: Info: auth(default): ..."
            m = _DOVECOT_SUB_RE.match(msg)
            if m is not None and m.group(1) == "dovecot":  # "dovecot[442]: dovecot: auth(default): ..."
                msg = msg[m.end():]
                m = _DOVECOT_SUB_RE.match(msg)
            if m is None:
                return "dovecot", "dovecot", None, _strip_level(msg)
            prefix = m.group(0).rstrip(" ")[:-1]
            msg = msg[m.end():]
    base = prefix.partition("(")[0].partition("<")[0]
    if base not in DOVECOT_PROCESSES:
        return None
    msg = _strip_level(msg)
    if base in ("auth", "auth-worker"):
        if msg.startswith("request ["):
            m = _REQUEST_RE.match(msg)
            if m is not None:
                msg = _strip_level(msg[m.end():])
        if msg.startswith("conn unix:"):
            m = _CONN_WORKER_RE.match(msg)
            if m is not None:
                msg = _strip_level(msg[m.end():])
        args = prefix[len(base):].partition(")")[0]
        if "," in args:  # 2.4 event prefix with user and IP: keep it for the patterns
            msg = f"{prefix}: {msg}"
    elif base == "imap" and prefix != base and msg.startswith("ID sent: "):
        # imap_id_log after login: the mail process prefix "imap(user)<pid><session>" is Dovecot's record of
        # the logged-in account and session (the ID text after it is the client's): keep it for the pattern
        msg = f"{prefix}: {msg}"
    return "dovecot", base, LOGIN_SERVICE.get(base), msg


def _strip_level(msg: str) -> str:
    if msg[:1] in ("I", "W", "E", "F", "P", "D"):
        for lv in _LEVELS:
            if msg.startswith(lv):
                return msg[len(lv):]
    return msg


#: Delivery status words as Postfix logs them -> the four kinds detectors use.
STATUS_MAP = {"sent": "sent", "deferred": "deferred", "bounced": "bounced", "expired": "expired",
              "softbounce": "deferred", "force-expired": "expired"}


class LineParser:
    """Stateful per-source parser (the clock keeps the year across lines)."""

    def __init__(self, patterns: PatternSet, clock: Clock | None = None, source: str = "",
                 track_unmatched: bool = False, queue_filter: Callable[[str], bool] | None = None,
                 kinds: Iterable[str] | None = None) -> None:
        """*queue_filter*, when given, says whether a Postfix queue id matters (the engine's queue join
        knows the ids of authenticated submissions): queue and delivery lines of other ids (inbound mail,
        most of a busy log) are then counted in ``stats.unwanted_queue`` and skipped before any regex.
        *kinds*, when given, limits parsing to the event kinds somebody consumes (the engine's detectors):
        lines that could only give other kinds are dropped by the prefilter."""
        self.queue_filter = queue_filter
        self.clock = clock or Clock()
        self.source = source
        self.track_unmatched = track_unmatched
        self.stats = ParseStats()
        self.configure(patterns, kinds)

    def configure(self, patterns: PatternSet, kinds: Iterable[str] | None = None) -> None:
        """Use *patterns*, limited to the event *kinds* somebody consumes (a SIGHUP reload calls this)."""
        self.patterns = patterns
        self.kinds = frozenset(kinds) if kinds is not None and not self.track_unmatched else None
        lits = patterns.all_literals if self.track_unmatched else patterns.literals_for(self.kinds)
        # The literals a Postfix queue/delivery line contains go first: the loop over a line's literals then
        # stops at one of them for those lines (the most common relevant lines of a busy log), and only
        # those need the queue-id check (see iter_events). Without such literals on both sides, every
        # line is checked.
        status, nrcpt, removed = ([lit for lit in lits if lit in mark] for mark in _QUEUE_MARKS)
        self._queue_lits: frozenset[str] | None = None
        if status and nrcpt:
            first = tuple(dict.fromkeys(status + nrcpt + removed))
            lits = first + tuple(lit for lit in lits if lit not in first)
            self._queue_lits = frozenset(first)
        self._literals = lits
        self._index = patterns.index_for(self.kinds)

    def iter_events(self, raws: Iterable[bytes], start: int = 1) -> Iterator[Event]:
        """Events of many raw lines (without line endings, as :func:`acctwatch.sources.files.iter_lines`
        gives them): the same as :meth:`parse_bytes` line by line, in one tight loop
        (the replay hot path: per-line bookkeeping is done in locals and written back at the end)."""
        if self.track_unmatched:
            for n, raw in enumerate(raws, start):
                ev = self.parse_bytes(raw, n)
                if ev is not None:
                    yield ev
            return
        st = self.stats
        lits = self._literals
        queue_lits = self._queue_lits
        framed = self._parse_framed
        qf = self.queue_filter
        n = start - 1
        skipped = 0
        try:
            for n, raw in enumerate(raws, start):
                if len(raw) > MAX_LINE:  # counted, never parsed: a forged tail at the cut must not become an event
                    st.too_long += 1
                    continue
                try:
                    line = raw.decode()
                except UnicodeDecodeError:
                    st.invalid_utf8 += 1
                    line = raw.decode("utf-8", "replace")
                for lit in lits:
                    if lit in line:
                        break
                else:
                    c = line[:1]
                    if c in _PLAIN_START:  # (most lines: not blank, no comment, no journal entry)
                        skipped += 1
                        continue
                    if not (c == "{" and '"MESSAGE":[' in line):
                        if not line or line.isspace():
                            st.blank += 1
                        elif line[0] == "#":
                            st.comments += 1
                        else:
                            skipped += 1
                        continue
                    lit = ""  # (a journal entry: checked as every line was)
                if line[0] == "#":
                    st.comments += 1
                    continue
                # (_QUEUE_MARKS: a line that stopped at another literal holds none of them)
                if qf is not None and (queue_lits is None or lit in queue_lits or not lit) and (
                        " status=" in line or " nrcpt=" in line or line.endswith(": removed")):
                    # Postfix queue/delivery line of mail nobody authenticated (most of an MX's traffic):
                    # skipped on its queue id before any regex, exactly as the gated patterns would
                    i = line.find("]: ")
                    if i > 0 and "postfix" in line[:i]:
                        qid = line[i + 3:line.find(":", i + 3)]
                        if 5 <= len(qid) <= 20 and qid.isalnum() and not qf(qid):
                            st.unwanted_queue += 1
                            continue
                try:
                    ev = framed(line, n)
                except Exception:  # never let one line stop a replay or the daemon; counted
                    st.internal_errors += 1
                    continue
                if ev is not None:
                    yield ev
        finally:
            st.lines += n - start + 1
            st.prefiltered += skipped

    def parse_bytes(self, raw: bytes, lineno: int) -> Event | None:
        # (decoding first is faster than a bytes prefilter: str.__contains__ is ~3x faster than bytes')
        if len(raw) > MAX_LINE:  # counted, never parsed (see iter_events)
            self.stats.lines += 1
            self.stats.too_long += 1
            return None
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            self.stats.invalid_utf8 += 1
            line = raw.decode("utf-8", "replace")
        return self.parse(line, lineno, _counted=True)

    def parse(self, line: str, lineno: int = 0, _counted: bool = False) -> Event | None:
        try:
            return self._parse(line, lineno, _counted)
        except Exception:  # never let one line stop a daemon; counted so tests and explain can see it
            self.stats.internal_errors += 1
            return None

    def _parse(self, line: str, lineno: int, _counted: bool) -> Event | None:
        st = self.stats
        st.lines += 1
        line = line.rstrip("\r\n")
        if not _counted and len(line) > MAX_LINE:
            st.too_long += 1
            return None
        for lit in self._literals:
            if lit in line:
                break
        else:
            if line[:1] == "{" and '"MESSAGE":[' in line:  # journald byte-array message: decode first
                return self._parse_framed(line, lineno)
            if not line.strip():
                st.blank += 1
            elif line[0] == "#":
                st.comments += 1
            else:
                st.prefiltered += 1
                if self.track_unmatched:
                    self._maybe_relevant(line, lineno)
            return None
        if line[0] == "#":
            st.comments += 1
            return None
        return self._parse_framed(line, lineno)

    def _parse_framed(self, line: str, lineno: int) -> Event | None:
        st = self.stats
        hdr = split_header(line)
        if hdr is None:
            st.no_header += 1
            if self.track_unmatched:
                self._maybe_relevant(line, lineno)
            return None
        cls = classify_program(hdr.program, hdr.msg)
        if cls is None:
            st.other_program += 1
            return None
        family, daemon, hint, msg = cls
        qf = self.queue_filter
        for pat in self._index.get((family, daemon), ()):
            if pat.prefilter not in msg:
                continue
            if qf is not None and pat.queue_gated and not qf(msg[:msg.find(":")]):
                st.unwanted_queue += 1
                return None
            m = pat.regex.match(msg)
            if m is None:
                continue
            if pat.event == "ignore":
                st.hits[pat.name] += 1
                st.ignored += 1
                return None
            ev = self._build(pat, m, hdr, daemon, hint, lineno)
            if ev is not None:
                st.hits[pat.name] += 1
                st.events[ev.kind] += 1
            return ev
        st.unmatched += 1
        if self.track_unmatched:
            self._maybe_relevant(line, lineno)
        return None

    def _maybe_relevant(self, line: str, lineno: int) -> None:
        """Count a line no pattern took if it is a Postfix/Dovecot (or unframed) line about auth.

        The words are looked for in the message (a program name such as ``imap-login`` or
        ``postfix/authclean/cleanup`` does not make a line relevant); Dovecot ``Debug:`` output is not.
        """
        low = line.lower()
        for w in RELEVANT_WORDS:  # (the words are looked for in the message, which is part of the line)
            if w in low:
                break
        else:
            return
        hdr = split_header(line)
        st = self.stats
        if hdr is None:
            if any(w in low for w in RELEVANT_WORDS):
                st.relevant_no_header += 1
                if len(st.no_header_examples) < st.max_examples:
                    st.no_header_examples.append((self.source, lineno, line[:500]))
            return
        cls = classify_program(hdr.program, hdr.msg)
        if cls is None or "Debug: " in hdr.msg[:300]:
            return
        low = cls[3].lower()
        if any(w in low for w in RELEVANT_WORDS):
            st.relevant_unmatched += 1
            if len(st.unmatched_examples) < st.max_examples:
                st.unmatched_examples.append((self.source, lineno, line[:500]))

    def _build(self, pat: Pattern, m: re.Match[str], hdr: Header, daemon: str, hint: str | None,
               lineno: int) -> Event | None:
        ts = self.clock.parse(hdr.fmt, hdr.ts)
        if ts is None:
            self.stats.bad_time += 1
            return None
        if pat.whole and m.end() <= MAX_FIELD:  # (no group can be longer than the text matched)
            kw: dict[str, Any] = m.groupdict()
            for k in pat.hidden:
                del kw[k]
            for k in pat.required:
                if kw[k] is None:
                    del kw[k]
            if pat.fields:
                kw.update(pat.fields)
        else:
            kw = dict(pat.fields) if pat.fields else {}
            names = pat.groups
            for k, v in zip(names, m.group(*names) if len(names) > 1 else (m.group(*names),), strict=False):
                if v is not None:
                    kw[k] = v if len(v) <= MAX_FIELD else v[:MAX_FIELD]
        for k in pat.int_fields:
            v = kw.get(k)
            if v is not None:
                try:
                    kw[k] = int(v)
                except (TypeError, ValueError):
                    kw[k] = None
        if pat.fixups:
            ip = kw.get("ip")
            if ip is not None:
                kw["ip"] = norm = ip_text(ip)
                if norm is None and ip not in ("unknown", ""):
                    self.stats.bad_field += 1
            v = kw.get("local_ip")
            if v is not None:
                kw["local_ip"] = ip_text(v)
            v = kw.get("orig_ip")
            if v is not None:
                kw["orig_ip"] = ip_text(v)
            v = kw.get("status")
            if v is not None:
                v = v.lower()
                kw["status"] = STATUS_MAP.get(v, v)
            acct = kw.get("account")
            if acct is not None:
                acct = acct.strip()
                kw["account"] = acct or None
        if kw.get("service") is None:
            kw["service"] = hint or pat.fields.get("service") or _default_service(pat.family, daemon)
        elif hint and pat.family == "postfix":
            kw["service"] = hint
        try:
            return EVENT_TYPES[pat.event](ts=ts, host=hdr.host, program=hdr.program, pid=hdr.pid,
                                          source=self.source, lineno=lineno, pattern=pat.name, **kw)
        except TypeError:
            self.stats.bad_field += 1
            return None


def _default_service(family: str, daemon: str) -> str | None:
    if family == "postfix":
        return "smtp" if daemon == "smtpd" else None
    return LOGIN_SERVICE.get(daemon)


@dataclass
class ExampleResult:
    pattern: str
    origin: str
    line: str
    ok: bool
    problem: str = ""


#: separators of the daemons' own text: what an attacker repeats inside a field (a HELO name, a sender, a
#: user name) to make an unbounded part of a regex try every split
HOSTILE_TOKENS = ("; from=<", "> to=<", "> proto=", " proto=", " helo=<", "; ", ", ", ": ", "=<", "<", ">",
                  "[", "]", "(", ")", " ", "a", "=", ",", ";", ":", "user=<", ", rip=", ", lip=",
                  "sasl_username=", "sasl_method=", ", method=", "]: ", "a[1.2.3.4]", ": user=<", ", name=")


def cost_problems(patterns: PatternSet, size: int = 2000, max_growth: float = 3.0,
                  min_seconds: float = 0.002) -> list[ExampleResult]:
    """Patterns whose matching time grows faster than linearly with an attacker-chosen field: each named
    group of each matching example is replaced by long runs of the daemons' separators (``size`` and
    ``2 * size`` characters); a pattern fails when doubling the length more than ``max_growth``-folds the
    time (and the longer run takes at least ``min_seconds``). Catastrophic backtracking on one hostile
    line stalls detection for every account."""
    import time

    out: list[ExampleResult] = []
    for pat in patterns.patterns:
        worst: tuple[float, float, str] | None = None
        for ex in pat.examples:
            if ex.expect is None:
                continue
            h = split_header(ex.line)
            if h is None:
                continue
            cls = classify_program(h.program, h.msg)
            msg = cls[3] if cls is not None else h.msg  # (the message the patterns are given)
            m = pat.regex.match(msg)
            if m is None:
                continue
            for g in pat.regex.groupindex:
                a, b = m.span(g)
                if a < 0:
                    continue
                for tok in HOSTILE_TOKENS:
                    times = []
                    for n in (size, 2 * size):
                        text = msg[:a] + tok * (n // len(tok)) + msg[b:]
                        best = 1e9
                        for _ in range(2):
                            t0 = time.perf_counter()
                            pat.regex.match(text)
                            best = min(best, time.perf_counter() - t0)
                        times.append(best)
                    if (times[1] >= min_seconds and times[1] > max_growth * max(times[0], 1e-6)
                            and (worst is None or times[1] > worst[1])):
                        worst = (times[0], times[1], f"group {g!r} filled with {tok!r}")
        if worst is not None:
            t1, t2, how = worst
            out.append(ExampleResult(pat.name, pat.origin, how, False,
                                     f"matching time grows {t2 / max(t1, 1e-6):.1f}x when the field doubles "
                                     f"({t1 * 1000:.1f} ms -> {t2 * 1000:.1f} ms for {size} -> {2 * size} chars): "
                                     "bound the unbounded parts (see docs/patterns.md)"))
    return out


def run_examples(patterns: PatternSet) -> list[ExampleResult]:
    """Check every embedded example of every pattern (``acctwatch patterns test``)."""
    results = []
    for pat in patterns.patterns:
        for ex in pat.examples:
            parser = LineParser(patterns, Clock(zone="UTC", year=2026), track_unmatched=True)
            try:
                ev = parser.parse(ex.line, 1)
            except Exception as exc:  # a crash is a failed example, reported, never hidden
                results.append(ExampleResult(pat.name, pat.origin, ex.line, False, f"raised {exc!r}"))
                continue
            if ex.expect is None:
                ok = (ev is None or ev.pattern != pat.name) and parser.stats.hits.get(pat.name, 0) == 0
                problem = "" if ok else "matched but must not"
                # a line that must not match this pattern must also not yield an auth failure elsewhere
                results.append(ExampleResult(pat.name, pat.origin, ex.line, ok, problem))
                continue
            if pat.event == "ignore":
                hit = parser.stats.hits.get(pat.name, 0) == 1
                results.append(ExampleResult(pat.name, pat.origin, ex.line, hit,
                                             "" if hit else "expected this ignore pattern to take the line"))
                continue
            if ev is None or ev.pattern != pat.name:
                got = "nothing" if ev is None else f"pattern {ev.pattern!r}"
                results.append(ExampleResult(pat.name, pat.origin, ex.line, False,
                                             f"expected a match, got {got}"))
                continue
            d = ev.to_dict()
            wrong = {k: (v, d.get(k)) for k, v in ex.expect.items() if d.get(k) != v}
            problem = "; ".join(f"{k}: expected {v!r}, got {g!r}" for k, (v, g) in wrong.items())
            results.append(ExampleResult(pat.name, pat.origin, ex.line, not wrong, problem))
    return results
