"""Run the LLM simulator in a child process for tests, the demo and benchmarks, and drive it."""

from __future__ import annotations

from typing import Any

from simkit.process import ControlClient, SimulatorChild


class LLMSimulatorControl(ControlClient):
    """Thin client for the simulator's /_sim/ control API.

    ``base_url`` is the server root (``http://host:port``); the OpenAI base URL is
    ``openai_base_url``.
    """

    label = "llm simulator"

    @property
    def openai_base_url(self) -> str:
        return f"{self.base_url}/v1"

    def requests(self, *, since_seq: int = 0) -> list[dict[str, Any]]:
        """Every completion request received (path, authorization, body), oldest first."""
        return self._call("GET", "requests", params={"since_seq": since_seq})["requests"]

    def reset(self) -> None:
        """Back to the startup configuration, no recorded requests."""
        self._call("POST", "reset")

    def configure(self, **settings: Any) -> dict[str, Any]:
        """answers, default_answer, latency_ms, faults, always_status, api_key, ignore_tools."""
        return self._call("POST", "config", json=settings)


class LLMSimulatorProcess(SimulatorChild[LLMSimulatorControl]):
    """The simulator in a child process on a free loopback port.

    >>> with LLMSimulatorProcess("--latency-ms", "0") as llm:
    ...     llm.control.openai_base_url
    """

    module = "llm_simulator"
    label = "llm simulator"
    log_prefix = "llm-simulator-"
    control_class = LLMSimulatorControl
