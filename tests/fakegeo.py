"""A stand-in for acctwatch.geo's GeoInfo/GeoResolver in unit tests (the real one is tested in test_geo.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FakeGeoInfo:
    ip: str
    internal: bool
    country: str | None
    city: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    accuracy_km: float | None = None
    asn: int | None = None
    asn_org: str | None = None
    country_name: str | None = None

    def label(self) -> str:
        return f"{self.city or '?'}, {self.country}"

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)
