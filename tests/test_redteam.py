"""Red-team regression tests for the exact-identity pickle verdict (issue 9).

Each stream is assembled from opcodes and uses only names on the shipped allowlist (or on the
call-through table), yet real ``pickle.load`` / ``torch.load(weights_only=False)`` /
``joblib.load`` of it calls something the allowlist does not admit. Checked against the real
loaders only in a throwaway subprocess with a harmless effect (``builtins.print`` or a marker
file in a temp dir); nothing here unpickles anything.

Each bypass found was fixed in the walker or the allowlist policy; its test now pins the
finding (rule, global name, severity). A new bypass is added here as
``xfail(strict=True)`` until it is fixed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from modelscan_lite.model import ArtifactResult, Severity
from samples.make_samples import (
    APPEND,
    BINBYTES,
    BININT1,
    BUILD,
    EMPTY_DICT,
    EMPTY_TUPLE,
    GLOBAL,
    MARK,
    NEWFALSE,
    NEWOBJ,
    NEWOBJ_EX,
    NEWTRUE,
    NONE,
    REDUCE,
    SETITEM,
    SETITEMS,
    TUPLE,
    U,
    call,
    pk,
    torch_members,
    torch_zip,
)

from .helpers import scan_bytes

# the pickle suite runs on both walkers: the pure-Python reference and the compiled core
pytestmark = pytest.mark.usefixtures("walker")

# A nested pickle that calls a global that is not on the allowlist: scanned, it gives P105.
INNER = pk(call("builtins", "print", U("PWNED-inner")), proto=2)
LOAD_FROM_BYTES = GLOBAL("torch.storage", "_load_from_bytes")
PARTIAL = GLOBAL("functools", "partial")


def failing(result: ArtifactResult, at_least: Severity = Severity.MEDIUM) -> list[str]:
    return [f.rule for f in result.findings if f.severity >= at_least]


def shown(result: ArtifactResult) -> list[tuple[str, str, str]]:
    return [(f.rule, str(f.severity), f.message[:120]) for f in result.findings]


def resolved_by_partial(module: str, name: str) -> bytes:
    """``partial(numpy.core._ufunc_reconstruct)(module, name)``: the import the resolver makes
    is never judged, because the call-through check only runs when the resolver itself is the
    REDUCE target. Leaves ``module.name`` (the object) on the stack."""
    resolver = PARTIAL + MARK + GLOBAL("numpy.core", "_ufunc_reconstruct") + TUPLE + REDUCE
    return resolver + MARK + U(module) + U(name) + TUPLE + REDUCE


def namespace_with(attr: str, value: bytes) -> bytes:
    """``types.SimpleNamespace()`` whose instance dict holds ``attr = value`` (first BUILD:
    SimpleNamespace has no ``__setstate__``, so BUILD updates ``__dict__``)."""
    return (
        GLOBAL("types", "SimpleNamespace")
        + EMPTY_TUPLE
        + REDUCE
        + EMPTY_DICT
        + U(attr)
        + value
        + SETITEM
        + BUILD
    )


# -- 1. partial hides the arguments of an allowed call-through --------------------------------


@pytest.mark.parametrize("container", ["pickle", "torch-zip"])
def test_partial_bound_load_from_bytes_payload_is_scanned(tmp_path: Path, container: str) -> None:
    stream = pk(
        PARTIAL + MARK + LOAD_FROM_BYTES + BINBYTES(INNER) + TUPLE + REDUCE,
        EMPTY_TUPLE,
        REDUCE,
        proto=2,
    )
    if container == "pickle":
        result = scan_bytes(tmp_path, stream)
    else:
        result = scan_bytes(tmp_path, torch_zip(torch_members(stream)), "model.pt")
    assert failing(result), shown(result)


@pytest.mark.parametrize("sink", ["generator_ctor", "rebuild_from_type_v2"])
def test_resolver_behind_partial_feeding_a_call_through(tmp_path: Path, sink: str) -> None:
    func = resolved_by_partial("builtins", "print")
    if sink == "generator_ctor":
        body = (
            GLOBAL("numpy.random._pickle", "__generator_ctor")
            + MARK
            + U("PWNED")
            + func
            + TUPLE
            + REDUCE
        )
    else:  # torch/_tensor.py:57 ret = func(*args)
        body = (
            GLOBAL("torch._tensor", "_rebuild_from_type_v2")
            + MARK
            + func
            + GLOBAL("torch", "Tensor")
            + MARK
            + U("PWNED")
            + TUPLE
            + EMPTY_DICT
            + TUPLE
            + REDUCE
        )
    result = scan_bytes(tmp_path, pk(body, proto=2))
    assert failing(result, Severity.HIGH), shown(result)


# -- 2. calls the walker does not see: BUILD -> __setstate__, APPEND -> append ----------------


@pytest.mark.parametrize("opcode", ["BUILD", "APPEND"])
def test_instance_attribute_dispatch_to_load_from_bytes(tmp_path: Path, opcode: str) -> None:
    attr = "__setstate__" if opcode == "BUILD" else "append"
    body = namespace_with(attr, LOAD_FROM_BYTES) + BINBYTES(INNER)
    body += BUILD if opcode == "BUILD" else APPEND
    result = scan_bytes(tmp_path, pk(body, proto=2))
    assert failing(result), shown(result)


@pytest.mark.parametrize(
    "holder", [("types", "SimpleNamespace"), ("torch.nn.modules.linear", "Identity")]
)
def test_global_called_by_second_build_is_a_call(tmp_path: Path, holder: tuple[str, str]) -> None:
    body = (
        GLOBAL(*holder)
        + EMPTY_TUPLE
        + REDUCE
        + EMPTY_DICT
        + U("__setstate__")
        + GLOBAL("builtins", "print")
        + SETITEM
        + BUILD
        + U("PWNED")
        + BUILD
    )
    result = scan_bytes(tmp_path, pk(body, proto=2))
    assert failing(result, Severity.HIGH), shown(result)
    assert "P110" not in failing(result), shown(result)


def test_build_replacing_a_partials_function(tmp_path: Path) -> None:
    state = MARK + GLOBAL("builtins", "print") + MARK + U("PWNED") + TUPLE + NONE + NONE + TUPLE
    body = PARTIAL + MARK + GLOBAL("builtins", "int") + TUPLE + REDUCE + state + BUILD
    result = scan_bytes(tmp_path, pk(body, EMPTY_TUPLE, REDUCE, proto=2))
    assert failing(result, Severity.HIGH), shown(result)


# -- 3. allowlisted constructors that load code or files ---------------------------------------

SENTENCE_TRANSFORMER = GLOBAL(
    "sentence_transformers.sentence_transformer.model", "SentenceTransformer"
)
TRUST = EMPTY_DICT + U("trust_remote_code") + NEWTRUE + SETITEM


@pytest.mark.parametrize("how", ["NEWOBJ_EX", "BUILD"])
def test_sentence_transformer_with_remote_code(tmp_path: Path, how: str) -> None:
    if how == "NEWOBJ_EX":
        made = PARTIAL + MARK + SENTENCE_TRANSFORMER + U("/srv/repo") + TUPLE + TRUST + NEWOBJ_EX
        stream = pk(made, EMPTY_TUPLE, REDUCE, proto=4)
    else:
        state = MARK + SENTENCE_TRANSFORMER + MARK + U("/srv/repo") + TUPLE + TRUST + NONE + TUPLE
        made = PARTIAL + MARK + GLOBAL("builtins", "int") + TUPLE + REDUCE + state + BUILD
        stream = pk(made, EMPTY_TUPLE, REDUCE, proto=2)
    result = scan_bytes(tmp_path, stream)
    assert failing(result), shown(result)


def test_sentence_transformer_constructor_loads_a_model(tmp_path: Path) -> None:
    stream = pk(SENTENCE_TRANSFORMER, MARK, U("attacker/repo"), TUPLE, REDUCE, proto=2)
    result = scan_bytes(tmp_path, stream)
    assert failing(result), shown(result)


def test_prompt_embedding_loads_a_tokenizer_from_a_file_chosen_path(tmp_path: Path) -> None:
    state = (
        EMPTY_DICT
        + MARK
        + U("num_virtual_tokens")
        + BININT1(2)
        + U("num_transformer_submodules")
        + BININT1(1)
        + U("token_dim")
        + BININT1(4)
        + U("prompt_tuning_init")
        + U("TEXT")
        + U("inference_mode")
        + NEWFALSE
        + U("tokenizer_kwargs")
        + NONE
        + U("tokenizer_name_or_path")
        + U("attacker/repo")
        + U("prompt_tuning_init_text")
        + U("hi")
        + SETITEMS
    )
    config = (
        GLOBAL("peft.tuners.prompt_tuning.config", "PromptTuningConfig")
        + EMPTY_TUPLE
        + NEWOBJ
        + state
        + BUILD
    )
    stream = pk(
        GLOBAL("peft.tuners.prompt_tuning.model", "PromptEmbedding"),
        MARK,
        config,
        NONE,
        TUPLE,
        REDUCE,
        proto=2,
    )
    result = scan_bytes(tmp_path, stream)
    assert failing(result), shown(result)


# -- nearby cases that are caught (keep them caught) -------------------------------------------


def test_resolver_called_directly_is_judged_as_its_import(tmp_path: Path) -> None:
    """The direct form of the partial trick above: the import is the finding."""
    stream = pk(call("numpy.core", "_ufunc_reconstruct", U("os"), U("system")), proto=2)
    result = scan_bytes(tmp_path, stream)
    assert "P101" in failing(result, Severity.CRITICAL), shown(result)


def test_denylisted_global_stored_as_setstate_is_still_critical(tmp_path: Path) -> None:
    """Denylist rules match a reference as well as a call, so the BUILD trick cannot lower
    the severity of a known gadget, only of an unknown one (see above)."""
    body = namespace_with("__setstate__", GLOBAL("os", "system")) + U("true") + BUILD
    result = scan_bytes(tmp_path, pk(body, proto=2))
    assert "P101" in failing(result, Severity.CRITICAL), shown(result)


def test_partial_of_unknown_function_is_a_call(tmp_path: Path) -> None:
    stream = pk(
        PARTIAL + MARK + GLOBAL("builtins", "print") + U("x") + TUPLE + REDUCE,
        EMPTY_TUPLE,
        REDUCE,
        proto=2,
    )
    result = scan_bytes(tmp_path, stream)
    assert "P105" in failing(result, Severity.HIGH), shown(result)
