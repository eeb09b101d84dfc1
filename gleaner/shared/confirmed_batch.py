"""A batch of encoded messages on a confirming aiormq channel: one lock, one write, then the confirms.

aiormq's `basic_publish` takes the channel lock, queues the frames and waits for the writer once per
message, so a batch of thousands crossed the event loop thousands of times. Here the whole batch is
registered with the channel's own confirm bookkeeping (`confirmations`, `message_id_delivery_tag`, the
delivery tag counter) under its lock and written as one payload; aiormq's reader then settles each
message's future exactly as for its own publishes: a `basic.ack` resolves it, a `basic.nack` or a
`basic.return` (an unroutable mandatory message) fails it; a closed channel fails what is still open.
This leans on those attributes of `aiormq.Channel` (the dependency is pinned to the minor release it was
written against): `missing_internals` names what a connected channel lacks, and the broker then publishes
through aio-pika's public path instead (slower, same confirms).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import aiormq
import aiormq.abc

if TYPE_CHECKING:
    from aiormq.abc import ChannelFrame

# what `_send` and `publish_confirmed` use of a connected aiormq.Channel, beyond its public methods
CHANNEL_INTERNALS = (
    "lock",
    "delivery_tag",
    "confirmations",
    "message_id_delivery_tag",
    "write_queue",
    "create_future",
    "closing",
    "number",
    "max_content_size",
)
# the fields `_send` gives the writer's frame
FRAME_FIELDS = ("payload", "should_close", "drain_future")


@dataclass(frozen=True, slots=True)
class Encoded:
    """One message's frames, and the message id the broker echoes back if it returns the message."""

    message_id: str
    frames: bytes


def missing_internals(channel: aiormq.Channel) -> list[str]:
    """The aiormq internals this module needs that `channel` (open, with confirms) or aiormq lacks; [] if none."""
    # looked up without evaluating properties (`closing` makes a new future each time it is read)
    missing = [
        f"Channel.{name}"
        for name in CHANNEL_INTERNALS
        if not hasattr(type(channel), name) and name not in getattr(channel, "__dict__", {})
    ]
    frame = getattr(aiormq.abc, "ChannelFrame", None)
    fields = {f.name for f in dataclasses.fields(frame)} if dataclasses.is_dataclass(frame) else set()
    missing += [f"ChannelFrame.{name}" for name in FRAME_FIELDS if name not in fields]
    if "Channel.delivery_tag" not in missing and not isinstance(getattr(channel, "delivery_tag", None), int):
        missing.append("Channel.delivery_tag (an int)")
    return missing


async def publish_confirmed(channel: aiormq.Channel, messages: Sequence[Encoded], timeout_s: float) -> list[bool]:
    """Publish all of `messages`; True where the broker confirmed within `timeout_s`.

    The deadline covers the whole call, waiting for the channel lock and the writer included. Stops
    waiting early when the channel closes: what it had not confirmed by then fails.
    """
    if not messages:
        return []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    settled = _Countdown(len(messages))
    confirmations: list[asyncio.Future[object]] = []
    closing = channel.closing
    try:
        async with asyncio.timeout_at(deadline):
            await _send(channel, messages, settled, confirmations)
        await asyncio.wait(
            (settled.future, closing), timeout=max(0.0, deadline - loop.time()), return_when=asyncio.FIRST_COMPLETED
        )
    except TimeoutError:
        pass  # what was not confirmed in time counts as failed, below
    finally:
        closing.cancel()
        for confirmation in confirmations:
            if not confirmation.done():
                confirmation.cancel()
        for message in messages:
            channel.message_id_delivery_tag.pop(message.message_id, None)
    if len(confirmations) < len(messages):  # nothing was handed to the writer
        return [False] * len(messages)
    return [not c.cancelled() and c.exception() is None for c in confirmations]


class _Countdown:
    """A future that completes when `count` confirmations have settled (one callback each, no sets)."""

    def __init__(self, count: int) -> None:
        self.left = count
        self.future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def settle(self, _: asyncio.Future[object]) -> None:
        self.left -= 1
        if self.left == 0 and not self.future.done():
            self.future.set_result(None)


async def _send(
    channel: aiormq.Channel,
    messages: Sequence[Encoded],
    settled: _Countdown,
    confirmations: list[asyncio.Future[object]],
) -> None:
    """Register a confirmation per message (into `confirmations`) and queue all frames as one write.

    Returns once the writer took the payload; `confirmations` stays empty if nothing was queued.

    The confirmations are plain loop futures rather than the channel's tracked ones (a third of the
    batch's bookkeeping): `publish_confirmed` watches the channel's closing itself.
    """
    loop = asyncio.get_running_loop()
    async with channel.lock:
        first = channel.delivery_tag + 1
        for tag, message in enumerate(messages, start=first):
            confirmation: asyncio.Future[object] = loop.create_future()
            confirmation.add_done_callback(settled.settle)
            channel.confirmations[tag] = confirmation
            channel.message_id_delivery_tag[message.message_id] = tag
            confirmations.append(confirmation)
        channel.delivery_tag += len(messages)
        written = channel.create_future()
        payload = b"".join(message.frames for message in messages)
        try:
            frame: ChannelFrame = aiormq.abc.ChannelFrame(payload=payload, should_close=False, drain_future=written)
            await channel.write_queue.put(frame)
        except BaseException:
            # nothing reached the broker: give the delivery tags back while the lock is still held
            channel.delivery_tag = first - 1
            for tag, message in enumerate(messages, start=first):
                channel.confirmations.pop(tag, None)
                channel.message_id_delivery_tag.pop(message.message_id, None)
            for confirmation in confirmations:
                confirmation.cancel()
            confirmations.clear()
            written.cancel()
            raise
        await written
