"""Test support shipped with the package: `fakeserver`, an OpenAI-compatible HTTP server that injects faults
(429, 5xx, timeouts, bad JSON, refusals) and answers from a table or an oracle.

Stands alone: imports nothing of extractor's rooms (checked by the import contract), so tests and benches
can run it in a subprocess (`python -m extractor.testing.fakeserver`).
"""
