"""Structured logs: one JSON object per line with the run id, the job, the step, the asset and
the tenant, for log shippers (Loki, Elasticsearch, CloudWatch).

Every run of the instance writes its log records to `PODCAST_JSON_LOG` (a file path, or `stdout`
/ `stderr` in containers; default `<data dir>/logs/dagster.jsonl`) through `JsonLinesHandler`,
which `dagster.yaml` attaches to the instance (`python_logs`): runs started by the demo, the UI,
schedules and sensors alike. The Dagster logger `json` (in the Definitions next to the console
logger) does the same for a run whose config names it. Pass the tenant as `extra`:
`context.log.info("...", extra={"tenant": tenant_id})`.
"""

import json
import logging
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg

_handlers: dict[str, logging.Handler] = {}
_lock = threading.Lock()


def _asset_of(meta: dict) -> str | None:
    event = meta.get("dagster_event")
    key = getattr(event, "asset_key", None) if event is not None else None
    if key is not None:
        return key.to_user_string()
    step = meta.get("step_key")
    return step.replace("__", "/") if step else None


class JsonFormatter(logging.Formatter):
    """Formats a Dagster log record (or any record) as one JSON line."""

    def format(self, record: logging.LogRecord) -> str:
        from dagster._core.log_manager import LOG_RECORD_METADATA_ATTR

        meta = getattr(record, LOG_RECORD_METADATA_ATTR, None) or {}
        event = meta.get("dagster_event")
        doc = {
            "ts": datetime.fromtimestamp(record.created, tz=timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "message": meta.get("orig_message") or record.getMessage(),
            "run_id": meta.get("run_id"),
            "job": meta.get("job_name"),
            "step": meta.get("step_key"),
            "asset": getattr(record, "asset", None) or _asset_of(meta),
            "tenant": getattr(record, "tenant", None),
            "event": getattr(event, "event_type_value", None) if event is not None else None,
            "logger": record.name if not meta else "dagster",
        }
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps({k: v for k, v in doc.items() if v is not None}, default=str)


def handler_for(target: str) -> logging.Handler:
    """One handler per target, shared by every run in the process."""
    with _lock:
        if target not in _handlers:
            if target in ("stdout", "stderr"):
                handler: logging.Handler = logging.StreamHandler(sys.stdout if target == "stdout" else sys.stderr)
            else:
                Path(target).parent.mkdir(parents=True, exist_ok=True)
                handler = logging.FileHandler(target, encoding="utf-8")
            handler.setFormatter(JsonFormatter())
            _handlers[target] = handler
        return _handlers[target]


def default_target() -> str:
    from resources.settings import get_settings

    settings = get_settings()
    return settings.json_log or str(settings.data_dir / "logs" / "dagster.jsonl")


class JsonLinesHandler(logging.Handler):
    """The instance's handler (`dagster.yaml`, `python_logs.dagster_handler_config`): each record
    as a JSON line to `target`, else `PODCAST_JSON_LOG`, else `<data dir>/logs/dagster.jsonl`."""

    def __init__(self, target: str | None = None, level: int | str = logging.DEBUG):
        super().__init__(level)
        self.target = target

    def emit(self, record: logging.LogRecord) -> None:
        try:
            handler_for(self.target or default_target()).handle(record)
        except Exception:  # noqa: BLE001 - logging must never fail a run
            self.handleError(record)


@dg.logger(
    config_schema={"log_level": dg.Field(str, is_required=False, default_value="DEBUG"),
                   "target": dg.Field(str, is_required=False, description="file path, stdout or stderr")},
    description="JSON lines with run id, job, step, asset and tenant.",
)
def json_logger(init_context: dg.InitLoggerContext) -> logging.Logger:
    config = init_context.logger_config
    logger = logging.Logger("podcast_analytics.json", level=config["log_level"].upper())
    logger.addHandler(handler_for(config.get("target") or default_target()))
    return logger


LOGGERS = {"console": dg.colored_console_logger, "json": json_logger}
