"""A bot's process as this host's operating system sees it (for GET /bots/{bot}/process)."""

from __future__ import annotations

from datetime import UTC, datetime

from bots import workspace
from bots.models import Bot
from bots.selectors import runs_here


def process_info(bot: Bot) -> dict[str, object]:
    """pid, status, start time, memory and CPU of the bot's process, if it is ours and alive."""
    import psutil

    from bots.gateway.supervisor import is_our_process

    if not bot.pid:
        return {"pid": None, "status": "not_running"}
    if not runs_here(bot):
        return {"pid": bot.pid, "status": bot.status, "host": bot.host, "detail": "runs on another host"}
    try:
        process = psutil.Process(bot.pid)
        if not is_our_process(
            process, create_time=bot.pid_create_time, marker=str(workspace.workspace_for(bot.pk).config)
        ):
            return {"pid": bot.pid, "status": "not_running"}
        with process.oneshot():
            return {
                "pid": process.pid, "status": process.status(),
                "start_time": datetime.fromtimestamp(process.create_time(), UTC).isoformat(),
                "memory_usage_mb": round(process.memory_info().rss / 1024 / 1024, 1),
                "cpu_percent": process.cpu_percent(interval=0.1),
                "children": len(process.children(recursive=True)),
            }  # fmt: skip
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return {"pid": bot.pid, "status": "not_running"}
