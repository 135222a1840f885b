"""The demo company's stores and catalogue, read from `localstack/demo_business.json`."""

from __future__ import annotations

import json
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

BUSINESS_FILE = "demo_business.json"


class Store(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    code: str
    name: str
    region: str
    order_type: str
    """`goods` or `service`: decides which catalogue items the store sells."""
    address: str
    phone: str
    latitude: float
    longitude: float
    delivery_radius_km: float
    self_delivery: bool
    """False: platform couriers deliver, so the simulator sends courier status pushes."""


class CatalogueItem(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    sku: str
    name: str
    kind: str
    scope: str
    price: Decimal
    box_price: Decimal = Decimal(0)
    prohibited: bool = False


class Business(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    stores: tuple[Store, ...]
    catalogue: tuple[CatalogueItem, ...]

    def store(self, code: str) -> Store:
        for store in self.stores:
            if store.code == code:
                return store
        raise KeyError(f"unknown store {code!r}")

    def items_for(self, store: Store, *, prohibited: bool = False) -> list[CatalogueItem]:
        return [
            item
            for item in self.catalogue
            if item.kind == store.order_type and item.prohibited == prohibited
        ]

    def sku(self, sku: str) -> CatalogueItem | None:
        return next((item for item in self.catalogue if item.sku == sku), None)


def _default_text() -> str:
    local = Path(__file__).resolve().parents[2] / "localstack" / BUSINESS_FILE
    if local.is_file():
        return local.read_text(encoding="utf-8")
    return resources.files("starter").joinpath(BUSINESS_FILE).read_text(encoding="utf-8")


def load_business(path: str | Path | None = None) -> Business:
    """The demo company by default; another file of the same shape when given."""
    text = Path(path).read_text(encoding="utf-8") if path else _default_text()
    data: dict[str, Any] = json.loads(text)
    return Business.model_validate(data)
