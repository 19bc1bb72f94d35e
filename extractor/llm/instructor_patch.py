"""The one place extractor reaches into instructor's internals: a speed patch, pinned to the instructor
releases it was written for (`instructor>=1.17,<1.18` in pyproject.toml) and guarded by
tests/test_backends.py::test_instructor_layout_is_the_one_the_speedup_was_written_for.

instructor has no supported hook for this (its hooks observe requests and responses; the check runs before
them), so the patch stays here, alone, and does nothing when instructor's layout differs.
"""

from __future__ import annotations

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
