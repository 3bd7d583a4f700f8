"""Wiring shared by the commands: config + patterns + geo + store + engine, built the same way for
``replay`` and ``run`` so both see the same pipeline."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from .config import Config
from .engine import Engine
from .parsing import PatternSet

if TYPE_CHECKING:
    from .store import Store

log = logging.getLogger(__name__)


def open_geo(config: Config) -> Any:
    from .geo import GeoResolver

    return GeoResolver.open(config.geoip_db, treat_documentation_as_public=config.geoip_documentation_public)


def load_patterns(config: Config) -> PatternSet:
    return PatternSet.load(config.patterns_dirs)


def build_engine(config: Config, store: Store | None, geo: Any | None = None) -> Engine:
    return Engine(config, store=store, geo=geo if geo is not None else open_geo(config))
