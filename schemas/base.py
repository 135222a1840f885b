"""The base every message model shares."""

from pydantic import BaseModel, ConfigDict


class Model(BaseModel):
    """Strict about unknown fields, so a typo in a CLI or test payload fails loudly."""

    model_config = ConfigDict(extra="forbid", frozen=False)
