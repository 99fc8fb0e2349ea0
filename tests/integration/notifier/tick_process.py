"""Fire notifier's due timers once, in a process of its own (the crash test SIGKILLs it mid-send).

SB_TEST_NOTIFIER_SETTINGS='<settings json>' python -m tests.integration.notifier.tick_process <now>
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from datetime import datetime

from notifier.bootstrap import bootstrap
from notifier.config import NotifierSettings
from sbkit.bus.local import LocalBus


async def main(now: datetime) -> None:
    """Tick once with the real HTTP sender the settings describe, at a fixed time."""
    settings = NotifierSettings(**json.loads(os.environ["SB_TEST_NOTIFIER_SETTINGS"]))
    service = bootstrap(settings, bus=LocalBus(":memory:"), clock=lambda: now, timers=False)
    try:
        await service.tick()
    finally:
        await service.runtime.stop()


if __name__ == "__main__":
    asyncio.run(main(datetime.fromisoformat(sys.argv[1])))
