"""The merged model as a GGUF the embedded llama.cpp server loads: a copy of the base GGUF (its metadata, its
tokenizer, its chat template, every tensor training did not change, byte for byte) with the changed layers'
merged weights in float32 (exact: re-quantizing to Q4_1 would round away most of a small LoRA update)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from extractor.errors import ConfigError

# transformers' parameter names of the llama architecture -> llama.cpp's tensor names
_NAMES = {"q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v", "o_proj": "attn_output"}
_LAYER = re.compile(r"(?:^|\.)layers\.(\d+)\.self_attn\.(q_proj|k_proj|v_proj|o_proj)\.weight$")


def gguf_name(hf_name: str) -> str:
    """`model.layers.3.self_attn.q_proj.weight` -> `blk.3.attn_q.weight`."""
    match = _LAYER.search(hf_name)
    if match is None:
        raise ConfigError(f"no llama.cpp tensor name for {hf_name}: only the attention projections are adapted")
    return f"blk.{match.group(1)}.{_NAMES[match.group(2)]}.weight"


def permute(weights: Any, heads: int) -> Any:
    """llama.cpp's row order of a llama q or k projection (`heads`: the query heads for q, the key/value heads
    for k), the inverse of what transformers' GGUF loader undoes on load: within each head, the rotary halves
    interleaved."""
    rows = weights.shape[0]
    return (weights.reshape(heads, 2, rows // heads // 2, *weights.shape[1:])
            .swapaxes(1, 2).reshape(weights.shape))


def _field_value(field: Any) -> tuple[Any, Any, Any]:
    import gguf

    vtype = field.types[0]
    sub = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY and len(field.types) > 1 else None
    return field.contents(), vtype, sub


def write_merged(base: Path, out: Path, weights: Mapping[str, Any], *, name_suffix: str = "fine-tuned") -> int:
    """Write `out`: the base GGUF with `weights` (transformers' names -> float32 arrays, transformers' row order)
    in place of its tensors; returns how many tensors were replaced. Written to a temporary file, then renamed."""
    import gguf
    import numpy as np

    reader = gguf.GGUFReader(str(base))
    arch = str(reader.fields["general.architecture"].contents())
    if arch != "llama":
        raise ConfigError(f"{base} is a {arch} model: the export writes llama-architecture GGUFs only")
    heads = int(reader.fields[f"{arch}.attention.head_count"].contents())
    kv_heads = int(reader.fields[f"{arch}.attention.head_count_kv"].contents())
    replaced = {gguf_name(name): array for name, array in weights.items()}
    known = {t.name for t in reader.tensors}
    if unknown := sorted(set(replaced) - known):
        raise ConfigError(f"{base} has no tensor(s) {', '.join(unknown[:5])}: the weights are of another model")
    tmp = out.with_name(out.name + ".tmp")
    writer = gguf.GGUFWriter(str(tmp), arch)
    for key, field in reader.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture":
            continue  # the writer writes these itself
        value, vtype, sub = _field_value(field)
        if key == "general.name":
            value = f"{value} ({name_suffix})"
        writer.add_key_value(key, value, vtype, sub_type=sub)
    for tensor in reader.tensors:
        array = replaced.get(tensor.name)
        if array is None:
            writer.add_tensor(tensor.name, tensor.data, raw_dtype=tensor.tensor_type)
            continue
        array = np.ascontiguousarray(array, dtype=np.float32)
        if tensor.name.endswith("attn_q.weight"):
            array = permute(array, heads)
        elif tensor.name.endswith("attn_k.weight"):
            array = permute(array, kv_heads)
        expected = tuple(int(d) for d in reversed(tensor.shape.tolist()))
        if array.shape != expected:
            raise ConfigError(f"{tensor.name}: merged weights of shape {array.shape}, the base has {expected}")
        if np.array_equal(array, gguf.quants.dequantize(tensor.data, tensor.tensor_type)):
            # Unchanged (no step, or LoRA's B still 0): the base's bytes. Served in float32 instead, llama.cpp's
            # other kernels flipped one of four answers (measured: seniority null -> "junior").
            writer.add_tensor(tensor.name, tensor.data, raw_dtype=tensor.tensor_type)
            continue
        writer.add_tensor(tensor.name, array)
    try:
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
    finally:
        writer.close()
    tmp.replace(out)
    return len(replaced)


def dequantized(path: Path, name: str) -> Any:
    """One tensor of a GGUF as float32, in llama.cpp's layout (rows x columns): what the export's checks compare."""
    import gguf

    reader = gguf.GGUFReader(str(path))
    tensor = next((t for t in reader.tensors if t.name == name), None)
    if tensor is None:
        raise ConfigError(f"{path} has no tensor {name}")
    return gguf.quants.dequantize(tensor.data, tensor.tensor_type)
