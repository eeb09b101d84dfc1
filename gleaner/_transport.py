"""What both clients do with httpx: settings from the environment, requests from Calls, failures classified."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from gleaner import _calls, _event_stream
from gleaner.errors import ApiConnectionError, UnexpectedResponse
from gleaner.retries import Failure, RetryPolicy, retry_after_s, status_failure

API_PATH = "/api/v1"
DEFAULT_PORT = 8080
USER_AGENT = "gleaner-client"
# the request never reached the gateway: safe to send again whatever it was
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# it may have: a timeout waiting for the answer, a connection dropped before the answer
UNKNOWN = (httpx.ReadTimeout, httpx.WriteTimeout, httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError)

Result = httpx.Response | httpx.TransportError


@dataclass(frozen=True, slots=True)
class Settings:
    """Where the API is (`url`, ending in /api/v1 as a rule) and the key sent with every request."""

    url: str
    token: str | None

    @classmethod
    def resolve(cls, url: str | None, token: str | None, env: Mapping[str, str] | None = None) -> Settings:
        """Arguments first, else GLEANER_API_URL and GLEANER_API_TOKEN (else GLEANER_ADMIN_TOKEN), as the
        `gleaner` operator commands read them; without a URL, this host's gateway."""
        env = os.environ if env is None else env
        url = (url or env.get("GLEANER_API_URL") or default_url(env)).rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"the API URL must start with http:// or https://, not {url!r} (GLEANER_API_URL)")
        return cls(url, token or env.get("GLEANER_API_TOKEN") or env.get("GLEANER_ADMIN_TOKEN") or None)

    @property
    def root(self) -> str:
        """The server root, where /health is: the API URL without its /api/v1."""
        return self.url.removesuffix(API_PATH)

    def headers(self) -> dict[str, str]:
        auth = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return {"User-Agent": USER_AGENT, "Accept": "application/json", **auth}


def default_url(env: Mapping[str, str]) -> str:
    """This host's gateway: GLEANER_HTTP_HOST (a wildcard address means loopback) and GLEANER_HTTP_PORT."""
    host = env.get("GLEANER_HTTP_HOST") or "127.0.0.1"
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    port = env.get("GLEANER_HTTP_PORT") or DEFAULT_PORT
    return f"http://{host}:{port}{API_PATH}"


def build(
    http: httpx.Client | httpx.AsyncClient, settings: Settings, call: _calls.Call[_calls.T], timeout_s: float
) -> httpx.Request:
    base = settings.root if call.from_root else settings.url
    timeout = httpx.Timeout(timeout_s, read=timeout_s + call.hold_s)
    return http.build_request(
        call.method, base + call.path, params=call.params, content=call.body, headers=call.headers(), timeout=timeout
    )


def retry_delay(policy: RetryPolicy, call: _calls.Call[_calls.T], attempt: int, result: Result) -> float | None:
    """Seconds to wait before sending `call` again after `result`, or None when `result` is final."""
    if isinstance(result, httpx.Response):
        if result.status_code in call.answers:  # /health's 503 says what is down: an answer, not a failure
            return None
        failure = status_failure(result.status_code)
        after = retry_after_s(result.headers.get("Retry-After"))
    else:
        failure, after = transport_failure(result), None
    if failure is None:
        return None
    return policy.delay_s(attempt, failure, repeatable=call.repeatable, retry_after_s=after)


def transport_failure(error: httpx.TransportError) -> Failure | None:
    """None for errors a repeat cannot cure (a bad URL, an unsupported scheme)."""
    if isinstance(error, NOT_SENT):
        return Failure.NOT_SENT
    return Failure.UNKNOWN if isinstance(error, UNKNOWN) else None


def finish(call: _calls.Call[_calls.T], result: Result, settings: Settings) -> _calls.T:
    """The call's answer, or the error `result` is (an ApiError, or an ApiConnectionError)."""
    if isinstance(result, httpx.TransportError):
        raise ApiConnectionError(f"{call.method} {call.path} at {settings.url} failed: {_describe(result)}") from result
    return _calls.answer(call, result.status_code, result.content, retry_after_s(result.headers.get("Retry-After")))


def _describe(error: httpx.TransportError) -> str:
    text = str(error) or type(error).__name__
    return f"{type(error).__name__}: {text}" if text != type(error).__name__ else text


def stream_request(
    http: httpx.Client | httpx.AsyncClient,
    settings: Settings,
    stream: _event_stream.EventStream,
    timeout_s: float,
    read_timeout_s: float | None,
) -> httpx.Request:
    """`GET /events` as a stream: `read_timeout_s` bounds the silence between lines (the keep-alive breaks it)."""
    call = stream.call
    timeout = httpx.Timeout(timeout_s, read=read_timeout_s)
    return http.build_request(
        call.method, settings.url + call.path, params=call.params, headers=stream.headers(), timeout=timeout
    )


def reconnect_delay(
    policy: RetryPolicy, stream: _event_stream.EventStream, attempt: int, result: Result | None, settings: Settings
) -> float | None:
    """Seconds to wait before opening the event stream again, or None: the iteration is over. `result` is None
    when the server ended the stream; an error the retries do not cure is raised."""
    if result is None:
        return stream.retry_s if stream.resumes() else None
    delay = retry_delay(policy, stream.call, attempt, result)
    if delay is None:
        finish(stream.call, result, settings)  # raises: the answer is an error, or the connection failed
        raise UnexpectedResponse(f"GET {stream.call.path}: HTTP {getattr(result, 'status_code', '?')}, not a stream")
    return delay
