"""Typed settings, read from the environment (prefix ``BROADCAST_``) and an optional ``.env``."""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import Field, computed_field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# The bootstrap admin's password on a laptop; production mode refuses to start with it.
DEFAULT_ADMIN_PASSWORD = "admin123"  # noqa: S105 - the known default we refuse in production


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BROADCAST_", env_file=".env", extra="ignore")

    mode: Literal["development", "production"] = "development"
    data_dir: Path = PROJECT_ROOT / "data"
    asset_dir: Path = PROJECT_ROOT / "audio_assets"
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default is an SQLite file in data_dir"
    )
    redis_url: str | None = Field(default=None, description="None means the in-process broker")
    timezone: str = "Asia/Shanghai"
    secret_key: str = Field(default="", description="signs access tokens; empty: a per-install key")
    admin_password: str = DEFAULT_ADMIN_PASSWORD
    access_token_minutes: int = 8 * 60
    login_max_failures: int = 5
    login_window_s: int = 300
    host: str = "127.0.0.1"
    port: int = 8000

    # Audio: the house format and its loudness (see docs/architecture.md, "Audio").
    audio_store_dir: Path | None = Field(default=None, description="default: <asset_dir>/store")
    loudness_target_lufs: float = -16.0
    true_peak_max_dbtp: float = -1.5
    loudness_range_lu: float = 11.0
    audio_sample_rate: int = 48000
    audio_bitrate_kbps: int = 128
    clip_max_duration_s: int = 30 * 60
    clip_max_bytes: int = 200 * 1024 * 1024
    ffmpeg_timeout_s: int = 600

    # Text-to-speech: engines tried in this order when a bulletin names none.
    tts_engines: list[str] = ["espeak"]
    gtts_timeout_s: float = 15.0
    gtts_retries: int = 3
    bulletin_max_chars: int = 2000
    render_workers: int = 1

    # Scheduling: the city's quiet hours (villages may override) and how far ahead rundowns go.
    quiet_hours: str = "22:00-06:00"
    rundown_horizon_h: int = 48
    scheduler_embedded: bool = Field(
        default=False, description="run the scheduler inside `broadcast serve` (the embedded demo)"
    )

    # Devices: presence, signatures and the gateway (see docs/device-protocol.md).
    device_offline_after_s: int = 60
    device_ping_interval_s: int = 20
    signature_ttl_s: int = 3600
    gateway_queue_size: int = 256

    # Play log: whole UTC months kept (the current one included); older partitions are dropped.
    play_log_retention_months: int = Field(default=13, ge=1, le=120)

    # Alerts: which levels (1 = I, red ... 4 = IV, blue) need a second person to approve.
    alert_approval_levels: list[int] = [1, 2]
    # CAP 1.2: our <sender> in exported messages; receivers tell sources apart by it, so give
    # each install its own (CAP forbids spaces, commas, "<" and "&" in it).
    cap_sender: str = Field(
        default="cloud-broadcast.local", min_length=1, max_length=255, pattern=r"^[^\s,<&]+$"
    )

    # Reconciliation and reports (see docs/architecture.md, "Play logs and reports").
    play_log_grace_min: int = Field(default=15, ge=0, description="judge a slot this long after it ended")
    play_log_recheck_h: int = Field(default=48, ge=1, description="re-judge slots this recent (late uploads)")
    play_log_chronic_online_pct: float = Field(default=50.0, ge=0, le=100, description="below: chronic")
    play_log_chronic_offline_days: int = Field(default=3, ge=1, description="offline this long: chronic")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'broadcast.db'}"

    @property
    def store_dir(self) -> Path:
        return self.audio_store_dir or self.asset_dir / "store"

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def production_problems(self) -> list[str]:
        """What keeps this configuration from being safe to run in production mode."""
        problems = []
        if len(self.secret_key) < 32:
            problems.append("BROADCAST_SECRET_KEY is unset or shorter than 32 characters")
        if self.admin_password == DEFAULT_ADMIN_PASSWORD:
            problems.append("BROADCAST_ADMIN_PASSWORD is the default")
        return problems


def with_secret_key(settings: Settings) -> Settings:
    """Development convenience: without a configured key, use one generated once per data dir.

    A random key (never a shared default) means tokens from one install cannot be forged on
    another; keeping it in the data dir means logins survive a restart.
    """
    if settings.secret_key or settings.mode == "production":
        return settings
    path = settings.data_dir / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return settings.model_copy(update={"secret_key": path.read_text().strip()})


@lru_cache
def get_settings() -> Settings:
    return Settings()
