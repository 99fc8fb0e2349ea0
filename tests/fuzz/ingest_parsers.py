"""Fuzz target (issue 10): every ingest parser, from the raw body to the normalised event.

`python -m tests.fuzz.ingest_parsers --inputs 100000` (`make fuzz`) feeds each target that many
inputs: real provider payloads mutated byte-wise (flips, inserts of tokens that matter to the
format, deletions, duplications, splices, blow-ups) and structure-wise (a JSON node or a form
field replaced by a hostile value). Each input runs the whole path a webhook runs before any
database work: read the body, parse, normalise every message (handles, text, language) and
receipt. Only declared errors may escape (ParseError; for adapter records the InvalidEvent that
sends them to the DLQ), and no input may take over 1 s of CPU. It prints counts per target and
the slowest input. Mutation-based and seeded (reproducible): Hypothesis costs too much per
example for 10^5 inputs per target; the Hypothesis properties in tests/unit/ingest stay.
"""

from __future__ import annotations

import argparse
import gc
import random
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from ingest.domain.errors import ParseError
from ingest.domain.model import Batch
from ingest.domain.providers.adapter import from_adapter
from ingest.domain.providers.email_mime import parse_mime
from ingest.domain.providers.fields import load_form
from ingest.domain.providers.mailgun import parse_mailgun, read_form
from ingest.domain.providers.meta import parse_messenger, parse_whatsapp
from ingest.domain.providers.telegram import parse_telegram
from ingest.domain.providers.twilio import parse_twilio_call, parse_twilio_message
from ingest.service_layer.intake import intake_of
from ingest.service_layer.messages import Context
from sbcontracts.catalog import InvalidEvent, decode
from sbcontracts.events.ingest import InboundAdapterMessage
from tests.fuzz import seeds

CPU_BUDGET_S = 1.0
CTX = Context("acme", "PL", frozenset({"pl", "ru", "ro", "en"}))
MULTIPART = "multipart/form-data; boundary=b"


def _intake(batch: Batch) -> None:
    intake_of(CTX, batch)


def _telegram(raw: bytes) -> None:
    _, message = parse_telegram(raw, bot_id="bot-1")
    _intake(Batch(messages=[message] if message else []))


def _mailgun(raw: bytes) -> None:
    fields, files = read_form(raw, MULTIPART)
    _intake(Batch(messages=[parse_mailgun(fields, files)]))


def _adapter(raw: bytes) -> None:
    event = decode(raw)
    if isinstance(event.data, InboundAdapterMessage):
        _intake(Batch(messages=[from_adapter(event.data)]))


@dataclass(frozen=True)
class Target:
    """One parser path: its seeds, how it runs, which errors it declares, how inputs look."""

    run: Callable[[bytes], object]  # what it returns is not looked at
    seeds: list[bytes]
    kind: str  # json | form | multipart | mime
    declared: tuple[type[Exception], ...] = (ParseError,)


TARGETS: dict[str, Target] = {
    "whatsapp": Target(lambda raw: _intake(parse_whatsapp(raw)), seeds.WHATSAPP, "json"),
    "messenger": Target(lambda raw: _intake(parse_messenger(raw)), seeds.MESSENGER, "json"),
    "telegram": Target(_telegram, seeds.TELEGRAM, "json"),
    "twilio_sms": Target(
        lambda raw: _intake(parse_twilio_message(load_form(raw))), seeds.TWILIO_SMS, "form"
    ),
    "twilio_voice": Target(
        lambda raw: parse_twilio_call(load_form(raw), region="PL"), seeds.TWILIO_VOICE, "form"
    ),
    "mailgun": Target(_mailgun, seeds.MAILGUN, "multipart"),
    "mime": Target(lambda raw: _intake(Batch(messages=[parse_mime(raw)])), seeds.MIME, "mime"),
    "adapter": Target(_adapter, seeds.ADAPTER, "json", (ParseError, InvalidEvent)),
}


@dataclass
class Report:
    """Outcome counts, the slowest input and the undeclared failures of one target."""

    outcomes: Counter[str] = field(default_factory=Counter)
    slowest_s: float = 0.0
    slowest: bytes = b""
    failures: list[tuple[str, bytes]] = field(default_factory=list)
    slow: list[tuple[float, bytes]] = field(default_factory=list)


class OverBudget(Exception):  # raised by the CPU-time alarm, never by a parser
    """The input used more than twice the CPU budget: stopped, reported as slow."""


def _alarm(*_: object) -> None:
    raise OverBudget


def fuzz(name: str, inputs: int, *, seed: int = 0) -> Report:
    """Run `inputs` mutated inputs through one target."""
    target, rng, report = TARGETS[name], random.Random(f"{name}:{seed}"), Report()
    signal.signal(signal.SIGVTALRM, _alarm)
    # The objects already alive (a whole test session's, under pytest) out of the collector's
    # reach: else a full collection falling inside one input's timing is billed to the parser
    # (1.4 s once, in a full `make test` run, for an input that alone takes 21 ms).
    gc.collect()
    gc.freeze()
    try:
        return _run(target, rng, report, inputs)
    finally:
        gc.unfreeze()


def _run(target: Target, rng: random.Random, report: Report, inputs: int) -> Report:
    pool = list(target.seeds)
    for raw in pool:  # warm up (the language detector loads its models on first use)
        try:
            target.run(raw)
        except target.declared:
            pass
    for i in range(inputs):
        raw = seeds.mutate(rng, rng.choice(pool), pool, kind=target.kind)
        started = time.thread_time()
        signal.setitimer(signal.ITIMER_VIRTUAL, 2 * CPU_BUDGET_S)  # stops a runaway input
        try:
            target.run(raw)
            outcome = "accepted"
        except OverBudget:
            outcome = "over budget"
        except target.declared as exc:
            outcome = type(exc).__name__
        except Exception as exc:  # noqa: BLE001 - the point: anything undeclared is a finding
            outcome = "UNDECLARED " + type(exc).__name__
            if len(report.failures) < 20:
                report.failures.append((f"{type(exc).__name__}: {exc}"[:300], raw))
        finally:
            signal.setitimer(signal.ITIMER_VIRTUAL, 0)
        took = time.thread_time() - started
        report.outcomes[outcome] += 1
        if took > report.slowest_s:
            report.slowest_s, report.slowest = took, raw
        if took > CPU_BUDGET_S:
            report.slow.append((took, raw))
        if outcome == "accepted" and len(pool) < 200 and i % 7 == 0:
            pool.append(raw)  # go deeper from inputs that got through
    return report


def summary(name: str, inputs: int, report: Report) -> str:
    """One line of figures for a target."""
    outcomes = ", ".join(f"{k} {v}" for k, v in report.outcomes.most_common())
    return (
        f"{name}: {inputs} inputs ({outcomes}); slowest {report.slowest_s * 1000:.1f} ms CPU "
        f"({len(report.slowest)} bytes); undeclared {len(report.failures)}; over 1 s {len(report.slow)}"
    )


def main(argv: list[str] | None = None) -> int:
    """Fuzz every target (or those named) and print the figures; non-zero on any finding."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--inputs", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("targets", nargs="*", default=list(TARGETS))
    args = parser.parse_args(argv)
    found = 0
    for name in args.targets:
        started = time.perf_counter()
        report = fuzz(name, args.inputs, seed=args.seed)
        print(f"{summary(name, args.inputs, report)}; {time.perf_counter() - started:.0f} s")
        for error, raw in report.failures[:5]:
            print(f"  {error}\n    input: {raw[:400]!r}")
        for took, raw in report.slow[:5]:
            print(f"  {took:.2f} s CPU: {raw[:200]!r}")
        found += len(report.failures) + len(report.slow)
        sys.stdout.flush()
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
