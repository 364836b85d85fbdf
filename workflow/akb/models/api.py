"""Chat models behind an OpenAI-compatible `/chat/completions` endpoint.

Works with OpenAI, the OpenAI-compatible endpoints of Gemini and Anthropic, and local servers
(vLLM, llama.cpp). The server applies the chat template, so a prompt stays a user message: `prompt`
returns the user text and `generate` sends [system (if configured), user].

Every answered request is stored under the cache directory, one JSON file per request, named by a
hash of the full request (endpoint URL and body: model, messages, sampling parameters; never the
key). A rerun therefore sends nothing, and an interrupted run resends only the requests that were
not answered. Failures are never cached.

The API key is read from the environment variable the entry names, only when a request has to be
sent, and goes only into the Authorization header: it is never logged, cached or put in an error.

`ChatClient` does all of that (cache, retries with backoff, concurrency bound, key) for any user of
the endpoint: `APIChatModel` here, and the `api` audio captioner (akb.captioners.api), which builds
its own request bodies.
"""

from __future__ import annotations

import email.utils
import hashlib
import http.client
import json
import logging
import math
import os
import random
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from akb.io import atomic_path
from akb.models.base import Continuation, LanguageModel, ModelSpec

log = logging.getLogger(__name__)

CACHE_ROOT = Path("resources/api_cache")
MAX_TOKENS_PARAMS = ("max_tokens", "max_completion_tokens")
RETRY_STATUS = {408, 409, 429}  # and every 5xx
CHARS_PER_TOKEN = 4  # token_length is an estimate, used only to sort requests by length


class APIError(RuntimeError):
    """A request that could not be answered; the message names the model and the request."""


class MalformedReply(ValueError):
    """A 200 reply without a usable answer (bad JSON, no choices/message/content)."""


class _Transient(Exception):
    """A failure worth retrying: 408/409/429/5xx, a connection error or a timeout."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class _Aborted(Exception):
    """Another request of the batch failed for good; this one stops before its next attempt."""


@dataclass(frozen=True)
class APISettings:
    """The `api:` block of a model entry (defaults mirror the config schema)."""

    base_url: str
    key_env: str | None = None  # NAME of the variable holding the key; None: send no key
    max_concurrency: int = 4
    max_retries: int = 6  # retries after the first attempt, for 408/409/429/5xx and network errors
    malformed_retries: int = 2  # retries after a malformed 200 reply
    timeout_s: float = 120.0
    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0  # also caps a server's Retry-After
    temperature: float | None = 0.0  # None: leave the parameter out (models that only accept the default)
    max_tokens_param: str = "max_tokens"  # or max_completion_tokens (OpenAI reasoning models)
    extra_body: dict[str, Any] = field(default_factory=dict)
    cache_dir: str | None = None  # None: resources/api_cache/<model name>

    @classmethod
    def from_spec(cls, spec: ModelSpec) -> APISettings:
        return cls.from_block(spec.extra.get("api"), f"model {spec.name}")

    @classmethod
    def from_block(cls, block: Any, owner: str) -> APISettings:
        """Settings from an `api:` config block; `owner` ("model gpt-4o", "captioner gemini") names
        the entry in errors."""
        if not isinstance(block, dict) or not block.get("base_url"):
            raise ValueError(
                f"{owner}: backend 'api' needs an `api:` block with at least `base_url` "
                "(e.g. https://api.openai.com/v1) and usually `key_env` (the name of the environment "
                "variable holding the key)"
            )
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(block) - known)
        if unknown:
            raise ValueError(f"{owner}: unknown `api` setting(s) {unknown}; known: {sorted(known)}")
        nullable = ("key_env", "temperature", "cache_dir")
        settings = cls(**{k: v for k, v in block.items() if v is not None or k in nullable})
        settings.check(owner)
        return settings

    def check(self, owner: str) -> None:
        problems = []
        if not str(self.base_url).startswith(("http://", "https://")):
            problems.append(f"base_url {self.base_url!r} is not an http(s) URL")
        if self.max_concurrency < 1:
            problems.append("max_concurrency must be at least 1")
        if self.max_retries < 0 or self.malformed_retries < 0:
            problems.append("max_retries and malformed_retries must be at least 0")
        if self.timeout_s <= 0:
            problems.append("timeout_s must be positive")
        if self.backoff_base_s < 0 or self.backoff_max_s < 0:
            problems.append("backoff_base_s and backoff_max_s must be at least 0")
        if self.max_tokens_param not in MAX_TOKENS_PARAMS:
            problems.append(f"max_tokens_param must be one of {MAX_TOKENS_PARAMS}")
        if not isinstance(self.extra_body, dict) or {"model", "messages"} & set(self.extra_body):
            problems.append("extra_body must be a mapping that sets neither `model` nor `messages`")
        if problems:
            raise ValueError(f"{owner}: invalid `api` settings: " + "; ".join(problems))


@dataclass(frozen=True)
class ChatRequest:
    """One request for `ChatClient.answer`: what is sent, the cache key, and how errors name it."""

    body: dict[str, Any]  # sent as is
    key: str  # names the cache file: ChatClient.key of whatever determines the answer
    label: str  # e.g. "request 0a1b2c3d4e5f (user message 'Which ...')"; errors prefix the owner
    record: dict[str, Any] | None = None  # stored as the cached "request" instead of body (None: body),
    # for bodies with bulky payloads (base64 audio) that the key already covers through a digest


class ChatClient:
    """Requests to one OpenAI-compatible /chat/completions endpoint, answered from the cache or sent
    (at most max_concurrency at once, retried with backoff), for one config entry: `kind` and
    `name` ("model", "gpt-4o") name it in every log line, error and cache record.

    `allow_empty`: an empty answer is a result (cached) rather than a malformed reply (retried, then
    an error); text models may legitimately answer nothing, a captioner may not. `warn_truncated`:
    log answers cut at the token budget (a cut caption is incomplete; a cut probe answer is routine)."""

    def __init__(self, kind: str, name: str, settings: APISettings, cache_dir: Path, allow_empty: bool = True,
                 warn_truncated: bool = False):
        self.kind = kind
        self.name = name
        self.owner = f"{kind} {name}"
        self.settings = settings
        self.allow_empty = allow_empty
        self.warn_truncated = warn_truncated
        self.url = settings.base_url.rstrip("/") + "/chat/completions"
        self.cache_dir = Path(cache_dir)
        self.stats = {"cached": 0, "sent": 0}  # requests answered from the cache / sent (HTTP attempts)
        self._stats_lock = threading.Lock()

    def body(self, model: str, messages: list[dict[str, Any]], max_new_tokens: int) -> dict[str, Any]:
        """A request body with the entry's sampling settings and extra fields."""
        body: dict[str, Any] = {"model": model, "messages": messages}
        if self.settings.temperature is not None:
            body["temperature"] = self.settings.temperature
        body[self.settings.max_tokens_param] = max_new_tokens
        body.update(self.settings.extra_body)
        return body

    def key(self, body: dict[str, Any]) -> str:
        """Hash of everything that determines the answer: endpoint and body (never the key)."""
        canonical = json.dumps({"url": self.url, "body": body}, sort_keys=True, ensure_ascii=False,
                               separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def answer(self, requests: list[ChatRequest]) -> list[str]:
        """The answers in input order: cached ones read, the others sent (identical ones once)."""
        answers: dict[str, str] = {}
        todo: dict[str, ChatRequest] = {}
        for request in requests:
            if request.key in answers or request.key in todo:
                continue
            cached = self._read_cache(request.key)
            if cached is None or (not cached and not self.allow_empty):
                todo[request.key] = request
            else:
                answers[request.key] = cached
        with self._stats_lock:
            self.stats["cached"] += len(answers)
        if todo:
            log.info("%s: %d request(s) from the cache, %d to send", self.owner, len(answers), len(todo))
            answers.update(self._send_all(todo))
        return [answers[r.key] for r in requests]

    def api_key(self) -> str | None:
        name = self.settings.key_env
        if name is None:
            return None
        key = os.environ.get(name)
        if not key:
            raise APIError(
                f"{self.owner}: the environment variable {name} (api.key_env) is not set or "
                "empty; export the API key in it before running"
            )
        return key

    def _send_all(self, todo: dict[str, ChatRequest]) -> dict[str, str]:
        api_key = self.api_key()
        abort = threading.Event()
        answers: dict[str, str] = {}
        pool = ThreadPoolExecutor(max_workers=self.settings.max_concurrency, thread_name_prefix=f"api-{self.name}")
        try:
            futures = {pool.submit(self._answer, request, api_key, abort): key for key, request in todo.items()}
            done, pending = wait(futures, return_when=FIRST_EXCEPTION)
            if pending:  # one request failed for good: stop the rest (answered ones are cached)
                abort.set()
                for future in pending:
                    future.cancel()
                wait(pending)
            errors = [f.exception() for f in futures if f.done() and not f.cancelled() and f.exception()]
            real = [e for e in errors if not isinstance(e, _Aborted)]
            if real:
                raise real[0]
            for future, key in futures.items():
                answers[key] = future.result()
        finally:
            abort.set()
            pool.shutdown(wait=True, cancel_futures=True)
        return answers

    def _answer(self, request: ChatRequest, api_key: str | None, abort: threading.Event) -> str:
        """One request until it is answered (and cached), or fails for good."""
        s = self.settings
        label = f"{self.owner}: {request.label}"
        transient = malformed = 0
        while True:
            if abort.is_set():
                raise _Aborted(label)
            try:
                reply, content = self._post(request.body, api_key, label)
                if not content and not self.allow_empty:
                    raise MalformedReply(_no_text(reply))
            except _Transient as e:
                transient += 1
                if transient > s.max_retries:
                    raise APIError(f"{label} failed after {transient} attempt(s): {e}") from None
                delay = self._backoff(transient, e.retry_after)
                log.warning("%s: %s; retry %d/%d in %.2fs", label, e, transient, s.max_retries, delay)
            except MalformedReply as e:
                malformed += 1
                if malformed > s.malformed_retries:
                    raise APIError(f"{label}: malformed reply {malformed} time(s): {e} (HTTP 200 from {self.url})") from None
                delay = self._backoff(malformed, None)
                log.warning("%s: malformed reply (%s); retry %d/%d in %.2fs", label, e, malformed,
                            s.malformed_retries, delay)
            else:
                finish_reason = reply["choices"][0].get("finish_reason")
                if not content:
                    log.warning("%s: empty answer (finish_reason=%s)", label, finish_reason)
                elif finish_reason == "length" and self.warn_truncated:
                    log.warning("%s: answer cut at max_new_tokens (%d); raise it for complete answers", label,
                                request.body.get(s.max_tokens_param, 0))
                self._write_cache(request, reply, content)
                return content
            if self._pause(abort, delay):
                raise _Aborted(label)

    @staticmethod
    def _pause(abort: threading.Event, delay: float) -> bool:
        """Wait `delay` seconds before a retry; True when the run was stopped meanwhile. One place,
        so the tests can read the retry schedule without sleeping through it."""
        return abort.wait(delay)

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        s = self.settings
        if retry_after is not None:
            return min(max(retry_after, 0.0), s.backoff_max_s)
        return min(s.backoff_max_s, s.backoff_base_s * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)

    def _post(self, body: dict, api_key: str | None, label: str) -> tuple[dict, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json", "User-Agent": "akb"}
        if api_key is not None:
            headers["Authorization"] = f"Bearer {api_key}"
        request = urllib.request.Request(self.url, data=json.dumps(body).encode(), headers=headers, method="POST")
        with self._stats_lock:
            self.stats["sent"] += 1
        try:
            with urllib.request.urlopen(request, timeout=self.settings.timeout_s) as response:
                raw = response.read()
        except urllib.error.HTTPError as e:
            detail = _redact(_error_text(e), api_key)
            if e.code in RETRY_STATUS or e.code >= 500:
                raise _Transient(f"HTTP {e.code} {detail}".strip(), _retry_after(e.headers)) from None
            raise APIError(f"{label}: HTTP {e.code} from {self.url} (not retried): {detail}") from None
        except (TimeoutError, urllib.error.URLError, http.client.HTTPException, OSError) as e:
            reason = getattr(e, "reason", e)
            if isinstance(reason, TimeoutError) or isinstance(e, TimeoutError):
                raise _Transient(f"no reply within {self.settings.timeout_s:g}s") from None
            raise _Transient(_redact(f"connection error: {type(reason).__name__}: {reason}", api_key)) from None
        return parse_reply(raw, api_key)

    # --- cache ---------------------------------------------------------------------------------------

    def _cache_path(self, key: str) -> Path:
        return self.cache_dir / key[:2] / f"{key}.json"

    def _read_cache(self, key: str) -> str | None:
        path = self._cache_path(key)
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            log.warning("%s: ignoring unreadable cache file %s (%s)", self.owner, path, e)
            return None
        content = record.get("content") if isinstance(record, dict) else None
        return content if isinstance(content, str) else None

    def _write_cache(self, request: ChatRequest, reply: dict, content: str) -> None:
        stored = request.body if request.record is None else request.record
        record = {"key": request.key, self.kind: self.name, "url": self.url, "request": stored, "content": content,
                  "response": reply, "cached_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        with atomic_path(self._cache_path(request.key)) as tmp:
            tmp.write_text(json.dumps(record, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


class APIChatModel(LanguageModel):
    def __init__(self, spec: ModelSpec, settings: APISettings):
        chat = spec.chat
        if not chat.use_template or chat.thinking is not None or chat.template_kwargs:
            raise ValueError(
                f"model {spec.name}: an API server applies its own chat template, so chat.use_template, "
                "chat.thinking and chat.template_kwargs do not apply; pass provider parameters through "
                "api.extra_body instead (e.g. reasoning_effort, or chat_template_kwargs for vLLM)"
            )
        self.spec = spec
        self.settings = settings
        cache_dir = Path(settings.cache_dir) if settings.cache_dir else CACHE_ROOT / spec.name
        self.client = ChatClient("model", spec.name, settings, cache_dir)

    @classmethod
    def from_spec(cls, spec: ModelSpec) -> APIChatModel:
        return cls(spec, APISettings.from_spec(spec))

    @property
    def url(self) -> str:
        return self.client.url

    @property
    def cache_dir(self) -> Path:
        return self.client.cache_dir

    @property
    def stats(self) -> dict[str, int]:
        return self.client.stats

    # --- the LanguageModel interface -------------------------------------------------------------

    def prompt(self, user_text: str) -> str:
        return user_text  # the server wraps it in the chat template; see `messages`

    def continuation(self, text: str) -> str:
        return text

    def token_length(self, text: str) -> int:
        return max(1, math.ceil(len(text) / CHARS_PER_TOKEN))

    def loglikelihood(self, requests: list[tuple[str, str]]) -> list[Continuation]:
        raise NotImplementedError(
            f"model {self.spec.name}: chat-completion APIs cannot provide the log-likelihood of a given "
            "continuation, so API models cannot be probed in loglik mode; use mode: generate "
            "(probe_mode: generate on the model entry)"
        )

    def generate(self, prompts: list[str], max_new_tokens: int) -> list[str]:
        requests = []
        for prompt in prompts:
            body = self.request_body(prompt, max_new_tokens)
            key = self.request_key(body)
            requests.append(ChatRequest(body, key, f"request {key[:12]} (user message {_preview(body)})"))
        return self.client.answer(requests)

    # --- requests ----------------------------------------------------------------------------------

    def messages(self, user_text: str) -> list[dict[str, str]]:
        messages = [{"role": "user", "content": user_text}]
        if self.spec.chat.system_prompt:
            messages.insert(0, {"role": "system", "content": self.spec.chat.system_prompt})
        return messages

    def request_body(self, prompt: str, max_new_tokens: int) -> dict[str, Any]:
        return self.client.body(self.spec.source, self.messages(prompt), max_new_tokens)

    def request_key(self, body: dict[str, Any]) -> str:
        return self.client.key(body)


def parse_reply(raw: bytes, api_key: str | None = None) -> tuple[dict, str]:
    """The reply object and its answer text, or MalformedReply."""
    try:
        reply = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise MalformedReply(f"not JSON: {_redact(_clip(raw.decode('utf-8', 'replace')), api_key)!r}") from None
    if not isinstance(reply, dict):
        raise MalformedReply(f"expected a JSON object, got {type(reply).__name__}")
    choices = reply.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        error = reply.get("error")
        detail = f" (error: {_redact(_clip(json.dumps(error)), api_key)})" if error else ""
        raise MalformedReply(f"no choices{detail}")
    choice = choices[0]
    message = choice.get("message")
    if not isinstance(message, dict):
        raise MalformedReply("choices[0] has no message")
    content = message.get("content")
    if isinstance(content, list):  # content parts: keep the text ones
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    if content is None and (choice.get("finish_reason") in ("length", "content_filter") or message.get("refusal")):
        # A real, reproducible outcome (budget spent, e.g. on reasoning; filtered; refused): no answer.
        content = ""
    if not isinstance(content, str):
        raise MalformedReply("choices[0].message has no text content")
    return reply, content.strip()


def _retry_after(headers) -> float | None:
    """Seconds from `retry-after-ms` or `Retry-After` (seconds or an HTTP date), if present."""
    if headers is None:
        return None
    value = headers.get("retry-after-ms")
    if value is not None:
        try:
            return float(value) / 1000
        except ValueError:
            pass
    value = headers.get("Retry-After")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _error_text(error: urllib.error.HTTPError) -> str:
    """The server's error message, if it sent one."""
    try:
        raw = error.read()
    except Exception:  # noqa: BLE001 - the status code alone is still a useful error
        return ""
    try:
        payload = json.loads(raw)
        message = payload.get("error", payload) if isinstance(payload, dict) else payload
        if isinstance(message, dict):
            message = message.get("message", message)
        text = message if isinstance(message, str) else json.dumps(message)
    except (ValueError, UnicodeDecodeError):
        text = raw.decode("utf-8", "replace")
    return _clip(text)


def _redact(text: str, api_key: str | None) -> str:
    return text.replace(api_key, "[redacted]") if api_key else text


def _clip(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


def _no_text(reply: dict) -> str:
    """Why a reply holds no text, with the fix when there is one."""
    reason = reply["choices"][0].get("finish_reason")
    hint = "; raise max_new_tokens (reasoning models spend part of it thinking)" if reason == "length" else ""
    return f"no text in the reply (finish_reason={reason}){hint}"


def _preview(body: dict) -> str:
    return repr(_clip(body["messages"][-1]["content"], 60))
