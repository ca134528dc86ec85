"""One background thread: samples telemetry for the plots, reads the machine, re-fits the router."""

from __future__ import annotations

import logging
import threading
import time

from zeta_desktop.core.routing.machine import MachineSource
from zeta_desktop.core.routing.router import ZetaDynamicRouter
from zeta_desktop.core.routing.telemetry import SAMPLE_HZ, Telemetry

log = logging.getLogger(__name__)


class TelemetrySampler:
    MACHINE_EVERY_S = 1.0
    REFIT_EVERY_S = 5.0

    def __init__(
        self, telemetry: Telemetry, router: ZetaDynamicRouter, machine: MachineSource | None
    ) -> None:
        self.telemetry = telemetry
        self.router = router
        self.machine = machine
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="zeta-sampler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        period = 1.0 / SAMPLE_HZ
        next_machine = next_refit = time.monotonic()
        try:
            while not self._stop.wait(period):
                now = time.monotonic()
                if self.machine is not None and now >= next_machine:
                    next_machine = now + self.MACHINE_EVERY_S
                    try:
                        self.telemetry.set_machine(self.machine.read())
                    except Exception:  # a reading must never end the sampler
                        log.exception("machine reading failed")
                self.telemetry.sample(now)
                if now >= next_refit:
                    next_refit = now + self.REFIT_EVERY_S
                    self.router.refit(now)
        finally:
            if self.machine is not None:
                self.machine.close()
