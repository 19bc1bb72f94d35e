"""The one place extractor reaches into its client libraries' internals: six speed patches, each checked when it
is installed and doing nothing when the library's layout differs.

- instructor's async-validator check, pinned to the instructor releases it was written for
  (`instructor>=1.17,<1.18` in pyproject.toml) and guarded by
  tests/test_backends.py::test_instructor_layout_is_the_one_the_speedup_was_written_for. instructor has no
  supported hook for this (its hooks observe requests and responses; the check runs before them).
- the openai client's request transform of chat completions (`skip_identity_transforms`), guarded by
  tests/test_backends.py::test_the_chat_request_transform_is_skipped_only_where_it_changes_nothing.
- the openai client's platform, looked up once before its first request (`know_the_platform`), guarded by
  tests/test_backends.py::test_the_client_knows_its_platform_before_the_first_request.
- instructor's running token totals over re-asks (`skip_usage_totals`), guarded by
  tests/test_backends.py::test_instructor_keeps_no_token_totals_and_the_transport_still_meters_every_attempt.
- httpx's cookie jar, asked only by answers that set a cookie (`cookies_only_when_set`), guarded by
  tests/test_backends.py::test_a_cookie_an_answer_sets_is_still_sent_back.
- the openai client's URL for a path, parsed once per base URL (`remember_prepared_urls`), guarded by
  tests/test_backends.py::test_a_remembered_url_is_the_one_the_client_would_prepare.
"""

from __future__ import annotations

import asyncio
import functools
import typing
from collections.abc import Callable
from typing import Any


def remember_async_validator_checks() -> bool:
    """Let instructor check each response model for async validators once, not 7 times per call.

    instructor 1.17 walks the response model's whole type tree in `reject_async_validators` seven
    times per `create` call: ~30% of the client CPU per document (py-spy, bench/throughput.py), which
    at 32 documents in flight delays every response queued behind it. The check depends only on the
    class, so a class that passed once is remembered (weakly); a model that declares async
    validators is still rejected on every call. Returns False, changing nothing, if instructor's
    layout differs from the one this was written for (tests/test_backends.py then fails loudly).
    """
    import weakref

    try:
        from instructor.v2.core import patch as instructor_patch
        from instructor.v2.validation import async_validators
    except ImportError:
        return False
    check = getattr(async_validators, "reject_async_validators", None)
    if check is None or getattr(instructor_patch, "reject_async_validators", None) not in (check, None):
        return False
    if getattr(check, "remembers_passed_models", False):
        return True
    passed: weakref.WeakSet[type] = weakref.WeakSet()

    def reject_async_validators(response_model: Any) -> None:
        if isinstance(response_model, type) and response_model in passed:
            return
        check(response_model)  # raises for a model with async validators
        if isinstance(response_model, type):
            passed.add(response_model)

    reject_async_validators.remembers_passed_models = True  # type: ignore[attr-defined]
    reject_async_validators.__doc__ = check.__doc__
    # Every other caller imports the function from this module at call time; patch.py bound it at import.
    async_validators.reject_async_validators = reject_async_validators
    instructor_patch.reject_async_validators = reject_async_validators
    return True


# Past this many values the data is not what extractor builds (a request is a few hundred): let openai transform it.
_PLAIN_NODES = 100_000


def _plain(value: object) -> bool:
    """Whether `value` is JSON as Python builds it (dicts with str keys, lists, exact str/int/float/bool/None):
    what the transform passes through unchanged where no field of the type carries an alias or a format.

    A loop over a stack rather than recursion: it runs on every request (a tool's JSON schema is ~200 values),
    and a self-containing dict ends at the node budget instead of recursing forever."""
    stack = [value]
    budget = _PLAIN_NODES
    while stack:
        budget -= 1
        if budget < 0:
            return False
        v = stack.pop()
        t = type(v)
        if t is str or t is int or t is float or t is bool or v is None:
            continue
        if t is dict:
            for k, item in v.items():  # type: ignore[attr-defined]
                if type(k) is not str:
                    return False
                stack.append(item)
        elif t is list:
            stack.extend(v)  # type: ignore[arg-type]
        else:
            return False
    return True


def _renames_or_formats(root: object) -> bool:
    """Whether any type under `root` (TypedDict fields, unions, containers) carries a `PropertyInfo` with an alias
    or a format: the only things openai's transform changes in plain JSON data."""
    from openai._utils._transform import PropertyInfo, is_typeddict

    seen: set[int] = set()
    todo = [root]
    while todo:
        tp = todo.pop()
        if id(tp) in seen:
            continue
        seen.add(id(tp))
        for meta in getattr(tp, "__metadata__", ()) or ():
            if isinstance(meta, PropertyInfo) and (meta.alias is not None or meta.format is not None):
                return True
        if is_typeddict(tp):  # type: ignore[arg-type]  # any object may be asked
            todo.extend(typing.get_type_hints(tp, include_extras=True).values())
        todo.extend(a for a in typing.get_args(tp) if not isinstance(a, (str, int, float, bool)))
    return False


def skip_identity_transforms() -> bool:
    """Let the openai client send a chat request's plain JSON as it is instead of walking it against its types.

    openai's `chat.completions.create` runs its params through `_utils.async_transform` (aliases, date and file
    formats) on every call: with the messages' union of six TypedDicts and the tool's JSON schema that was ~18% of
    extractor's client CPU per document at 0 ms latency (cProfile, bench/throughput.py; 92 recursive calls a
    request). No field of `CompletionCreateParams` has an alias or a format (checked here, over the whole type
    tree, before patching), so for plain JSON the transform only drops the not-given values: that is what the
    patch does, and anything else (a pydantic model, a generator, a date) still goes through the transform.
    Returns False, changing nothing, if the client's layout differs or a field gained an alias or a format.
    """
    try:
        from openai._types import NotGiven, Omit
        from openai.resources.chat.completions import completions
        from openai.types.chat import completion_create_params as params
    except ImportError:
        return False
    original = getattr(completions, "async_maybe_transform", None)
    if original is None:
        return False
    if getattr(original, "skips_identity_transforms", False):
        return True
    targets = tuple(getattr(params, name, None) for name in (
        "CompletionCreateParams", "CompletionCreateParamsNonStreaming", "CompletionCreateParamsStreaming"))
    if None in targets or any(_renames_or_formats(t) for t in targets):
        return False

    async def async_maybe_transform(data: object, expected_type: object) -> Any:
        if expected_type in targets and type(data) is dict:
            given = {k: v for k, v in data.items() if not isinstance(v, (NotGiven, Omit))}
            if _plain(given):
                return given
        return await original(data, expected_type)

    async_maybe_transform.skips_identity_transforms = True  # type: ignore[attr-defined]
    async_maybe_transform.__doc__ = original.__doc__
    completions.async_maybe_transform = async_maybe_transform
    return True


def skip_usage_totals(ours: Callable[[], bool]) -> bool:
    """Let instructor skip its running total of tokens over a call's re-asks in extractor's own calls (`ours()`
    true), which never read it; any other instructor call in the process keeps its totals.

    instructor 1.17 accumulates every attempt's usage into a total (`_accumulate_models`: a deep `model_copy` of
    the usage's detail models per field, then one more snapshot of the total for the result): 63 us a call
    (timeit on a ChatCompletion with token details), against ~3 ms of client CPU a document at 200 ms
    (bench/throughput.py). extractor meters every
    attempt's tokens in its transport (`llm.transport.CallMeter`), reads neither `_total_usage` nor the usage
    instructor writes back into the response, and passes no `token_budget` (which would need the totals). With
    no total to keep, instructor's retry loop leaves each response's usage as the server sent it. Returns False,
    changing nothing, if instructor's retry module is laid out differently.
    """
    try:
        from instructor.v2.core import retry
    except ImportError:
        return False
    initialize = getattr(retry, "_initialize_usage", None)
    compatible = getattr(retry, "has_compatible_usage", None)
    update = getattr(retry, "update_total_usage", None)
    if initialize is None or compatible is None or update is None:
        return False
    if getattr(initialize, "skips_usage_totals", False):
        return True

    def _initialize_usage(provider: Any) -> Any:
        return None if ours() else initialize(provider)

    def has_compatible_usage(response: object, total_usage: object) -> bool:
        # Without a total there is nothing to be compatible with; the original would try an anthropic import.
        return total_usage is not None and compatible(response, total_usage)

    def update_total_usage(response: Any, total_usage: Any) -> Any:
        return response if total_usage is None else update(response=response, total_usage=total_usage)

    _initialize_usage.skips_usage_totals = True  # type: ignore[attr-defined]
    # retry_sync_v2 and retry_async_v2 look these up in their module's globals at each call.
    retry._initialize_usage = _initialize_usage
    retry.has_compatible_usage = has_compatible_usage
    retry.update_total_usage = update_total_usage
    return True


async def know_the_platform(client: Any) -> bool:
    """Let an openai client know its platform (its X-Stainless-OS header) before its first request.

    openai looks it up in a thread on a client's first request, and every request that starts before that lookup
    returns makes a thread trip of its own: at the start of a run the whole first wave (32 requests) left the event
    loop there, and the first request waited behind the other documents being read and prepared (~25 ms, timed by
    walking the tasks' await chains; bench/throughput.py --timeline's first committed row went from 0.344 s to
    0.259 s with the patches below). Looked up here once, in the same thread-pool way, before anything is sent: the
    documents that will fill the first wave are read and prepared meanwhile. Waiting for the lookup in place instead
    put the first request on the wire ~20 ms later (the same await-chain walk) and was slower: whole run 0.945-0.951
    against 0.950-0.954 of concurrency/latency, four alternating rounds of `bench/throughput.py --layer extractor`,
    d8bbf68 against 08b2cdd. Returns False, changing nothing, if the client keeps no such attribute.
    """
    if not hasattr(client, "_platform"):
        return False
    if client._platform is None:
        from openai._base_client import get_platform

        client._platform = await asyncio.to_thread(get_platform)
    return True


def cookies_only_when_set(client: Any) -> bool:
    """Let an httpx client consult its cookie jar only for an answer that sets a cookie.

    httpx hands every response to `Cookies.extract_cookies`, which wraps it and its request for `http.cookiejar`
    even when no `Set-Cookie` header is there: 15 us a response in a timeit loop, against ~3 ms of client CPU a
    document at 200 ms (bench/throughput.py). An answer that does set one (a load balancer's
    sticky session) is stored and sent back as before. Returns False, changing nothing, if the client keeps its
    cookies elsewhere.
    """
    import httpx

    jar = getattr(client, "_cookies", None)
    if type(jar) is not httpx.Cookies or getattr(client, "cookies", None) is not jar:
        return False
    client._cookies = _set_cookies_only()(jar)
    return True


@functools.cache
def _set_cookies_only() -> type:
    import httpx

    class SetCookiesOnly(httpx.Cookies):
        """httpx.Cookies that hand a response to the jar only when it carries a Set-Cookie header."""

        def extract_cookies(self, response: httpx.Response) -> None:
            if "set-cookie" in response.headers:
                super().extract_cookies(response)

    return SetCookiesOnly


def remember_prepared_urls(client: Any) -> bool:
    """Let an openai client parse the URL of each path it posts to once, not on every request.

    `_build_request` merges the path ("/chat/completions") into the base URL through two URL parses on every call:
    27 us in a timeit loop, ~0.1 ms of the ~3 ms of client CPU per document inside a 200 ms run over
    bench/throughput.py's letters (timed around the call by a throwaway wrapper). Its URLs are immutable values
    that depend only on the path and `base_url`, so one is kept per path while `base_url` stays the same object
    (setting it makes a new one). Returns False, changing nothing, if the client has no such method or already
    remembers.
    """
    prepare = getattr(type(client), "_prepare_url", None)
    if prepare is None or "_prepare_url" in vars(client) or not hasattr(client, "base_url"):
        return False
    prepared: dict[str, tuple[object, object]] = {}

    def _prepare_url(url: str) -> Any:
        base = client.base_url
        if (hit := prepared.get(url)) is not None and hit[0] is base:
            return hit[1]
        merged = prepare(client, url)
        if len(prepared) < 64:  # the few paths a client posts to; anything else is prepared each time
            prepared[url] = (base, merged)
        return merged

    client._prepare_url = _prepare_url
    return True
