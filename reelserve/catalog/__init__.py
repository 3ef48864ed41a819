"""The models reelserve offers: their slugs, request rules, defaults and prices."""

from reelserve.catalog.models import MODELS, ModelSpec, get_model
from reelserve.catalog.params import Element, JobParams, Shot, parse_submit
from reelserve.catalog.prices import price_millicredits

__all__ = [
    "MODELS",
    "Element",
    "JobParams",
    "ModelSpec",
    "Shot",
    "get_model",
    "parse_submit",
    "price_millicredits",
]
