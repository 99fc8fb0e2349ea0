"""The wallboard in a real headless Chromium (Debian's `chromium` + `chromium-driver`, via Selenium).

A real analytics process (`python -m analytics`, uvicorn) consumes its local bus file; the test
appends events to that bus as an adapter would, and watches the open page redraw itself from
the server-sent events: tiles and their lights, charts, reasons, aging backlog, staffing gap.
The page shows a fixed moment (`?at=`) so the current interval does not roll over mid-test.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from analytics.config import AnalyticsSettings
from sbcontracts.catalog import encode
from sbcontracts.envelope import CloudEvent, EventData, new_event
from sbcontracts.events.common import Channel
from sbcontracts.events.ingest import (
    CallAbandoned,
    CallAnswered,
    CallCompleted,
    CallData,
    CallOffered,
)
from sbcontracts.events.routing import (
    AgentPresenceChanged,
    Category,
    Priority,
    Sentiment,
    TicketClassified,
    TicketOpened,
)
from sbcontracts.topics import partition_key
from sbkit.auth import Keyring, mint
from sbkit.bus.ports import OutgoingRecord
from sbkit.wiring import build_bus
from tests.conftest import free_port
from tests.fakes.processes import sigterm_and_wait

AT = datetime(2026, 11, 20, 9, 10, tzinfo=UTC)  # the moment the wallboard shows
TENANT = "acme"


@pytest.fixture
def analytics_process(tmp_path: Path) -> Iterator[tuple[str, AnalyticsSettings]]:
    """`python -m analytics` on SQLite and a local bus file; its URL and settings."""
    port = free_port()
    settings = AnalyticsSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/analytics.db",
        bus="local",
        local_bus_path=str(tmp_path / "bus.db"),
        auth_key_dir=str(tmp_path / "keys"),
        port=port,
        live_refresh_ms=200,
    )
    Keyring.load(settings.auth_key_dir)  # create the keys before the server reads them
    env = {
        **os.environ,
        "SB_DATABASE_URL": settings.database_url,
        "SB_BUS": "local",
        "SB_LOCAL_BUS_PATH": settings.local_bus_path,
        "SB_AUTH_KEY_DIR": settings.auth_key_dir,
        "SB_PORT": str(port),
        "SB_LIVE_REFRESH_MS": "200",
        "SB_LOG_LEVEL": "WARNING",
    }
    log = (tmp_path / "analytics.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "analytics"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc, tmp_path / "analytics.log")
        yield url, settings
    finally:
        sigterm_and_wait(proc, settings=settings, log=tmp_path / "analytics.log")
        log.close()


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    for _ in range(300):
        assert proc.poll() is None, f"analytics exited: {log.read_text()[-2000:]}"
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError):
            pass
        time.sleep(0.1)
    raise AssertionError("analytics did not become healthy")


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    """Debian's Chromium, headless, through its own chromedriver (nothing downloaded)."""
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    assert chromium and driver, "install the apt packages chromium and chromium-driver"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    session = webdriver.Chrome(service=Service(executable_path=driver), options=options)
    try:
        yield session
    finally:
        session.quit()


def _publish(settings: AnalyticsSettings, *events: CloudEvent[Any]) -> None:
    """Append events to the server's bus file, as an adapter or the CLI would."""
    records = [
        OutgoingRecord(e.data.topic, partition_key(TENANT, e.subject or e.id), encode(e))
        for e in events
    ]
    asyncio.run(build_bus(settings).publish(records))


def _event(data: EventData, key: str) -> CloudEvent[Any]:
    return new_event(data, tenant_id=TENANT, source="test", subject=key)


def _call(cls: type[CallData], call_id: str, minutes_ago: float, **kw: Any) -> CloudEvent[Any]:
    at = AT - timedelta(minutes=minutes_ago)
    return _event(cls(call_id=call_id, queue="sales", occurred_at=at, **kw), call_id)


def _calls(first: int, waits: list[tuple[str, int]]) -> list[CloudEvent[Any]]:
    out = []
    for i, (kind, wait_ms) in enumerate(waits, start=first):
        out.append(_call(CallOffered, f"c{i}", 8))
        cls = CallAnswered if kind == "answered" else CallAbandoned
        out.append(_call(cls, f"c{i}", 7, wait_ms=wait_ms))
        if kind == "answered":
            out.append(_call(CallCompleted, f"c{i}", 2, talk_ms=240_000, agent_id="ola"))
    return out


def _case(ticket: str, hours_ago: float, category: Category) -> list[CloudEvent[Any]]:
    at = AT - timedelta(hours=hours_ago)
    common: dict[str, Any] = {
        "ticket_id": ticket,
        "customer_id": f"cust-{ticket}",
        "queue": "sales",
    }
    common |= {"channel": Channel.EMAIL, "occurred_at": at}
    classified = TicketClassified(
        **common, category=category, sentiment=Sentiment.NEUTRAL, priority=Priority.NORMAL
    )
    return [_event(TicketOpened(**common), ticket), _event(classified, ticket)]


def _tile(page: WebDriver, kpi: str) -> tuple[str, str]:
    tile = page.find_element(By.CSS_SELECTOR, f'.tile[data-kpi="{kpi}"]')
    return tile.find_element(By.CSS_SELECTOR, ".v").text, str(tile.get_attribute("data-colour"))


def _until(page: WebDriver, check: Any, what: str) -> None:
    def probe(d: WebDriver) -> Any:
        try:
            return check(d)
        except Exception:  # noqa: BLE001 - the page is being redrawn; look again
            return False

    WebDriverWait(page, 20, poll_frequency=0.1).until(probe, message=what)


AGING = {"under_1h": "2", "1h_4h": "1", "4h_24h": "0", "1d_3d": "0", "over_3d": "0"}


def _aging(page: WebDriver) -> dict[str, str]:
    rows = page.find_elements(By.CSS_SELECTOR, "#aging tr")
    return {str(r.get_attribute("data-age")): r.text.split()[-1] for r in rows}


def _gap_is_consistent(page: WebDriver) -> bool:
    text, gap = page.execute_script(  # read both at once: a redraw may come in between
        "const g = document.getElementById('gap'); return [g.textContent, g.dataset.gap];"
    )
    needed = int(text.split("needed ")[1].split()[0])
    return "online 1" in text and needed >= 1 and gap == str(1 - needed)


def test_tiles_change_by_themselves_as_events_arrive(
    analytics_process: tuple[str, AnalyticsSettings], browser: WebDriver
) -> None:
    url, settings = analytics_process
    _, token = mint(
        Keyring.load(settings.auth_key_dir), tenant_id=TENANT, scopes=["kpis:read"], ttl_s=600
    )
    browser.get(f"{url}/dashboard?{urlencode({'at': AT.isoformat()})}#token={token}")
    _until(browser, lambda d: _tile(d, "offered") == ("0", "none"), "empty wallboard")
    browser.execute_script("window.notReloaded = true")

    # 2 answered within 20 s, 1 abandoned after 40 s: F1 service level 2/3, under red at 70%
    _publish(
        settings, *_calls(0, [("answered", 5_000), ("answered", 8_000), ("abandoned", 40_000)])
    )
    _until(browser, lambda d: _tile(d, "offered") == ("3", "none"), "offered tile counts 3")
    _until(browser, lambda d: _tile(d, "service_level") == ("66.7%", "red"), "SL red at 2/3")

    # 3 more answered fast: 5/6 = 83.3%, green at 80%; the agent is online for the gap
    online = AgentPresenceChanged(
        agent_id="ola", presence="online", occurred_at=AT - timedelta(hours=1)
    )
    _publish(settings, _event(online, "ola"), *_calls(3, [("answered", 1_000)] * 3))
    _publish(settings, *_case("t1", 2, Category.BILLING), *_case("t2", 0.1, Category.BILLING))
    _publish(settings, *_case("t3", 0.1, Category.RETURNS))
    _until(browser, lambda d: _tile(d, "service_level") == ("83.3%", "green"), "SL turns green")
    _until(browser, lambda d: _tile(d, "backlog")[0] == "3", "backlog of 3 open cases")
    # each topic is consumed on its own: wait for every panel to show its final state
    _until(
        browser,
        lambda d: (
            d.find_element(By.ID, "reasons").text.splitlines() == ["billing: 2", "returns: 1"]
        ),
        "top reasons",
    )
    _until(browser, lambda d: _aging(d) == AGING, f"aging backlog {AGING}")
    _until(browser, _gap_is_consistent, "staffing gap: online 1 minus the agents needed")
    for chart in ("sl", "backlog"):
        points = browser.find_element(By.CSS_SELECTOR, f"#{chart} polyline").get_attribute("points")
        assert points and points.strip(), chart
    assert browser.execute_script("return window.notReloaded") is True  # redrawn, not reloaded
