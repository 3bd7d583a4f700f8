"""``acctwatch contrib list | install``: the files shipped in ``contrib/`` (fail2ban filter, action and
jail; the systemd unit; the logrotate rule), installed from the package itself, with the path of this
acctwatch filled in (a pipx or venv install is not /usr/local/bin)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import click

#: what -> [(file in contrib/, default destination)]
KITS: dict[str, list[tuple[str, str]]] = {
    "fail2ban": [("fail2ban/filter.d/acctwatch.conf", "/etc/fail2ban/filter.d/acctwatch.conf"),
                 ("fail2ban/action.d/acctwatch.conf", "/etc/fail2ban/action.d/acctwatch.conf"),
                 ("fail2ban/jail.d/acctwatch.conf", "/etc/fail2ban/jail.d/acctwatch.conf")],
    "systemd": [("systemd/acctwatch.service", "/etc/systemd/system/acctwatch.service")],
    "logrotate": [("logrotate/acctwatch", "/etc/logrotate.d/acctwatch")],
}


def contrib_dir() -> Path:
    """The shipped contrib/ files: inside the wheel (acctwatch/contrib) or the checkout's contrib/."""
    here = Path(__file__).resolve().parent.parent
    for cand in (here / "contrib", here.parent / "contrib"):
        if (cand / "systemd").is_dir():
            return cand
    raise click.ClickException("acctwatch's contrib files are missing from this installation: reinstall it")


def acctwatch_path() -> str:
    """The full path of the acctwatch command that runs now (the one the unit and the action must call)."""
    argv0 = Path(sys.argv[0])
    if argv0.name == "acctwatch" and argv0.exists():
        return str(argv0.resolve())
    return shutil.which("acctwatch") or "/usr/local/bin/acctwatch"


def _render(src: str, text: str, cmd: str) -> str:
    if src.endswith("acctwatch.service"):
        return text.replace("ExecStart=/usr/local/bin/acctwatch ", f"ExecStart={cmd} ")
    if src.startswith("fail2ban/action.d/"):
        return text.replace("\nacctwatch_cmd = acctwatch\n", f"\nacctwatch_cmd = {cmd}\n")
    return text


@click.group("contrib")
def cli() -> None:
    """The shipped integration files: fail2ban, systemd, logrotate."""


@cli.command("list")
def list_cmd() -> None:
    """Where the shipped files are, and where `install` puts them."""
    base = contrib_dir()
    for kit, files in KITS.items():
        for src, dest in files:
            click.echo(f"{kit:<10} {base / src}  ->  {dest}")


@cli.command("install")
@click.argument("kits", nargs=-1, required=True, type=click.Choice(sorted(KITS)))
@click.option("--dest", type=click.Path(file_okay=False),
              help="Install under this directory instead of / (e.g. to look at the files first).")
@click.option("--force", is_flag=True, help="Replace files that exist (your edits are lost).")
@click.option("--dry-run", is_flag=True, help="Say what would be written; write nothing.")
def install(kits: tuple[str, ...], dest: str | None, force: bool, dry_run: bool) -> None:
    """Install the shipped files for KITS (fail2ban, systemd, logrotate), with this acctwatch's path in the
    systemd unit's ExecStart and the fail2ban action's acctwatch_cmd. Existing files are kept unless
    --force."""
    base = contrib_dir()
    cmd = acctwatch_path()
    kept = 0
    for kit in dict.fromkeys(kits):
        for src, target in KITS[kit]:
            path = Path(dest) / target.lstrip("/") if dest else Path(target)
            if path.exists() and not force:
                click.echo(f"kept      {path} (exists; --force replaces it)")
                kept += 1
                continue
            text = _render(src, (base / src).read_text(encoding="utf-8"), cmd)
            if dry_run:
                click.echo(f"would write {path}")
                continue
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")
            except OSError as exc:
                raise click.ClickException(f"cannot write {path}: {exc.strerror} (run as root, or use --dest)") from exc
            click.echo(f"installed {path}")
    nxt = {"systemd": "systemctl daemon-reload && systemctl enable --now acctwatch",
           "fail2ban": "enable the jail in /etc/fail2ban/jail.local ([acctwatch] enabled = true), then "
                       "fail2ban-client reload",
           "logrotate": "logrotate -d /etc/logrotate.d/acctwatch (a dry run)"}
    if not dry_run:
        for kit in dict.fromkeys(kits):
            click.echo(f"next ({kit}): {nxt[kit]}")
