"""Budgets that cap what a generator (or a conversation, or one call) may spend, and the running totals.

A :class:`Budget` is checked before any request with the call's upper-bound estimate
(:func:`imagegen_tool.pricing.estimate`): the estimate is *reserved* in a counter, the call is sent, and the
reservation is then *settled* to the actual cost computed from the usage the API reported. A call that does not
fit is refused with :class:`~imagegen_tool.errors.BudgetExceededError` and nothing is sent.

Counters live in the generator's memory, or, for a budget with ``shared="name"``, in the store
(:meth:`ImageStore.update_counter`: a lock file on a local store, conditional writes on an object store), so
every worker process using the same store and name spends from one budget. A reservation carries its owner and
a lease: a process killed in the middle of a call leaves a reservation that is dropped when its lease runs out,
or at once by the next worker on the same host that sees the owner process is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .costs import Cost
from .errors import BudgetExceededError

if TYPE_CHECKING:
    from .store import ImageStore

__all__ = ["Budget", "BudgetGuard", "Reservation", "Spending", "SpendingLedger", "process_spending"]

logger = logging.getLogger(__name__)

CounterState = dict[str, Any]


class Budget(BaseModel):
    """A cap on images and/or US dollars.

    Args:
        max_images: at most this many images (counted as requested before the call, as stored after it).
        max_usd: at most this many dollars, by the upper-bound estimate before the call and the actual cost after.
        per: ``"generator"`` (everything this generator, or every generator sharing the counter, spends),
            ``"session"`` (each conversation / thread on its own; calls without a session share one counter), or
            ``"call"`` (each call on its own: no running total).
        shared: a counter name (letters, digits, ``-``, ``_``, ``.``): the totals live in the store, so every
            generator on the same store with the same name, in any process, spends from one budget.
        unpriced: what to do when ``max_usd`` is set and a call's cost cannot be estimated (no published price):
            ``"refuse"`` (default: never spend blindly) or ``"allow"`` (send it; its actual cost is counted when
            known, so the budget may be overshot by the calls running at that moment).
        lease: how long the reservation of a call is kept if its process dies before settling it (a reservation
            whose owner process is gone from this host is dropped at once).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_images: int | None = Field(default=None, ge=0)
    max_usd: Decimal | None = Field(default=None, ge=0)
    per: Literal["call", "session", "generator"] = "generator"
    shared: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    unpriced: Literal["refuse", "allow"] = "refuse"
    lease: timedelta = timedelta(hours=1)

    @model_validator(mode="after")
    def _has_a_limit(self) -> Budget:
        if self.max_images is None and self.max_usd is None:
            raise ValueError("a Budget needs max_images and/or max_usd")
        if self.per == "call" and self.shared:
            raise ValueError("a per-call budget keeps no running total, so there is nothing to share")
        return self

    def counter_key(self, session: str | None) -> str | None:
        """The counter this budget uses for a call in ``session`` (``None`` for a per-call budget)."""
        if self.per == "call":
            return None
        base = f"budget-{self.shared}" if self.shared else "budget"
        if self.per == "session":
            digest = hashlib.sha256((session or "").encode()).hexdigest()[:32]
            return f"{base}.session-{digest}"
        return base


class Spending(BaseModel):
    """Running totals: calls, images and the actual dollars of the calls whose price is known."""

    model_config = ConfigDict(frozen=True)

    calls: int = 0
    images: int = 0
    usd: Decimal = Decimal(0)
    """The sum of the known actual costs."""
    unpriced_calls: int = 0
    """Calls whose actual cost is unknown (not in ``usd``)."""

    def plus(self, cost: Cost | None, images: int) -> Spending:
        known = cost is not None and cost.usd is not None
        return Spending(
            calls=self.calls + 1,
            images=self.images + images,
            usd=self.usd + (cost.usd if known and cost is not None and cost.usd is not None else Decimal(0)),
            unpriced_calls=self.unpriced_calls + (0 if known else 1),
        )


class SpendingLedger:
    """Totals per generator, per session and (module-wide) per process. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.total = Spending()
        self.sessions: dict[str, Spending] = {}

    def add(self, cost: Cost | None, images: int, session: str | None) -> None:
        with self._lock:
            self.total = self.total.plus(cost, images)
            if session is not None:
                self.sessions[session] = self.sessions.get(session, Spending()).plus(cost, images)
        if self is not _PROCESS:
            _PROCESS.add(cost, images, None)

    def session(self, session: str) -> Spending:
        with self._lock:
            return self.sessions.get(session, Spending())


_PROCESS = SpendingLedger()


def process_spending() -> Spending:
    """What every generator of this process has spent so far."""
    return _PROCESS.total


# -- counters -------------------------------------------------------------------------------------------------


def _owner() -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid()}


def _alive_here(owner: Any) -> bool:
    """Whether a reservation's owner may still be running (only a process on this host can be checked)."""
    if not isinstance(owner, dict) or owner.get("host") != socket.gethostname():
        return True
    pid = owner.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _clean(state: CounterState | None, now: float) -> CounterState:
    state = dict(state or {})
    reservations = {
        rid: r
        for rid, r in dict(state.get("reservations") or {}).items()
        if isinstance(r, dict) and float(r.get("expires", 0)) > now and _alive_here(r.get("owner"))
    }
    dropped = len(state.get("reservations") or {}) - len(reservations)
    if dropped:
        logger.info("dropped %d budget reservation(s) of ended processes or expired leases", dropped)
    state["reservations"] = reservations
    state.setdefault("spent_usd", "0")
    state.setdefault("images", 0)
    state.setdefault("calls", 0)
    return state


def _totals(state: CounterState) -> tuple[Decimal, int]:
    usd = Decimal(str(state.get("spent_usd", "0")))
    images = int(state.get("images", 0))
    for r in state["reservations"].values():
        usd += Decimal(str(r.get("usd", "0")))
        images += int(r.get("images", 0))
    return usd, images


@dataclass
class Reservation:
    """What a call reserved in each of its budgets' counters; settle it once the call is over."""

    id: str
    estimate: Cost | None
    images: int
    session: str | None
    keys: list[tuple[Budget, str]] = field(default_factory=list)
    settled: bool = False


class _MemoryCounters:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._states: dict[str, CounterState] = {}

    def update(self, key: str, update: Callable[[CounterState | None], CounterState]) -> CounterState:
        with self._lock:
            new = update(self._states.get(key))
            self._states[key] = new
            return new


class BudgetGuard:
    """Applies a generator's budgets: :meth:`reserve` before a call, :meth:`settle` after it."""

    def __init__(self, budgets: tuple[Budget, ...], store: ImageStore) -> None:
        self.budgets = budgets
        self.store = store
        self._memory = _MemoryCounters()

    def __bool__(self) -> bool:
        return bool(self.budgets)

    # -- reserve -------------------------------------------------------------------------------------------

    def reserve(self, estimate: Cost | None, images: int, session: str | None) -> Reservation:
        """Check every budget and reserve the estimate in each counter; raises
        :class:`BudgetExceededError` (after undoing what it reserved) when one does not fit."""
        reservation = Reservation(id=secrets.token_hex(8), estimate=estimate, images=images, session=session)
        try:
            for budget in self.budgets:
                usd = self._check_priced(budget, estimate)
                key = budget.counter_key(session)
                if key is None:
                    _check_call(budget, usd, images)
                    continue
                self._update(budget, key, _reserver(budget, reservation.id, usd, images))
                reservation.keys.append((budget, key))
        except BaseException:
            self.release(reservation)
            raise
        return reservation

    async def areserve(self, estimate: Cost | None, images: int, session: str | None) -> Reservation:
        if not any(b.shared for b in self.budgets):
            return self.reserve(estimate, images, session)
        return await asyncio.to_thread(self.reserve, estimate, images, session)

    # -- settle --------------------------------------------------------------------------------------------

    def settle(self, reservation: Reservation, actual: Cost | None, images: int) -> None:
        """Replace the reservation by what the call really cost: the actual cost when known, else the estimate
        (a paid call is never counted as free), else nothing (an unpriced call under ``unpriced="allow"``)."""
        if reservation.settled:
            return
        reservation.settled = True
        usd = actual.usd if actual is not None and actual.usd is not None else None
        if usd is None and reservation.estimate is not None:
            usd = reservation.estimate.usd
        for budget, key in reservation.keys:
            try:
                self._update(budget, key, lambda s: _settle(s, reservation.id, usd, images))
            except Exception as exc:  # the call is over and paid: a counter failure must not hide its images
                logger.warning("could not record the cost of a call in budget counter %s: %s", key, exc)

    async def asettle(self, reservation: Reservation, actual: Cost | None, images: int) -> None:
        if not any(b.shared for b, _ in reservation.keys):
            self.settle(reservation, actual, images)
            return
        await asyncio.to_thread(self.settle, reservation, actual, images)

    def release(self, reservation: Reservation) -> None:
        """Drop the reservation of a call that sent nothing billable (refused, failed before generating)."""
        if reservation.settled:
            return
        reservation.settled = True
        for budget, key in reservation.keys:
            with contextlib.suppress(Exception):
                self._update(budget, key, lambda s: _release(s, reservation.id))

    async def arelease(self, reservation: Reservation) -> None:
        if not any(b.shared for b, _ in reservation.keys):
            self.release(reservation)
            return
        await asyncio.to_thread(self.release, reservation)

    # -- state ---------------------------------------------------------------------------------------------

    def remaining(self, budget: Budget, session: str | None = None) -> tuple[Decimal | None, int | None]:
        """What is left of ``budget`` (dollars, images), reservations of running calls deducted."""
        key = budget.counter_key(session)
        if key is None:
            return budget.max_usd, budget.max_images
        state = self._update(budget, key, lambda s: _clean(s, time.time()))
        usd, images = _totals(state)
        return (
            None if budget.max_usd is None else budget.max_usd - usd,
            None if budget.max_images is None else budget.max_images - images,
        )

    def _update(self, budget: Budget, key: str, update: Callable[[CounterState | None], CounterState]) -> CounterState:
        if budget.shared:
            return self.store.update_counter(key, update)
        return self._memory.update(key, update)

    def _check_priced(self, budget: Budget, estimate: Cost | None) -> Decimal | None:
        if budget.max_usd is None:
            return None
        if estimate is not None and estimate.usd is not None:
            return estimate.usd
        if budget.unpriced == "allow":
            return Decimal(0)
        why = "; ".join(estimate.unknown[:2]) if estimate is not None and estimate.unknown else "no price"
        raise BudgetExceededError(
            f"the cost of this call cannot be estimated ({why}) and the budget caps dollars "
            f"(max_usd={budget.max_usd}); pass Budget(unpriced='allow') to send such calls anyway, or use a model "
            "with published prices (docs/prices.md)",
            reason="unpriced",
            per=budget.per,
            limit_usd=budget.max_usd,
        )


def _check_call(budget: Budget, usd: Decimal | None, images: int) -> None:
    if budget.max_images is not None and images > budget.max_images:
        raise BudgetExceededError(
            f"{images} image(s) requested, the budget allows {budget.max_images} per call",
            reason="images",
            per="call",
            limit_images=budget.max_images,
            spent_images=0,
            requested_images=images,
        )
    if budget.max_usd is not None and usd is not None and usd > budget.max_usd:
        raise BudgetExceededError(
            f"this call may cost up to ${_show(usd)}, the budget allows ${budget.max_usd} per call",
            reason="usd",
            per="call",
            limit_usd=budget.max_usd,
            spent_usd=Decimal(0),
            estimate_usd=_show(usd),
        )


def _reserver(
    budget: Budget, reservation_id: str, usd: Decimal | None, images: int
) -> Callable[[CounterState | None], CounterState]:
    return lambda state: _reserve(state, budget, reservation_id, usd, images)


def _reserve(
    state: CounterState | None, budget: Budget, reservation_id: str, usd: Decimal | None, images: int
) -> CounterState:
    now = time.time()
    state = _clean(state, now)
    spent_usd, spent_images = _totals(state)
    if budget.max_images is not None and spent_images + images > budget.max_images:
        raise BudgetExceededError(
            f"the budget allows {budget.max_images} images per {budget.per}; {spent_images} are used or reserved "
            f"and this call asks for {images}",
            reason="images",
            per=budget.per,
            limit_usd=budget.max_usd,
            spent_usd=_show(spent_usd),
            limit_images=budget.max_images,
            spent_images=spent_images,
            requested_images=images,
        )
    if budget.max_usd is not None and usd is not None and spent_usd + usd > budget.max_usd:
        raise BudgetExceededError(
            f"the budget allows ${budget.max_usd} per {budget.per}; ${_show(spent_usd)} is spent or reserved and "
            f"this call may cost up to ${_show(usd)}",
            reason="usd",
            per=budget.per,
            limit_usd=budget.max_usd,
            spent_usd=_show(spent_usd),
            estimate_usd=_show(usd),
            limit_images=budget.max_images,
            spent_images=spent_images,
        )
    state["reservations"][reservation_id] = {
        "usd": str(usd or 0),
        "images": images,
        "owner": _owner(),
        "expires": now + budget.lease.total_seconds(),
    }
    return state


def _settle(state: CounterState | None, reservation_id: str, usd: Decimal | None, images: int) -> CounterState:
    state = _clean(state, time.time())
    state["reservations"].pop(reservation_id, None)
    state["spent_usd"] = str(Decimal(str(state["spent_usd"])) + (usd or Decimal(0)))
    state["images"] = int(state["images"]) + images
    state["calls"] = int(state["calls"]) + 1
    return state


def _release(state: CounterState | None, reservation_id: str) -> CounterState:
    state = _clean(state, time.time())
    state["reservations"].pop(reservation_id, None)
    return state


def _show(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.0001"))
