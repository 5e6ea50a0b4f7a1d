"""A judge behind an OpenAI-compatible chat-completions endpoint (vLLM, TGI, a hosted API).

Images travel as base64 PNG ``data:`` URLs in ``image_url`` content parts. Calls are rate limited
(at most ``requests_per_s`` per judge instance, i.e. per Ray actor) and retried with exponential
back-off on connection errors, timeouts, HTTP 429 and 5xx (``Retry-After`` is honoured). Any
other HTTP error is not retried. Network access beyond loopback needs
``REASONBRAIN_ALLOW_NETWORK=true`` (DESIGN §7: no run-time network unless a setting allows it).
"""

from __future__ import annotations

import base64
import ipaddress
import random
import threading
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from PIL import Image

from reasonbrain.errors import ConfigError
from reasonbrain.evaluation.images import png_bytes
from reasonbrain.evaluation.judges.base import Judge, Judgement, JudgeRequest, Prompt, combine

if TYPE_CHECKING:
    from reasonbrain.config import EvalParams, Settings

_RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
_MAX_TOKENS = 256


def is_loopback(url: str) -> bool:
    """True when the URL's host is ``localhost`` or a loopback address."""
    host = urlparse(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class RateLimiter:
    """At most ``rate`` acquisitions per second (evenly spaced; thread-safe)."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self._next = 0.0
        self._lock = threading.Lock()

    def acquire(self) -> None:
        """Block until the next slot."""
        with self._lock:
            now = time.monotonic()
            wait = self._next - now
            self._next = max(now, self._next) + self.interval
        if wait > 0:
            time.sleep(wait)


def _data_url(image: Image.Image) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes(image.convert("RGB"))).decode()


class HttpJudge(Judge):
    """VIEScore-style judging through ``POST {base_url}/chat/completions``."""

    def __init__(
        self,
        base_url: str,
        model: str,
        prompt: Prompt,
        *,
        api_key: str | None = None,
        follow_threshold: float = 5.0,
        max_retries: int = 4,
        requests_per_s: float = 2.0,
        timeout_s: float = 60.0,
        backoff_s: float = 0.5,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.prompt = prompt
        self.api_key = api_key
        self.follow_threshold = follow_threshold
        self.max_retries = max_retries
        self.timeout_s = timeout_s
        self.backoff_s = backoff_s
        self.limiter = RateLimiter(requests_per_s)
        self.judge_id = f"http:{model}"
        self.prompt_version = prompt.version
        self.calls = 0  # HTTP requests sent (retries included)

    @classmethod
    def from_settings(cls, params: EvalParams, settings: Settings, prompt: Prompt) -> HttpJudge:
        """Build from ``eval.*`` params and ``REASONBRAIN_JUDGE_URL`` / ``_API_KEY``.

        Raises:
            ConfigError: no URL or model name, or a non-loopback URL without network permission.
        """
        if not settings.judge_url:
            raise ConfigError(
                "the HTTP judge needs an endpoint",
                where="REASONBRAIN_JUDGE_URL",
                fix="set it to an OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1",
            )
        if not params.judge_model:
            raise ConfigError(
                "the HTTP judge needs a model name",
                where="eval.judge_model",
                fix="set the model the endpoint serves, e.g. --set eval.judge_model=Qwen2-VL-7B",
            )
        if not is_loopback(settings.judge_url) and not settings.allow_network:
            raise ConfigError(
                "network access is off, so the judge endpoint cannot be reached",
                where=settings.judge_url,
                fix="set REASONBRAIN_ALLOW_NETWORK=true or use a loopback endpoint",
            )
        return cls(
            settings.judge_url,
            params.judge_model,
            prompt,
            api_key=settings.judge_api_key,
            follow_threshold=params.judge_follow_threshold,
            max_retries=params.judge_max_retries,
            requests_per_s=params.judge_requests_per_s,
            timeout_s=params.judge_timeout_s,
        )

    def _ask(self, text: str, images: list[Image.Image]) -> str:
        """One chat completion with retries; returns the answer text.

        Raises:
            RuntimeError: retries exhausted or a non-retryable HTTP error.
        """
        import httpx

        content: list[dict[str, Any]] = [
            {"type": "image_url", "image_url": {"url": _data_url(im)}} for im in images
        ]
        content.append({"type": "text", "text": text})
        body = {
            "model": self.model,
            "messages": [{"role": "user", "content": content}],
            "temperature": 0.0,
            "max_tokens": _MAX_TOKENS,
        }
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        last = "no attempt"
        for attempt in range(self.max_retries + 1):
            self.limiter.acquire()
            self.calls += 1
            delay = self.backoff_s * 2**attempt * (1 + 0.25 * random.random())
            try:
                r = httpx.post(
                    f"{self.base_url}/chat/completions",
                    json=body,
                    headers=headers,
                    timeout=self.timeout_s,
                )
            except httpx.TransportError as err:
                last = f"{type(err).__name__}: {err}"
            else:
                if r.status_code == 200:
                    return _answer_text(r)
                last = f"HTTP {r.status_code}: {r.text[:200]}"
                if r.status_code not in _RETRY_STATUS:
                    break
                retry_after = r.headers.get("retry-after")
                if retry_after and retry_after.replace(".", "", 1).isdigit():
                    delay = max(delay, float(retry_after))
            if attempt < self.max_retries:
                time.sleep(delay)
        raise RuntimeError(last)

    def judge(self, request: JudgeRequest) -> Judgement:
        """Ask SC (source + output) and PQ (output) and combine them; errors are recorded."""
        try:
            sc_text = self._ask(
                self.prompt.sc.format(instruction=request.instruction),
                [request.source, request.output],
            )
            pq_text = self._ask(
                self.prompt.pq.format(instruction=request.instruction), [request.output]
            )
        except RuntimeError as err:
            return Judgement(
                self.judge_id,
                self.prompt_version,
                follows=None,
                error=str(err),
                error_kind="request_failed",
            )
        return combine(self.judge_id, self.prompt, sc_text, pq_text, self.follow_threshold)

    def identity(self) -> dict[str, Any]:
        """Model name, endpoint, decoding and prompt (a remote model's weights cannot be
        fingerprinted: the endpoint + model name stand for them)."""
        return {
            "judge_id": self.judge_id,
            "endpoint": self.base_url,
            "decoding": {"temperature": 0.0, "max_tokens": _MAX_TOKENS},
            "prompt_version": self.prompt_version,
        }

    def from_raw(self, raw: dict[str, str]) -> Judgement:
        """Re-read a cached answer with the current threshold and parser."""
        return combine(self.judge_id, self.prompt, raw["sc"], raw["pq"], self.follow_threshold)


def _answer_text(r: Any) -> str:
    """The answer of a chat-completions response.

    Raises:
        RuntimeError: the body is not the documented shape (``choices: null``, no message …).
    """
    try:
        body = r.json()
        content = body["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise RuntimeError(f"malformed chat-completions response: {r.text[:200]}") from None
    if isinstance(content, list):  # content parts: keep the text ones
        content = "".join(str(c.get("text", "")) for c in content if isinstance(c, dict))
    if not isinstance(content, str):
        raise RuntimeError(f"chat-completions response without text content: {r.text[:200]}")
    return content
