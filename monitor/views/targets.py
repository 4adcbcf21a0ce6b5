"""A target as ``copyguard targets list --json`` prints it and the API answers it."""

from __future__ import annotations

from pydantic import BaseModel, Field

from ledger.models import Target


class TargetView(BaseModel):
    """A site monitored, with the defaults of ``[crawl]`` filled in."""

    id: int
    name: str
    start_urls: list[str]
    allowed_domains: list[str]
    follow: list[str] = Field(description="Only page URLs matching one of these are followed.")
    deny: list[str] = Field(description="URLs matching one of these are never followed.")
    depth: int
    max_pages: int
    schedule: str = Field(description='"every 6h" or a 5-field cron line.')
    delay_seconds: float
    concurrency: int
    obey_robots: bool
    allow_private: bool
    source: str = Field(description='"config" (the config file) or "cli" (added by hand).')
    notice_email: str | None
    notice_form_url: str | None
    jurisdiction: str | None
    created_at: str = Field(description="ISO 8601, UTC.")


def target_view(target: Target) -> TargetView:
    return TargetView(
        id=target.id, name=target.name, start_urls=target.start_urls,
        allowed_domains=target.allowed_domains, follow=target.follow, deny=target.deny,
        depth=target.depth, max_pages=target.max_pages, schedule=target.schedule,
        delay_seconds=target.delay_seconds, concurrency=target.concurrency,
        obey_robots=target.obey_robots, allow_private=target.allow_private,
        source=target.source, notice_email=target.notice_email,
        notice_form_url=target.notice_form_url, jurisdiction=target.jurisdiction,
        created_at=target.created_at.isoformat())
