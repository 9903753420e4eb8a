"""Sending a generated report: by email over SMTP (HTML body, PDF and XLSX attached) and to a
webhook (a JSON notice with the files' URLs and checksums, signed with HMAC-SHA256 when a
secret is configured). Both retry with backoff and jitter (stamina); every attempt is a row of
`reports.deliveries`, so failures stay visible after the run.

A webhook URL is used as configured and stored, logged and reported only redacted
(`resources.redaction`): its credentials stay in the configuration. Text from the data (a
campaign's name in the subject) never reaches an e-mail header with a line break in it."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import smtplib
import ssl
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import dagster as dg
import httpx
import stamina
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from assets.reports.generate import GeneratedReport
from resources.timings import Timing, record_timings
from resources.redaction import redact_text, redact_url
from resources.report_store import ReportStoreResource
from resources.warehouse import WarehouseResource

ATTACHED = {"pdf": "application/pdf",
            "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
RETRYABLE_STATUS = {408, 425, 429, 500, 502, 503, 504}


class DeliveryFailed(Exception):
    """A delivery that is not worth retrying, or whose attempts ran out."""


class _Transient(Exception):
    pass


@dataclass(frozen=True)
class DeliveryOutcome:
    channel: str
    target: str
    succeeded: bool
    attempts: int
    error: str | None


class DeliveryConfigError(Exception):
    """The delivery settings cannot be used as they are. `problems`: for a recipients file that
    does not validate, pydantic's errors without the input values (which may hold credentials)."""

    def __init__(self, message: str, problems: list[dict] | None = None):
        super().__init__(message)
        self.problems = problems or []


EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


class RecipientRule(BaseModel):
    """Who gets a subject's reports: a campaign's own, or a sponsor's (its roll-up and the report
    of every campaign it runs)."""

    model_config = ConfigDict(extra="forbid")

    tenant: str
    sponsor: str | None = None
    campaign: str | None = None
    email: list[str] = []
    webhook_url: str | None = None

    @model_validator(mode="after")
    def _one_subject_and_a_channel(self) -> RecipientRule:
        if (self.sponsor is None) == (self.campaign is None):
            raise ValueError("give either a sponsor or a campaign")
        if not self.email and not self.webhook_url:
            raise ValueError("give an email list or a webhook_url")
        bad = [address for address in self.email if not EMAIL.fullmatch(address)]
        if bad:
            raise ValueError(f"not an email address: {', '.join(bad)}")
        if self.webhook_url is not None and not self.webhook_url.startswith(("https://", "http://")):
            raise ValueError(f"webhook_url must be an http(s) URL: {redact_url(self.webhook_url)}")
        return self

    def applies_to(self, tenant: str, sponsor_id: str, campaign_id: str | None) -> bool:
        if self.tenant != tenant:
            return False
        return self.campaign == campaign_id if self.campaign is not None else self.sponsor == sponsor_id


class _RecipientsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    recipients: list[RecipientRule] = []


def load_recipients(path: str | Path) -> list[RecipientRule]:
    """The recipients file (`PODCAST_REPORT_RECIPIENTS_FILE`), e.g.::

        recipients:
          - {tenant: northwind, sponsor: sp-acme, email: [marketing@acme.example]}
          - {tenant: northwind, campaign: cmp-0001, webhook_url: https://agency.example/hooks/reports}

    A file that cannot be read or has a bad entry is an error that names the file and the entry:
    no report goes out to a guessed list."""
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
        return _RecipientsFile.model_validate(data).recipients
    except (OSError, yaml.YAMLError) as exc:
        raise DeliveryConfigError(f"report recipients file {path}: {exc}") from exc
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False, include_context=False)
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
        # from None: pydantic's own message quotes the input (a webhook URL with its credentials)
        raise DeliveryConfigError(f"report recipients file {path}: {problems}", errors) from None


class ReportDeliveryResource(dg.ConfigurableResource):
    """SMTP server and webhook settings, and who gets which reports (`recipients_file`, see
    `load_recipients`). Secrets come from the environment (`dg.EnvVar`)."""

    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_security: str = Field(default="none", pattern="^(none|starttls|ssl)$")
    sender: str = "reports@podcast-analytics.invalid"
    webhook_secret: str | None = None
    timeout_seconds: float = 10.0
    max_attempts: int = Field(default=3, ge=1)
    wait_initial_seconds: float = 0.5
    wait_max_seconds: float = 10.0
    recipients_file: str | None = None

    def rules(self) -> list[RecipientRule]:
        """The recipients file's rules (none without a file); DeliveryConfigError when it is bad."""
        return load_recipients(self.recipients_file) if self.recipients_file else []


def recipients_for(rules: list[RecipientRule], tenant: str, sponsor_id: str,
                   campaign_id: str | None) -> tuple[list[str], list[str]]:
    """(email addresses, webhook URLs) the rules give this subject's reports."""
    matching = [r for r in rules if r.applies_to(tenant, sponsor_id, campaign_id)]
    return ([a for r in matching for a in r.email], [r.webhook_url for r in matching if r.webhook_url])


def _retry(resource: ReportDeliveryResource):
    return stamina.retry_context(
        on=_Transient, attempts=resource.max_attempts, wait_initial=resource.wait_initial_seconds,
        wait_max=resource.wait_max_seconds, wait_jitter=resource.wait_initial_seconds,
    )


def _record(warehouse: WarehouseResource, report_id: str, channel: str, target: str, attempt: int, error: str | None,
            batch_id: str | None) -> None:
    with warehouse.connect() as conn:
        conn.execute(
            "insert into reports.deliveries (report_id, channel, target, attempt, succeeded, error, _batch_id) "
            "values (%s, %s, %s, %s, %s, %s, %s)", (report_id, channel, target, attempt, error is None, error, batch_id))


def _attempts(resource, warehouse, report, channel, target, send, batch_id) -> DeliveryOutcome:
    attempt_no = 0
    content = report.content
    timings: list[Timing] = []

    def timed(outcome: str, seconds: float) -> Timing:
        return Timing("delivery_attempt", seconds, outcome, content.tenant_id, report.report_id, f"report_{channel}")

    started = time.perf_counter()
    try:
        for attempt in _retry(resource):
            with attempt:
                attempt_no += 1
                attempt_started = time.perf_counter()
                try:
                    send()
                except (_Transient, DeliveryFailed) as exc:
                    timings.append(timed("failure", time.perf_counter() - attempt_started))
                    _record(warehouse, report.report_id, channel, target, attempt_no, str(exc), batch_id)
                    raise
                timings.append(timed("success", time.perf_counter() - attempt_started))
                _record(warehouse, report.report_id, channel, target, attempt_no, None, batch_id)
    except (_Transient, DeliveryFailed) as exc:
        record_timings(warehouse, [*timings, Timing("report_delivery", time.perf_counter() - started, "failure",
                                                        content.tenant_id, report.report_id, channel)], batch_id)
        return DeliveryOutcome(channel, target, False, attempt_no, str(exc))
    record_timings(warehouse, [*timings, Timing("report_delivery", time.perf_counter() - started, "success",
                                                    content.tenant_id, report.report_id, channel)], batch_id)
    return DeliveryOutcome(channel, target, True, attempt_no, None)


_CONTROL = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]+")


def header_text(text: str) -> str:
    """Text from the data made fit for an e-mail header: line breaks and other control
    characters become one space (no header can be injected), at most 200 characters."""
    return _CONTROL.sub(" ", text).strip()[:200]


def email_message(resource: ReportDeliveryResource, store: ReportStoreResource, report: GeneratedReport,
                  recipients: list[str]) -> EmailMessage:
    bad = [address for address in recipients if not EMAIL.fullmatch(address)]
    if bad:
        raise DeliveryFailed(f"not an email address: {', '.join(map(repr, bad))}")
    content = report.content
    message = EmailMessage()
    message["Subject"] = header_text(f"{content.title} ({content.period_start} to {content.period_end})")
    message["From"] = resource.sender
    message["To"] = ", ".join(recipients)
    message["Message-ID"] = make_msgid(domain="podcast-analytics.invalid")
    freshness = "; ".join(f"{k} {v}" for k, v in content.freshness.items())
    message.set_content(
        f"{content.title}\n{content.subtitle}\n\nAttribution model: {content.attribution_model}\n"
        f"Data freshness: {freshness}\n\n" + "\n".join(f"{k}: {v}" for k, v in content.kpi_texts())
    )
    formats = {f.format: f for f in report.files if not f.part}
    if "html" in formats:
        message.add_alternative(store.read(formats["html"].url).decode(), subtype="html")
    for fmt, mime in ATTACHED.items():
        if fmt in formats:
            maintype, subtype = mime.split("/")
            message.add_attachment(store.read(formats[fmt].url), maintype=maintype, subtype=subtype,
                                   filename=f"{report.report_id}.{fmt}")
    return message


def send_email(resource: ReportDeliveryResource, store: ReportStoreResource, warehouse: WarehouseResource,
               report: GeneratedReport, recipients: list[str], batch_id: str | None = None) -> DeliveryOutcome:
    try:
        message = email_message(resource, store, report, recipients)
    except DeliveryFailed as exc:
        _record(warehouse, report.report_id, "email", header_text(", ".join(recipients)), 1, str(exc), batch_id)
        return DeliveryOutcome("email", header_text(", ".join(recipients)), False, 1, str(exc))

    def send() -> None:
        try:
            if resource.smtp_security == "ssl":
                client = smtplib.SMTP_SSL(resource.smtp_host, resource.smtp_port, timeout=resource.timeout_seconds,
                                          context=ssl.create_default_context())
            else:
                client = smtplib.SMTP(resource.smtp_host, resource.smtp_port, timeout=resource.timeout_seconds)
            with client:
                if resource.smtp_security == "starttls":
                    client.starttls(context=ssl.create_default_context())
                if resource.smtp_username:
                    client.login(resource.smtp_username, resource.smtp_password or "")
                refused = client.send_message(message)
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryFailed(f"smtp authentication failed: {exc.smtp_code}") from exc
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryFailed(f"every recipient refused: {sorted(exc.recipients)}") from exc
        except smtplib.SMTPResponseException as exc:
            if 500 <= exc.smtp_code < 600:
                raise DeliveryFailed(f"smtp {exc.smtp_code}: {exc.smtp_error!r}") from exc
            raise _Transient(f"smtp {exc.smtp_code}: {exc.smtp_error!r}") from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise _Transient(f"smtp: {type(exc).__name__}: {exc}") from exc
        if refused:
            raise DeliveryFailed(f"recipients refused: {sorted(refused)}")

    return _attempts(resource, warehouse, report, "email", ", ".join(recipients), send, batch_id)


def webhook_payload(report: GeneratedReport) -> dict:
    content = report.content
    return {
        "event": "report.generated", "report_id": report.report_id, "scope": content.scope,
        "tenant_id": content.tenant_id, "sponsor_id": content.sponsor_id, "campaign_id": content.campaign_id,
        "title": content.title, "attribution_model": content.attribution_model,
        "period_start": content.period_start.isoformat(), "period_end": content.period_end.isoformat(),
        "data_freshness": content.freshness, "generated_at": report.generated_at.isoformat(),
        "expires_at": report.expires_at.isoformat(),
        "files": [{"format": f.format, "part": f.part, "url": f.url, "size_bytes": f.size_bytes,
                   "sha256": f.checksum_sha256} for f in report.files],
    }


def send_webhook(resource: ReportDeliveryResource, warehouse: WarehouseResource, report: GeneratedReport, url: str,
                 batch_id: str | None = None) -> DeliveryOutcome:
    body = json.dumps(webhook_payload(report), sort_keys=True).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "podcast-analytics/0.1 (+report webhook)",
               "Idempotency-Key": report.report_id}
    if resource.webhook_secret:
        digest = hmac.new(resource.webhook_secret.encode(), body, hashlib.sha256).hexdigest()
        headers["X-Report-Signature"] = f"sha256={digest}"

    def send() -> None:
        try:
            response = httpx.post(url, content=body, headers=headers, timeout=resource.timeout_seconds,
                                  follow_redirects=False)
        except httpx.InvalidURL as exc:  # messages may quote the URL: redacted
            raise DeliveryFailed(redact_text(f"webhook: {type(exc).__name__}: {exc}", url)) from None
        except httpx.HTTPError as exc:
            raise _Transient(redact_text(f"webhook: {type(exc).__name__}: {exc}", url)) from None
        if response.status_code in RETRYABLE_STATUS:
            raise _Transient(f"webhook answered {response.status_code}")
        if not 200 <= response.status_code < 300:
            raise DeliveryFailed(f"webhook answered {response.status_code}")

    return _attempts(resource, warehouse, report, "webhook", redact_url(url), send, batch_id)
