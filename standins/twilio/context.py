"""The parts of one running Twilio stand-in, wired once by ``create_app`` and shared by its routes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from standins.twilio.auth import Authenticator
from standins.twilio.callbacks import CallbackDispatcher
from standins.twilio.config import TwilioConfig
from standins.twilio.lifecycle import Lifecycle
from standins.twilio.signature import WebhookSigning
from standins.twilio.state import TwilioState


@dataclass(slots=True)
class TwilioApp:
    config: TwilioConfig
    state: TwilioState
    auth: Authenticator
    dispatcher: CallbackDispatcher
    lifecycle: Lifecycle
    release: asyncio.Event | None = None  # set to free requests held by a "timeout" fault plan
    hung: int = 0  # requests held right now

    @classmethod
    def build(cls, config: TwilioConfig) -> TwilioApp:
        state = TwilioState(config)
        dispatcher = CallbackDispatcher(
            signing=WebhookSigning(config.auth_token),
            attempts=config.callback_attempts,
            backoff=config.callback_backoff,
            timeout=config.callback_timeout,
            workers=config.callback_workers,
            schedule=_unwired,
        )
        lifecycle = Lifecycle(state, dispatcher, clock=time.time)
        # Retries wait on the drain loop's timer heap, like every other delayed step.
        dispatcher.schedule = lifecycle.schedule
        return cls(config, state, Authenticator(config), dispatcher, lifecycle)

    def release_hung(self) -> None:
        """Let every request held by a timeout plan answer now."""
        if self.release is not None:
            self.release.set()
            self.release = asyncio.Event()

    def reset(self) -> None:
        self.state.reset()
        self.dispatcher.signing = WebhookSigning(self.config.auth_token)
        self.lifecycle.reset()
        self.release_hung()



def _unwired(delay: float, action: Callable[[], None]) -> None:
    raise RuntimeError("the callback dispatcher is used before its lifecycle is wired")
