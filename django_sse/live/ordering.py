"""Each group's live events in sequence order (see "Order" in hub.py's docstring).

The hub hands every event of a group it joined to ``Sequencer.accept``: an event that comes
early is held, one dispatched already is dropped, a missing one is waited for and then read from
the log (``_fill``), and what the log cannot give is told to the group's subscribers as a
``reset``. ``audit`` compares the groups' positions with the log's.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from .. import conf
from .delivery import EventKey, PublishedEvent
from .replay import PAGE_SIZE, ReplayLog

if TYPE_CHECKING:
    from .hub import Hub, LocalGroup

logger = logging.getLogger("django_sse")


class GroupOrder:
    """Where a group's live events stand in this process (see "Order" above)."""

    __slots__ = ("epoch", "filler", "held", "log", "next", "origin", "position", "target")

    def __init__(self, log: ReplayLog, position: EventKey | None) -> None:
        self.log = log
        self.origin = log.origin
        # The last event dispatched (or the log's newest when the group was joined).
        self.position = position
        self.epoch: int | None = None if position is None else position[0]
        self.next = 1 if position is None else position[1] + 1
        self.held: dict[int, PublishedEvent] = {}  # early events by sequence
        self.target = 0  # a sequence the log is known to hold (found by an audit)
        self.filler: asyncio.Task[None] | None = None

    def missing(self) -> bool:
        return bool(self.held) or self.next <= self.target


class Sequencer:
    """Dispatches one hub's groups' events in order."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub

    def accept(self, state: LocalGroup, order: GroupOrder, delivery: PublishedEvent) -> None:
        epoch, sequence = delivery.position
        if epoch != order.epoch:
            if order.epoch is not None and epoch < order.epoch:
                return  # an epoch the log has already forgotten
            self._new_epoch(delivery.group, state, order, epoch)
        if sequence != order.next:
            if sequence > order.next:
                order.held[sequence] = delivery
                self._start_filler(delivery.group, state, order)
            return  # below: dispatched already, live or from the log
        self._dispatch_in_order(state, order, delivery)

    def _dispatch_in_order(
        self, state: LocalGroup, order: GroupOrder, delivery: PublishedEvent
    ) -> None:
        self._hub.fan_out(state, delivery)
        order.next += 1
        order.position = delivery.position
        held = order.held
        while held:
            following = held.pop(order.next, None)
            if following is None:
                return
            self._hub.fan_out(state, following)
            order.next += 1
            order.position = following.position

    def _new_epoch(self, group: str, state: LocalGroup, order: GroupOrder, epoch: int) -> None:
        # The log forgot the group (its events expired) and started over. What was still
        # missing of the old epoch can never be read any more.
        while order.held:
            self._skip_gap(group, state, order)
        order.epoch, order.next, order.target = epoch, 1, 0

    def _skip_gap(self, group: str, state: LocalGroup, order: GroupOrder) -> None:
        """Tell the subscribers that the events before the first held one are lost."""
        assert order.epoch is not None
        first = min(order.held)
        lost = (order.epoch, first - 1)
        logger.warning(
            "Events %s-%d to %s-%d of %s are lost (not in the replay log): resetting %d "
            "subscribers",
            *(order.epoch, order.next, order.epoch, first - 1, group, len(state.members)),
        )
        dropped = [s for s in state.members if not s.reset("gap", lost)]
        for subscriber in dropped:
            self._hub.leave(group, subscriber)
            subscriber.end()
        order.next = first
        order.position = lost
        self._dispatch_in_order(state, order, order.held.pop(first))

    def _start_filler(self, group: str, state: LocalGroup, order: GroupOrder) -> None:
        if order.filler is None:
            order.filler = asyncio.get_running_loop().create_task(self._fill(group, state, order))
            self._hub.track(order.filler)

    async def _fill(self, group: str, state: LocalGroup, order: GroupOrder) -> None:
        """Read what is missing from the log, or report it lost (see "Order" above)."""
        try:
            await asyncio.sleep(float(conf.get("GAP_WAIT")))
            while order.missing() and self._hub.state_of(group) is state:
                assert order.epoch is not None
                epoch = order.epoch
                try:
                    page = await order.log.read(group, (epoch, order.next - 1), PAGE_SIZE)
                except Exception:
                    logger.exception("Could not read the replay log of %s to fill a gap", group)
                    page = None
                if self._hub.state_of(group) is not state or order.epoch != epoch:
                    return
                if page is None or page.reset is not None or not page.deliveries:
                    order.target = 0
                    if order.held:
                        self._skip_gap(group, state, order)
                    continue
                for delivery in page.deliveries:
                    if order.epoch == epoch:
                        self.accept(state, order, delivery)
        finally:
            order.filler = None

    async def audit(self) -> None:
        """Find events the log holds but this process never received (see "Order" above)."""
        ordered = [
            (name, state, state.order)
            for name, state in self._hub.states()
            if state.order is not None and state.order.origin is None
        ]
        if not ordered:
            return
        try:
            positions = await ordered[0][2].log.positions([name for name, _, _ in ordered])
        except Exception:
            return  # the heartbeat notices an outage
        for (name, state, order), position in zip(ordered, positions, strict=True):
            if position is None or self._hub.state_of(name) is not state or order.filler:
                continue
            if order.epoch is None or position[0] > order.epoch:
                self._new_epoch(name, state, order, position[0])
            if position[0] == order.epoch and position[1] >= order.next:
                order.target = position[1]
                self._start_filler(name, state, order)
