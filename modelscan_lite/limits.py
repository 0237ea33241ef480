"""Budgets every parser works under, so hostile input cannot hang or exhaust the scanner.

A budget that runs out is never a silent pass: the parser emits an ``anomaly`` fact naming the
budget (``budget-exceeded``) which a rule turns into a failing finding.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

MiB = 1024 * 1024
GiB = 1024 * MiB


@dataclass(frozen=True, slots=True)
class Limits:
    # pickle
    max_opcodes: int = 200_000_000
    max_stack: int = 1_000_000
    max_memo: int = 32_000_000
    # bytes the memo's own values take (``sys.getsizeof`` plus a list slot each, counted as
    # entries arrive): 30 M memoised floats once held 1.2 GiB. Picklers memoise strings,
    # containers and objects, never ints or floats; a real checkpoint's memo is a few MiB
    # and a pickled dataset of ~3 M distinct short strings (a large vocabulary) ~200 MiB.
    max_memo_bytes: int = 256 * MiB
    # growth of the process's resident memory while one pickle is walked, measured (Linux:
    # /proc/self/statm) at each budget check: what no per-structure estimate covers (a stack
    # of a million 4 KiB strings) is still stopped; real checkpoints grow the walker by a
    # few MiB, a 37 MB pickled dataset by ~150 MiB
    max_walk_memory: int = 384 * MiB
    max_pickles_per_stream: int = 64
    # elements a pickle's containers may expand to, shared references counted each time
    # they occur (what repr/json.dumps/==/hash visit), and tuple elements hashed at load;
    # only flagged past 16 per opcode as well (P301)
    max_expansion: int = 100_000_000
    # containers
    max_depth: int = 6
    max_members: int = 100_000
    max_decompressed: int = 8 * GiB
    max_ratio: int = 2_000
    max_member_read: int = 256 * MiB
    # headers (JSON, npy...)
    max_header: int = 100 * MiB
    # JSON read whole (safetensors headers, a repo's config/tokenizer/index files). Parsing
    # builds one Python object per value, up to ~64 bytes each for 1-3 bytes of text (a
    # 99 MB header of ``[],[],...`` once took 2.4 GiB), so the number of values is bounded
    # before parsing: ``,`` + ``:`` + ``[`` + ``{`` counted in the raw bytes (an upper bound).
    # 4 M values cost at most ~256 MiB. Real files stay far below it: a 1 GB safetensors
    # with 300 tensors has ~3,600 values and the largest real headers (tens of thousands of
    # tensors) under 1 M; Llama-3 / Qwen2 tokenizer.json (9-11 MB, ~130-150 k vocab and
    # ~150-280 k merges) ~0.6-1.1 M, Gemma-3's (33 MB, 262 k vocab, 514 k merges) ~2.2 M.
    max_json_values: int = 4_000_000
    # nesting of those JSON documents: real ones nest under 10 levels (tokenizer.json's
    # normalizer sequences are the deepest); the stdlib parser stops near 1,000 with a
    # RecursionError and everything that walks the result recursively would too
    max_json_depth: int = 64
    # bytes of tokenizer.json and weight index files (*.index.json) read by the repo
    # analysis: the largest real tokenizer.json we know is Gemma-3's 33 MB; an index of
    # 100 k tensors (DeepSeek-V3 has 91 k) is ~9 MB
    max_json_bytes: int = 64 * MiB
    # bytes of the small repo JSON files (config.json, generation_config.json,
    # tokenizer_config.json, chat_template.json...): real ones are KBs, the largest
    # (a 21 k-class id2label, a tokenizer_config.json with 200 k added tokens) a few MB
    max_config_json_bytes: int = 16 * MiB
    # lines of a repo's vocab.txt turned into a token -> id map (~120 bytes each): real ones
    # have 30 k (BERT) to 250 k (multilingual) lines
    max_vocab_lines: int = 1_000_000
    # wall clock for one file on disk, members included
    max_seconds: float = 300.0
    # a remote file (modelscan_lite.remote): range requests and bytes fetched for it; a
    # scan reads headers, zip directories and pickles (hundreds of KB for any model size)
    max_remote_requests: int = 512
    max_remote_bytes: int = 256 * MiB


class Deadline:
    """A wall-clock budget shared by everything that parses one artifact."""

    __slots__ = ("_end", "seconds")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._end = time.monotonic() + seconds

    def expired(self) -> bool:
        return time.monotonic() > self._end
