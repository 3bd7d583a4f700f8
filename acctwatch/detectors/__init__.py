"""Detectors, one module per family, registered by name (``[detectors.NAME]`` in the config)."""

from __future__ import annotations

import importlib

from ..config import Config, ConfigError
from .base import REGISTRY, Context, Detector, Finding

#: modules holding detectors (imported on first use)
MODULES = ("geo", "spread", "volume", "auth", "history", "risk")


def load_all() -> dict[str, type[Detector]]:
    for m in MODULES:
        try:
            importlib.import_module(f".{m}", __name__)
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{m}":
                raise
    return REGISTRY


def build(config: Config) -> list[Detector]:
    """Instantiate every enabled detector with its options from the config."""
    reg = load_all()
    unknown = set(config.detectors) - set(reg)
    if unknown:
        raise ConfigError(f"unknown detector(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(reg))}")
    ctx = Context(config)
    out = []
    for name in sorted(reg):
        opts = config.detector_options(name)
        if opts.get("enabled", True) is False:
            continue
        out.append(reg[name](opts, ctx))
    return out


__all__ = ["REGISTRY", "Context", "Detector", "Finding", "build", "load_all"]
