"""Judges: prompt versions, answer parsing, the disk cache, the HTTP judge against a loopback
server (retries, Retry-After, rate limit, network policy), the oracle and a tiny local VLM."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from reasonbrain.config import EvalParams, Settings
from reasonbrain.errors import ConfigError, MissingWeightsError
from reasonbrain.evaluation.judges import build_judge
from reasonbrain.evaluation.judges.base import (
    JudgeRequest,
    Prompt,
    combine,
    load_prompt,
    parse_scores,
    request_key,
)
from reasonbrain.evaluation.judges.cache import CachedJudge, JudgeCache
from reasonbrain.evaluation.judges.http import HttpJudge, RateLimiter, is_loopback
from reasonbrain.evaluation.judges.oracle import OracleJudge


class _Server:
    """A tiny OpenAI-compatible chat-completions server on 127.0.0.1 (answers scripted)."""

    def __init__(self) -> None:
        self.script: list[tuple[int, dict[str, str]]] = []  # failures to serve first
        self.sc_text = '{"score": [8, 7], "reasoning": "ok"}'  # answer to SC (two images)
        self.pq_text = "Scores: 6 and 9."  # answer to PQ (one image)
        self.body: bytes | None = None  # a whole 200 body to send instead of an answer
        self.requests: list[dict[str, Any]] = []
        self.times: list[float] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append(
                    {"path": self.path, "body": body, "auth": self.headers.get("Authorization")}
                )
                outer.times.append(time.monotonic())
                if outer.script:
                    status, headers = outer.script.pop(0)
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(b"busy")
                    return
                n_images = sum(c["type"] == "image_url" for c in body["messages"][0]["content"])
                text = outer.sc_text if n_images == 2 else outer.pq_text
                payload = (
                    outer.body or json.dumps({"choices": [{"message": {"content": text}}]}).encode()
                )
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[_Server]:
    s = _Server()
    yield s
    s.close()


def _req(color: tuple[int, int, int] = (200, 0, 0), instruction: str = "melt it") -> JudgeRequest:
    src = Image.new("RGB", (16, 16), (0, 0, 200))
    return JudgeRequest("s1", instruction, src, Image.new("RGB", (16, 16), color))


def test_prompt_files_are_versioned_by_content() -> None:
    p = load_prompt("viescore_v1")
    assert p.version.startswith("viescore_v1@") and "{instruction}" in p.sc
    assert Prompt("x", "a", "b").version != Prompt("x", "a!", "b").version
    with pytest.raises(ConfigError, match="unknown judge prompt"):
        load_prompt("nope")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"score": [8, 6], "reasoning": "fine"}', 6.0),
        ('```json\n{"score":[10,9.5]}\n```', 9.5),
        ("I would give 7 and then 3", 3.0),
        ("no numbers here", None),
        ('{"score": [12, 3]}', None),
        # issue 14, defect 7: denominators and labels are not scores; ambiguity is unreadable
        ("Editing success 8/10; over-editing 2/10.", 2.0),
        ("Score: 7 (out of 10), artifacts: 4", 4.0),
        ("score1: 8, score2: 6", 6.0),
        ('{"score": [8.5., 3]}', None),  # malformed JSON: unreadable, never an exception
        ('{"score": [7, 4], "reasoning": "2 objects changed"}', 4.0),
        ('{"score": [8, 6]} or maybe {"score": [1, 1]}', None),
        ('{"score": [true, 6]}', None),
        ("1. success: 8\n2. over-editing: 6", None),
        ("8 out of 10", None),
        ("7, 5 and 3", None),
    ],
)
def test_parse_scores(text: str, expected: float | None) -> None:
    assert parse_scores(text) == expected


def test_combine_is_viescore() -> None:
    j = combine("j", load_prompt("viescore_v1"), '{"score": [9, 4]}', '{"score": [8, 9]}', 5.0)
    assert j.sc == 4.0 and j.pq == 8.0 and j.overall == pytest.approx((4 * 8) ** 0.5)
    assert j.follows is False and j.raw["sc"].startswith("{")


def _judge(server: _Server, **kw: Any) -> HttpJudge:
    kw.setdefault("backoff_s", 0.01)
    return HttpJudge(server.url, "tiny-vlm", load_prompt("viescore_v1"), **kw)


def test_http_judge_against_a_loopback_server(server: _Server) -> None:
    j = _judge(server, api_key="k", requests_per_s=100)
    r = j.judge(_req())
    assert r.error is None and r.sc == 7.0 and r.pq == 6.0 and r.follows is True
    assert r.raw["pq"] == "Scores: 6 and 9."  # raw text kept verbatim
    assert [q["path"] for q in server.requests] == ["/v1/chat/completions"] * 2
    first = server.requests[0]
    assert first["auth"] == "Bearer k" and first["body"]["model"] == "tiny-vlm"
    parts = first["body"]["messages"][0]["content"]
    assert parts[0]["image_url"]["url"].startswith("data:image/png;base64,")
    assert "melt it" in parts[-1]["text"]


def test_http_judge_retries_and_honours_retry_after(server: _Server) -> None:
    server.script = [(503, {}), (429, {"Retry-After": "0.3"})]
    j = _judge(server, requests_per_s=100)
    t0 = time.monotonic()
    r = j.judge(_req())
    assert r.error is None and j.calls == 4  # 2 failures + SC + PQ
    assert time.monotonic() - t0 >= 0.3


def test_http_judge_gives_up_and_records_the_error(server: _Server) -> None:
    server.script = [(500, {})] * 3
    r = _judge(server, max_retries=2, requests_per_s=100).judge(_req())
    assert r.follows is None and r.error is not None and "HTTP 500" in r.error
    server.script = [(400, {})]
    j = _judge(server, max_retries=3, requests_per_s=100)
    assert "HTTP 400" in (j.judge(_req()).error or "") and j.calls == 1  # 4xx: no retry


def test_rate_limit_spaces_requests(server: _Server) -> None:
    j = _judge(server, requests_per_s=10)
    for c in ((1, 0, 0), (2, 0, 0)):
        j.judge(_req(c))
    # 10 requests/s → ≥ 0.1 s apart at the limiter, 4 requests span ≥ 0.3 s. Arrival at the
    # server jitters (one late arrival shortens the next gap, 0.068 s seen under load), so the
    # span is checked, which only the first and last arrivals' jitter can shorten.
    assert len(server.times) == 4 and server.times[-1] - server.times[0] >= 0.25
    lim = RateLimiter(1000)
    lim.acquire()
    lim.acquire()  # fast limiter does not block noticeably


def test_network_policy_and_required_settings(server: _Server) -> None:
    assert is_loopback("http://127.0.0.1:8000/v1") and is_loopback("http://localhost/v1")
    assert not is_loopback("https://api.example.com/v1")
    params = EvalParams(judge="http", judge_model="m")
    with pytest.raises(ConfigError, match="network access is off"):
        build_judge(params, Settings(judge_url="https://api.example.com/v1"), None)
    with pytest.raises(ConfigError, match="needs an endpoint"):
        build_judge(params, Settings(), None)
    with pytest.raises(ConfigError, match="model name"):
        build_judge(EvalParams(judge="http"), Settings(judge_url=server.url), None)
    assert build_judge(EvalParams(judge="none"), Settings(), None) is None
    with pytest.raises(MissingWeightsError):
        build_judge(EvalParams(judge="vlm"), Settings(weights_dir=Path("/nonexistent")), None)


def test_cache_answers_repeats_without_calling(server: _Server, tmp_path: Path) -> None:
    j = CachedJudge(_judge(server, requests_per_s=100), JudgeCache(tmp_path / "cache"))
    first = j.judge(_req())
    assert not first.cached and len(server.requests) == 2
    again = j.judge(_req())
    assert again.cached and again.sc == first.sc and again.raw == first.raw
    assert len(server.requests) == 2  # served from disk
    j.judge(_req(instruction="freeze it"))  # another instruction ⇒ another key
    j.judge(_req(color=(0, 200, 0)))  # another output image ⇒ another key
    assert len(server.requests) == 6
    # the key covers judge id and prompt version too
    k = request_key(_req(), {"judge_id": "a", "prompt_version": "v1"})
    assert k != request_key(_req(), {"judge_id": "b", "prompt_version": "v1"})
    assert k != request_key(_req(), {"judge_id": "a", "prompt_version": "v2"})
    # failed answers are not cached: they are asked again
    server.script = [(500, {})] * 2
    jj = CachedJudge(_judge(server, max_retries=1, requests_per_s=100), JudgeCache(tmp_path / "c2"))
    assert jj.judge(_req()).error is not None
    assert jj.judge(_req()).error is None


def test_oracle_follows_the_verifier() -> None:
    o = OracleJudge()
    ok = o.judge(
        JudgeRequest(
            "a", "x", Image.new("RGB", (4, 4)), Image.new("RGB", (4, 4)), {"correct": True}
        )
    )
    assert ok.follows is True and ok.sc == 10.0
    none = o.judge(_req())
    assert none.follows is None and "no ReasonSynth ground truth" in (none.error or "")


@pytest.mark.slow
def test_local_vlm_judge_with_a_tiny_random_model(tmp_path: Path) -> None:
    from reasonbrain.evaluation.judges.vlm import LocalVlmJudge
    from reasonbrain.evaluation.testing import save_tiny_vlm
    from reasonbrain.registry.checksums import manifest_digest, scan_dir

    save_tiny_vlm(tmp_path / "vlm")
    judge = LocalVlmJudge(tmp_path / "vlm", load_prompt("viescore_v1"), max_new_tokens=6)
    # identified by its weights: vlm:<folder>@<sha256 of its files>
    assert judge.judge_id == f"vlm:vlm@{manifest_digest(scan_dir(tmp_path / 'vlm'))[:12]}"
    r = judge.judge(_req())
    # a random model writes words, not scores: the raw text is kept and the error says so
    assert r.raw["sc"] and r.raw["pq"] and r.follows is None
    assert r.error == "unreadable SC/PQ answer" and r.error_kind == "unreadable"
    # a malformed JSON answer (defect 7) is unreadable too, never an exception
    judge._ask = lambda text, images: '{"score": [8.5., 3]}'  # type: ignore[method-assign]
    bad = judge.judge(_req())
    assert bad.follows is None and bad.error_kind == "unreadable"
    # same folder name, other weights: another identity, so no cached verdict is reused
    save_tiny_vlm(tmp_path / "other" / "vlm", seed=1)
    other = LocalVlmJudge(tmp_path / "other" / "vlm", load_prompt("viescore_v1"), max_new_tokens=6)
    assert other.judge_id.startswith("vlm:vlm@") and other.judge_id != judge.judge_id
    key = request_key(_req(), judge.identity())
    assert key != request_key(_req(), other.identity())


def test_cached_verdicts_follow_the_current_threshold(server: _Server, tmp_path: Path) -> None:
    """Issue 14, defect 6: a changed pass threshold must not reuse the old verdict."""
    cache = JudgeCache(tmp_path / "cache")
    lenient = CachedJudge(_judge(server, requests_per_s=100, follow_threshold=5.0), cache)
    first = lenient.judge(_req())
    assert first.sc == 7.0 and first.follows is True and len(server.requests) == 2
    strict = CachedJudge(_judge(server, requests_per_s=100, follow_threshold=8.0), cache)
    again = strict.judge(_req())
    assert again.cached and again.sc == 7.0 and again.follows is False  # recomputed
    assert len(server.requests) == 2  # from the cached raw answer: no new request
    # another endpoint serving the same model name is another judge
    elsewhere = HttpJudge("http://127.0.0.1:9/v1", "tiny-vlm", load_prompt("viescore_v1"))
    assert request_key(_req(), elsewhere.identity()) != request_key(
        _req(), lenient.inner.identity()
    )


@pytest.mark.parametrize(
    "body",
    [b'{"choices": null}', b'{"choices": []}', b'{"choices": [{"message": {}}]}', b"not json"],
)
def test_a_malformed_200_is_a_recorded_error_not_a_crash(server: _Server, body: bytes) -> None:
    """Issue 14 (suspected, confirmed): ``"choices": null`` crashed the HTTP judge."""
    server.body = body
    r = _judge(server, requests_per_s=100).judge(_req())
    assert r.follows is None and r.error_kind == "request_failed"
    assert "malformed chat-completions response" in (r.error or "")


def test_content_parts_are_read_as_text(server: _Server) -> None:
    parts = [{"type": "text", "text": '{"score": '}, {"type": "text", "text": "[9, 8]}"}]
    server.body = json.dumps({"choices": [{"message": {"content": parts}}]}).encode()
    assert _judge(server, requests_per_s=100).judge(_req()).sc == 8.0
