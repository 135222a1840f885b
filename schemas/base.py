"""The base every message model shares."""

from pydantic import BaseModel, ConfigDict


class Model(BaseModel):
    """Strict about unknown fields, so a typo in a CLI or test payload fails loudly. A
    validation error names the field and what is wrong, never the value: a message holds a
    customer's name, phone and address, and errors reach logs and answers."""

    model_config = ConfigDict(extra="forbid", frozen=False, hide_input_in_errors=True)
