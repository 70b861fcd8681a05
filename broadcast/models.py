"""Imports every table module so that ``SQLModel.metadata`` knows all tables (Alembic, tests)."""

from broadcast.auth import models as auth_models
from broadcast.db import metadata
from broadcast.regions import models as regions_models

__all__ = ["auth_models", "metadata", "regions_models"]
