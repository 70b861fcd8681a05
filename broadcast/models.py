"""Imports every table module so that ``SQLModel.metadata`` knows all tables (Alembic, tests)."""

from broadcast.alerts import models as alerts_models
from broadcast.auth import models as auth_models
from broadcast.content import models as content_models
from broadcast.db import metadata
from broadcast.dispatch import models as dispatch_models
from broadcast.playlists import models as playlists_models
from broadcast.regions import models as regions_models
from broadcast.scheduling import models as scheduling_models

__all__ = [
    "alerts_models",
    "auth_models",
    "content_models",
    "dispatch_models",
    "metadata",
    "playlists_models",
    "regions_models",
    "scheduling_models",
]
