"""The `api` backend against a local OpenAI-compatible server (http.server in a thread)."""

import email.utils
import json
import socket
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from akb.config import validate_config
from akb.io import read_jsonl
from akb.models import ModelSpec, load_model
from akb.models import api as api_module
from akb.models.api import APIChatModel, APIError, ChatClient
from akb.probe.run import probe

SECRET = "sk-test-0123456789-SECRET"
SLOW_REPLY_S = 10
KEY_ENV = "AKB_TEST_API_KEY"


class FakeServer(ThreadingHTTPServer):
    """Answers "reply to: <user message>" unless its script says otherwise.

    `script` is consumed one action per request: "ok", "bad-json", "no-choices", "sleep" (longer
    than the client's timeout), (status, headers) for an HTTP error. When the script is empty,
    `default` applies. Every request (body and Authorization header) is recorded."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.lock = threading.Lock()
        self.script: list = []
        self.default = "ok"
        self.delay = 0.0  # seconds each answer takes (to overlap concurrent requests)
        self.requests: list[dict] = []
        self.in_flight = self.max_in_flight = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def user_messages(self) -> list[str]:
        return [r["body"]["messages"][-1]["content"] for r in self.requests]

    def handle_error(self, request, client_address):
        pass  # a client that timed out closed the socket; nothing to report


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        server: FakeServer = self.server
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with server.lock:
            server.requests.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
            action = server.script.pop(0) if server.script else server.default
            server.in_flight += 1
            server.max_in_flight = max(server.max_in_flight, server.in_flight)
        try:
            time.sleep(server.delay)
            self.respond(action, body)
        finally:
            with server.lock:
                server.in_flight -= 1

    def respond(self, action, body):
        if action == "sleep":  # far past the client's timeout: its wait ends at the timeout, not here
            time.sleep(SLOW_REPLY_S)
            action = "ok"
        if isinstance(action, tuple):
            status, headers = action
            echo = f"failure {status}; you sent {self.headers['Authorization']}"  # a careless server
            self.send(status, json.dumps({"error": {"message": echo}}).encode(), headers)
        elif action == "bad-json":
            self.send(200, b'{"choices": [{"message": {"content": "trunc')
        elif action == "no-choices":
            self.send(200, json.dumps({"id": "x", "object": "chat.completion"}).encode())
        else:
            answer = "reply to: " + body["messages"][-1]["content"]
            reply = {"id": "cmpl-1", "object": "chat.completion", "model": body["model"],
                     "choices": [{"index": 0, "message": {"role": "assistant", "content": f" {answer} "},
                                  "finish_reason": "stop"}]}
            self.send(200, json.dumps(reply).encode())

    def send(self, status, payload, headers=None):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)


@contextmanager
def running_server(monkeypatch, handler=None):
    """A FakeServer on loopback (answering with `handler`, default Handler), the key set, no proxy."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv(KEY_ENV, SECRET)
    srv = FakeServer()
    if handler is not None:
        srv.RequestHandlerClass = handler
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.fixture
def server(monkeypatch):
    with running_server(monkeypatch) as srv:
        yield srv


@pytest.fixture
def make_model(server, tmp_path):
    def make(name="fake", chat=None, **api) -> APIChatModel:
        settings = {"base_url": server.url, "key_env": KEY_ENV, "cache_dir": str(tmp_path / "cache" / name),
                    "backoff_base_s": 0.001, "backoff_max_s": 2.0, "timeout_s": 5, "max_retries": 3, **api}
        entry = {"name": name, "backend": "api", "source": "fake-model-1", "api": settings}
        if chat:
            entry["chat"] = chat
        return load_model(ModelSpec.from_config(entry))

    return make


def cache_text(tmp_path) -> str:
    return "".join(p.read_text() for p in sorted((tmp_path / "cache").rglob("*")) if p.is_file())


PROMPTS = [f"question {i}: which sound is louder?" + " really" * (i % 3) for i in range(12)]


def test_answers_in_input_order_with_the_chat_structure(make_model, server):
    model = make_model(chat={"system_prompt": "Answer with a letter."}, temperature=0, extra_body={"seed": 7})
    prompts = [model.prompt(p) for p in PROMPTS]
    assert prompts == PROMPTS and model.continuation("B") == "B"
    assert model.generate(prompts, max_new_tokens=16) == [f"reply to: {p}" for p in PROMPTS]
    request = server.requests[0]
    assert request["path"] == "/v1/chat/completions"
    body = request["body"]
    assert body["model"] == "fake-model-1" and body["temperature"] == 0 and body["max_tokens"] == 16
    assert body["seed"] == 7 and body["messages"][0] == {"role": "system", "content": "Answer with a letter."}
    assert body["messages"][1]["role"] == "user" and len(server.requests) == len(PROMPTS)


def test_request_settings_for_reasoning_models(make_model, server):
    model = make_model(temperature=None, max_tokens_param="max_completion_tokens",
                       extra_body={"reasoning_effort": "low"})
    model.generate(["q"], 64)
    body = server.requests[0]["body"]
    assert "temperature" not in body and "max_tokens" not in body
    assert body["max_completion_tokens"] == 64 and body["reasoning_effort"] == "low"
    assert body["messages"] == [{"role": "user", "content": "q"}]


def test_token_length_is_an_estimate_that_orders_by_length(make_model):
    model = make_model()
    assert model.token_length("a" * 40) == 10 and model.token_length("") == 1
    assert model.token_length(PROMPTS[2]) > model.token_length(PROMPTS[0])


@pytest.fixture
def waits(monkeypatch):
    """The delays the client waits before its retries, in order, recorded instead of slept through."""
    return record_waits(monkeypatch)


def record_waits(monkeypatch, jitter="high") -> list[float]:
    """Record ChatClient's waits (none is slept); the backoff's jitter drawn at the top ("high") or
    the bottom ("low") of its bounds, which must be [0.5, 1]."""
    recorded: list[float] = []

    def pause(abort, delay):
        recorded.append(delay)
        return False

    def uniform(low, high):
        assert (low, high) == (0.5, 1.0)
        return high if jitter == "high" else low

    monkeypatch.setattr(ChatClient, "_pause", staticmethod(pause))
    monkeypatch.setattr(api_module.random, "uniform", uniform)
    return recorded


@pytest.mark.parametrize(("jitter", "schedule"), [("high", [1, 2, 4, 6, 6]), ("low", [0.5, 1, 2, 3, 3])])
def test_backoff_doubles_from_the_base_within_the_jitter_bounds_up_to_the_cap(make_model, server, monkeypatch,
                                                                              jitter, schedule):
    waits = record_waits(monkeypatch, jitter)
    server.default = (500, {})
    with pytest.raises(APIError, match="failed after 6 attempt"):
        make_model(backoff_base_s=1, backoff_max_s=6, max_retries=5).generate(["a"], 8)
    assert waits == schedule and len(server.requests) == 6


def _http_date(seconds_from_now: float) -> str:
    return email.utils.formatdate(time.time() + seconds_from_now, usegmt=True)


@pytest.mark.parametrize(("headers", "low", "high"), [
    ({"Retry-After": "7"}, 7, 7),  # seconds
    ({"Retry-After": "0.25"}, 0.25, 0.25),
    ({"retry-after-ms": "1500"}, 1.5, 1.5),  # milliseconds, preferred to Retry-After
    ({"retry-after-ms": "1500", "Retry-After": "9"}, 1.5, 1.5),
    ("date", 28, 30),  # an HTTP date 30 s ahead (whole seconds, and the request took a moment)
    ({"Retry-After": "3600"}, 60, 60),  # capped by backoff_max_s
])
def test_the_servers_retry_after_is_the_wait(make_model, server, waits, headers, low, high):
    server.script = [(429, {"Retry-After": _http_date(30)} if headers == "date" else headers)]
    assert make_model(backoff_max_s=60).generate(["a"], 8) == ["reply to: a"]
    assert len(waits) == 1 and low <= waits[0] <= high and len(server.requests) == 2


def test_connection_refused_is_retried_then_a_clear_error(tmp_path, monkeypatch, waits):
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens on it
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    entry = {"name": "down", "backend": "api", "source": "fake-model-1",
             "api": {"base_url": f"http://127.0.0.1:{port}/v1", "key_env": None, "cache_dir": str(tmp_path),
                     "backoff_base_s": 1, "backoff_max_s": 60, "max_retries": 2}}
    with pytest.raises(APIError) as error:
        load_model(ModelSpec.from_config(entry)).generate(["is anyone there?"], 8)
    assert str(error.value).startswith("model down: request ")
    assert "'is anyone there?'" in str(error.value)
    assert "failed after 3 attempt(s): connection error: ConnectionRefusedError" in str(error.value)
    assert waits == [1, 2]


@pytest.mark.parametrize("failure", [(500, {}), (502, {}), "sleep", "bad-json", "no-choices"])
def test_transient_failure_then_success(make_model, server, failure):
    server.script = [failure, failure]
    model = make_model(timeout_s=1)  # the other replies must come within it, even on a busy machine
    assert model.generate(["a", "b"], 8) == ["reply to: a", "reply to: b"]
    assert len(server.requests) == 4 and model.stats == {"cached": 0, "sent": 4}


@pytest.mark.parametrize(
    ("failure", "settings", "attempts", "message"),
    [
        ((500, {}), {"max_retries": 2}, 3, "failed after 3 attempt(s): HTTP 500"),
        ("sleep", {"max_retries": 1, "timeout_s": 1}, 2, "no reply within 1s"),
        ("bad-json", {"malformed_retries": 2}, 3, "malformed reply 3 time(s): not JSON"),
        ("no-choices", {"malformed_retries": 0}, 1, "malformed reply 1 time(s): no choices"),
        ((401, {}), {"max_retries": 5}, 1, "HTTP 401 from http://127.0.0.1"),  # not retried
    ],
)
def test_persistent_failure_is_a_clear_error(make_model, server, tmp_path, failure, settings, attempts, message):
    server.default = failure
    with pytest.raises(APIError) as error:
        make_model(name="flaky", **settings).generate(["what is pink noise?"], 8)
    text = str(error.value)
    assert message in text and "model flaky: request " in text and "'what is pink noise?'" in text
    assert SECRET not in text and len(server.requests) == attempts
    assert not list((tmp_path / "cache").rglob("*.json"))  # failures are not cached


def test_key_is_sent_as_bearer_but_never_stored_or_reported(make_model, server, tmp_path):
    model = make_model()
    model.generate(PROMPTS[:3], 8)
    assert {r["auth"] for r in server.requests} == {f"Bearer {SECRET}"}
    text = cache_text(tmp_path)
    assert "reply to: " + PROMPTS[0] in text and SECRET not in text and KEY_ENV not in text
    server.default = (403, {})  # the server echoes the Authorization header in its error
    with pytest.raises(APIError, match="HTTP 403") as error:
        model.generate(["new question"], 8)
    assert SECRET not in str(error.value) and "[redacted]" in str(error.value)


def test_missing_key_variable_names_the_variable_and_the_model(make_model, server, monkeypatch):
    model = make_model(name="gpt-x")
    model.generate(["cached"], 8)
    monkeypatch.delenv(KEY_ENV)
    assert model.generate(["cached"], 8) == ["reply to: cached"]  # answered from the cache: no key needed
    with pytest.raises(APIError, match=f"model gpt-x: the environment variable {KEY_ENV} .* not set"):
        model.generate(["new"], 8)
    assert len(server.requests) == 1


def test_no_key_env_sends_no_authorization(make_model, server):
    make_model(key_env=None).generate(["a"], 8)
    assert server.requests[0]["auth"] is None


def test_identical_rerun_sends_nothing(make_model, server, tmp_path):
    first = make_model().generate(PROMPTS, 8)
    again = make_model()  # a fresh process, same cache directory
    assert again.generate(PROMPTS, 8) == first and again.stats == {"cached": len(PROMPTS), "sent": 0}
    assert len(server.requests) == len(PROMPTS)
    assert len(list((tmp_path / "cache").rglob("*.json"))) == len(PROMPTS)
    # Anything in the request is part of the key: another budget or system prompt is a new request.
    make_model().generate(PROMPTS[:1], 9)
    make_model(chat={"system_prompt": "Be brief."}).generate(PROMPTS[:1], 8)
    assert len(server.requests) == len(PROMPTS) + 2


def test_duplicate_prompts_in_a_batch_are_sent_once(make_model, server):
    assert make_model().generate(["a", "b", "a"], 8) == ["reply to: a", "reply to: b", "reply to: a"]
    assert sorted(server.user_messages()) == ["a", "b"]


def test_interrupted_run_resumes_with_only_the_unanswered_requests(make_model, server):
    server.script = ["ok"] * 5
    server.default = (500, {})
    with pytest.raises(APIError):
        make_model(max_concurrency=3, max_retries=1).generate(PROMPTS, 8)
    answered = set(server.user_messages()[:5])  # the script's five good answers
    assert len(answered) == 5
    server.requests.clear()
    server.default = "ok"
    model = make_model(max_concurrency=3)
    assert model.generate(PROMPTS, 8) == [f"reply to: {p}" for p in PROMPTS]
    assert sorted(server.user_messages()) == sorted(set(PROMPTS) - answered)
    assert model.stats == {"cached": 5, "sent": len(PROMPTS) - 5}


def test_concurrency_stays_within_the_bound(make_model, server):
    server.delay = 0.05
    model = make_model(max_concurrency=3)
    assert model.generate(PROMPTS, 8) == [f"reply to: {p}" for p in PROMPTS]
    assert server.max_in_flight == 3


def test_loglikelihood_is_refused(make_model):
    with pytest.raises(NotImplementedError, match="cannot provide the log-likelihood.*use mode: generate"):
        make_model().loglikelihood([("context", "continuation")])


def test_probe_generate_mode_end_to_end(make_model, server, items, tmp_path):
    out = tmp_path / "probe.jsonl"
    probe(make_model(), items, out, mode="generate", batch_size=4, max_new_tokens=8)
    rows = read_jsonl(out)
    assert [r["id"] for r in rows] == [it.id for it in items] and len(server.requests) == len(items)
    assert all(r["raw_output"].startswith("reply to: ") for r in rows)
    with pytest.raises(NotImplementedError, match="mode: generate"):
        probe(make_model(), items, tmp_path / "loglik.jsonl", mode="loglik")


@pytest.mark.parametrize(
    ("api", "chat", "message"),
    [
        (None, None, "needs an `api:` block with at least `base_url`"),
        ({"base_url": "ftp://x"}, None, "is not an http"),
        ({"base_url": "http://x", "max_tokens_param": "tokens"}, None, "max_tokens_param must be one of"),
        ({"base_url": "http://x", "extra_body": {"model": "other"}}, None, "neither `model` nor `messages`"),
        ({"base_url": "http://x", "keyenv": "K"}, None, "unknown `api` setting(s) ['keyenv']"),
        ({"base_url": "http://x"}, {"thinking": False}, "applies its own chat template"),
    ],
)
def test_bad_settings_are_clear_errors(api, chat, message):
    entry = {"name": "m", "backend": "api", "source": "gpt-5", **({"api": api} if api else {}),
             **({"chat": chat} if chat else {})}
    with pytest.raises(ValueError, match="model m: ") as error:
        load_model(ModelSpec.from_config(entry))
    assert message in str(error.value)


def test_schema_accepts_api_entries_and_fills_defaults():
    config = validate_config({"models": [
        {"name": "gpt-4o", "backend": "api", "source": "gpt-4o",
         "api": {"base_url": "https://api.openai.com/v1", "key_env": "OPENAI_API_KEY"}},
    ]})
    api = config["models"][0]["api"]
    assert api["max_concurrency"] == 4 and api["temperature"] == 0 and api["cache_dir"] is None
    model = load_model(ModelSpec.from_config(config["models"][0]))
    assert model.url == "https://api.openai.com/v1/chat/completions"
    assert str(model.cache_dir) == "resources/api_cache/gpt-4o"
