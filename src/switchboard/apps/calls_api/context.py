"""What every Calls API router needs: its dependencies and a few shared helpers."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated

import httpx
from fastapi import Query

from switchboard.apps.calls_api.configuration_ids import ConfigurationIds
from switchboard.apps.calls_api.outbox import Outbox
from switchboard.apps.calls_api.subscriptions import SubscriptionIndex
from switchboard.core.control import CallControl
from switchboard.httpapi.urls import UrlPolicy
from switchboard.store.base import Database

log = logging.getLogger(__name__)

MAX_PAGE = 2**31 - 1
PageParam = Annotated[int, Query(ge=0, le=MAX_PAGE, description="Page number, from 0.")]
SizeParam = Annotated[int, Query(ge=1, le=1000, description="Results per page.")]


@dataclass(slots=True)
class Context:
    control: CallControl
    db: Database
    http: httpx.AsyncClient
    files_dir: Path
    urls: UrlPolicy
    """Where notify URLs may lead."""
    clock: Callable[[], datetime]
    subscriptions: SubscriptionIndex
    configurations: ConfigurationIds
    outbox: Outbox

    @property
    def uploads_dir(self) -> Path:
        return self.files_dir / "uploads"
