"""Refusals of the hub's API: a 4xx with ``{"detail": ..., "ids": [...]}``."""

from __future__ import annotations


class Refused(Exception):
    """A request the hub will not act on; becomes a 4xx Problem response."""

    def __init__(self, status: int, detail: str, ids: list[str] | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.ids = ids or []
