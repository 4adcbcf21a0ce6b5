"""`notices send` end to end: a dispatcher killed between the relay taking a notice and the
ledger recording it never sends that notice again; `--dry-run` changes nothing."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import select
from typer.testing import CliRunner

from config import load_settings
from config.settings import TargetSettings
from ledger.clock import SystemClock
from ledger.db import Ledger, open_ledger
from ledger.holders import add_holder
from ledger.models import AuditEntry, DeliveryAttempt, Notice, NoticeStatus
from ledger.targets import add_target
from monitor.cli import app
from tests.monitor.conftest import make_cli
from tests.takedown.servers import RecordingHandler

REPO = Path(__file__).parents[2]
NOTICES_CLI = [sys.executable, "-m", "monitor"]


class KillingHandler(RecordingHandler):
    """Records the message, then SIGKILLs ``victim`` before answering 250: the dispatcher dies
    after the relay has the notice and before the ledger knows."""

    def __init__(self) -> None:
        super().__init__()
        self.victim: int | None = None

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        reply = await super().handle_DATA(server, session, envelope)
        if self.victim is not None:
            os.kill(self.victim, signal.SIGKILL)
            await asyncio.sleep(0.2)  # let it die before the reply could reach it
        return reply


class _Relay(Controller):
    """On an ephemeral port (the stock Controller would probe port 0, not the bound one)."""

    def _trigger_server(self) -> None:
        server = cast(asyncio.Server, self.server)
        self.port = server.sockets[0].getsockname()[1]
        super()._trigger_server()


@pytest.fixture
def relay() -> Iterator[tuple[KillingHandler, int]]:
    handler = KillingHandler()
    controller = _Relay(handler, hostname="127.0.0.1", port=0)
    controller.start()
    try:
        yield handler, int(controller.port)
    finally:
        controller.stop()


def _environment(home: Path, smtp_port: int) -> dict[str, str]:
    env = make_cli(home).env
    env.update(COPYGUARD_SMTP__HOST="127.0.0.1", COPYGUARD_SMTP__PORT=str(smtp_port),
               COPYGUARD_SMTP__SECURITY="none",
               COPYGUARD_SMTP__FROM_ADDRESS="notices@rights.example")
    return env


def _queued_notice(ledger: Ledger, env: dict[str, str], reference: str = "cg-crash-1") -> int:
    clock = SystemClock()
    with ledger.write() as session:
        holder = add_holder(session, clock, name="Blue Hour Records",
                            email="legal@bluehour.example", actor="test")
        target = add_target(session, clock, TargetSettings(
            name="pirate", start_urls=("https://pirate.example/",),
            notice_email="abuse@pirate.example"), load_settings(environ=env).crawl,
            actor="test")
        notice = Notice(
            reference=reference, holder_id=holder.id, target_id=target.id, jurisdiction="dmca",
            status=NoticeStatus.QUEUED, attempts=0, recipient_key="email:abuse@pirate.example",
            recipient_name="Pirate Hosting", recipient_role="site operator",
            recipient_email="abuse@pirate.example", recipient_source="target",
            subject="DMCA notice", body_text="Please remove https://pirate.example/a.mp3",
            created_at=clock.now(), send_after=clock.now())
        session.add(notice)
        session.flush()
        return notice.id


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*NOTICES_CLI, *args], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.slow
def test_notice_not_sent_twice_after_crash_between_sending_and_recording(
        tmp_path: Path, relay: tuple[KillingHandler, int]) -> None:
    handler, port = relay
    env = _environment(tmp_path / "home", port)
    ledger = open_ledger(load_settings(environ=env).database_url)
    try:
        notice_id = _queued_notice(ledger, env)

        process = subprocess.Popen([*NOTICES_CLI, "notices", "send"], env=env, cwd=REPO,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        handler.victim = process.pid
        assert process.wait(timeout=120) == -signal.SIGKILL
        handler.victim = None
        assert len(handler.received) == 1
        with ledger.read() as session:  # the crash left it mid-attempt
            crashed = session.get(Notice, notice_id)
            assert crashed is not None and crashed.status == NoticeStatus.SENDING

        again = _run(env, "notices", "send", "--json")
        assert again.returncode == 0, again.stderr
        report = json.loads(again.stdout)
        verified = _run(env, "audit", "verify")

        assert len(handler.received) == 1, "the notice was sent a second time"
        assert report["summary"]["in-doubt"] == 1 and report["summary"]["sent"] == 0
        with ledger.read() as session:
            notice = session.get(Notice, notice_id)
            assert notice is not None and notice.status == NoticeStatus.UNCONFIRMED
            assert notice.sent_at is not None and notice.recheck_at is not None
            (attempt,) = session.execute(select(DeliveryAttempt)).scalars()
            assert attempt.outcome == "in-doubt"
            actions = list(session.execute(select(AuditEntry.action).order_by(
                AuditEntry.seq)).scalars())
        assert actions[-2:] == ["notice.sending", "notice.delivery-in-doubt"]
        assert verified.returncode == 0 and "no problems" in verified.stdout

        third = _run(env, "notices", "send", "--json")  # and not on any later run either
        assert json.loads(third.stdout)["summary"]["in-doubt"] == 0
        assert len(handler.received) == 1
    finally:
        ledger.close()


def test_dry_run_changes_nothing(tmp_path: Path, relay: tuple[KillingHandler, int]) -> None:
    handler, port = relay
    env = _environment(tmp_path / "home", port)
    ledger = open_ledger(load_settings(environ=env).database_url)
    try:
        notice_id = _queued_notice(ledger, env)
        with ledger.read() as session:
            audit_before = session.execute(select(AuditEntry.seq)).scalars().all()

        result = CliRunner().invoke(app, ["notices", "send", "--dry-run"], env=env,
                                    catch_exceptions=False)

        assert result.exit_code == 0, result.stderr
        assert f"#{notice_id} cg-crash-1 would-send: email abuse@pirate.example" in result.stdout
        assert "dry run, nothing changed: 1 would-send" in result.stdout
        assert handler.received == []
        with ledger.read() as session:
            notice = session.get(Notice, notice_id)
            assert notice is not None
            assert (notice.status, notice.attempts) == (NoticeStatus.QUEUED, 0)
            assert session.execute(select(DeliveryAttempt)).first() is None
            assert session.execute(select(AuditEntry.seq)).scalars().all() == audit_before
    finally:
        ledger.close()


def test_resend_queues_an_unconfirmed_notice_again(
        tmp_path: Path, relay: tuple[KillingHandler, int]) -> None:
    handler, port = relay
    env = _environment(tmp_path / "home", port)
    ledger = open_ledger(load_settings(environ=env).database_url)
    try:
        notice_id = _queued_notice(ledger, env)
        with ledger.write() as session:
            notice = session.get(Notice, notice_id)
            assert notice is not None
            notice.status = NoticeStatus.UNCONFIRMED
        runner = CliRunner()

        refused = runner.invoke(app, ["notices", "resend", "999", "--reason", "x"],
                                env=env)
        done = runner.invoke(app, ["notices", "resend", str(notice_id), "--reason",
                                         "the host asked for it again"], env=env,
                             catch_exceptions=False)
        sent = runner.invoke(app, ["notices", "send"], env=env, catch_exceptions=False)

        assert refused.exit_code == 1 and "no notice 999" in refused.stderr
        assert done.exit_code == 0 and "queued again" in done.stdout
        assert "1 sent" in sent.stdout
        (got,) = handler.received
        assert got.message["Message-ID"] == "<cg-crash-1@rights.example>"
        assert got.message["From"] == "notices@rights.example"
    finally:
        ledger.close()
