"""What the fleet did, counted: the live summary and the final report read from here."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from rich.table import Table

# (attribute, label) in the order the report shows them.
_ROWS = (
    ("endpoints", "终端数 endpoints"),
    ("connected", "在线 connected"),
    ("connects", "连接次数 connects"),
    ("disconnects", "断开次数 disconnects"),
    ("outages", "模拟断网 injected outages"),
    ("rundowns_accepted", "节目单已验证 rundowns accepted"),
    ("rundowns_not_modified", "节目单未变化 rundowns 304"),
    ("audio_downloaded", "音频下载 audio downloaded"),
    ("audio_cache_hits", "音频缓存命中 audio cache hits"),
    ("audio_failures", "音频失败 audio failures"),
    ("pushes_accepted", "推送已执行 pushes acted on"),
    ("alerts_played", "紧急插播已播完 alerts completed"),
    ("alerts_interrupted", "紧急插播被中断 alerts interrupted"),
    ("alerts_ignored", "重复/已解除的插播 alerts ignored (already played, cancelled)"),
    ("played", "已播放 slots completed"),
    ("started", "开始播放 slots started"),
    ("interrupted", "中断 interrupted"),
    ("failed", "播放失败 failed"),
    ("events_accepted", "事件已上报 events accepted"),
    ("events_duplicates", "事件重复 events duplicates"),
    ("events_rejected", "事件被拒 events rejected"),
    ("events_pending", "事件待上报 events buffered"),
    ("http_errors", "HTTP 错误 http errors"),
    ("auth_failures", "认证失败 auth failures"),
)


@dataclass
class FleetStats:
    """Plain counters: the fleet runs in one event loop, so no locking is needed."""

    endpoints: int = 0
    connected: int = 0
    connects: int = 0
    disconnects: int = 0
    outages: int = 0
    rundowns_accepted: int = 0
    rundowns_not_modified: int = 0
    audio_downloaded: int = 0
    audio_cache_hits: int = 0
    audio_failures: int = 0
    pushes_accepted: int = 0
    alerts_played: int = 0
    alerts_interrupted: int = 0
    alerts_ignored: int = 0
    started: int = 0
    played: int = 0
    interrupted: int = 0
    failed: int = 0
    events_accepted: int = 0
    events_duplicates: int = 0
    events_rejected: int = 0
    events_pending: int = 0
    http_errors: int = 0
    auth_failures: int = 0
    refusals: Counter[str] = field(default_factory=Counter)
    close_codes: Counter[int] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, object]:
        data: dict[str, object] = {name: getattr(self, name) for name, _ in _ROWS}
        data["refusals"] = dict(self.refusals)
        data["close_codes"] = {str(code): n for code, n in sorted(self.close_codes.items())}
        return data

    def table(self, *, title: str) -> Table:
        table = Table(title=title)
        table.add_column("指标 metric")
        table.add_column("数量 count", justify="right")
        for name, label in _ROWS:
            table.add_row(label, f"{getattr(self, name):,}")
        refusals = ", ".join(f"{k} {v}" for k, v in sorted(self.refusals.items())) or "0"
        table.add_row("拒绝执行 refusals (forged/expired/replayed…)", refusals)
        codes = ", ".join(f"{k}×{v}" for k, v in sorted(self.close_codes.items())) or "-"
        table.add_row("关闭码 close codes", codes)
        return table
