"""Imports every table module so that ``SQLModel.metadata`` knows all tables (Alembic, tests)."""

from broadcast.alerts import models as alerts_models
from broadcast.auth import models as auth_models
from broadcast.content import models as content_models
from broadcast.db import metadata
from broadcast.dispatch import models as dispatch_models
from broadcast.playlists import models as playlists_models
from broadcast.playlog import outcomes as playlog_outcomes
from broadcast.regions import models as regions_models
from broadcast.scheduling import models as scheduling_models

__all__ = [
    "alerts_models",
    "auth_models",
    "content_models",
    "dispatch_models",
    "metadata",
    "playlists_models",
    "playlog_outcomes",
    "regions_models",
    "scheduling_models",
]
