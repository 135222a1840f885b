"""Pydantic models shared by workflows, activities and the outside world. No I/O here."""
