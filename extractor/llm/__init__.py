"""Talking to models: the backend contract and its registry, the OpenAI-compatible backend, the embedded
llama.cpp server, the HTTP transport with the one retry policy, the adaptive in-flight limit, the OpenAI
Batch API, prices, and token estimates.

- `backends`: `Backend` (the small async contract), `open_backend` (the registry), the OpenAI-compatible
  backend and the Batch API backend;
- `embedded`: starts and owns the local llama.cpp server of the embedded default;
- `request`: the shape of one extraction request built without instructor (the tool, n=K and Batch API
  parameters, the answer as a tool call and its parsing), shared with the fine-tuning export;
- `transport`: the retrying HTTP transport and `CallMeter` (tokens, attempts, latency of one document);
- `throttle`: `AdaptiveLimit`, the in-flight limit that backs off on 429/503;
- `batchapi`: the Batch API's files and states;
- `pricing`: list and fine-tuning prices (genai-prices, then `[prices]` of the config);
- `tokens`: how many tokens a text costs, from characters (`TokenRate`, calibrated on the journal's counts).

May import: `config`, `errors`, `layout`, `formatting`, `schemas`, `table` (the shared top modules), nothing
of the other rooms.
"""
