"""Make the benign PyTorch-program fixtures under ``tests/data/formats/torch/`` with the real
library (torch; run in an environment that has it, never at test time)::

    python scripts/make_torch_fixtures.py

Writes TorchScript archives (``torch.jit.script`` / ``torch.jit.trace`` + ``torch.jit.save``),
a ``torch.package`` archive (``PackageExporter``) and ``torch.export`` archives
(``torch.export.save``), and ``MANIFEST.md`` naming the torch version. The tests assert that
scanning each gives no failing finding.
"""

from __future__ import annotations

import sys
import tempfile
import textwrap
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "formats" / "torch"

PACKAGED_MODULE = textwrap.dedent(
    """\
    import torch


    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.l = torch.nn.Linear(3, 2)

        def forward(self, x):
            return torch.relu(self.l(x))
    """
)


def make() -> list[tuple[str, str]]:
    import torch

    torch.manual_seed(0)
    made: list[tuple[str, str]] = []

    class Sub(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = torch.nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.relu(self.lin(x))

    class Scripted(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.sub = Sub()
            self.register_buffer("c", torch.arange(3.0))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.sum() > 0:
                x = self.sub(x)
            for _ in range(2):
                x = x * 2 + torch.tensor([1.0, 2.0, 3.0, 4.0])
            return x

    torch.jit.save(torch.jit.script(Scripted()), str(OUT / "scripted-module.pt"))
    made.append(("scripted-module.pt", "torch.jit.save(torch.jit.script(Scripted()))"))

    class Traced(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 2, 3)
            self.bn = torch.nn.BatchNorm2d(2)
            self.scale = torch.randn(2, 1, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.max_pool2d(self.bn(self.conv(x)) * self.scale, 2)

    traced = torch.jit.trace(Traced().eval(), torch.randn(1, 1, 8, 8))
    torch.jit.save(traced, str(OUT / "traced-module.pt"))
    made.append(("traced-module.pt", "torch.jit.save(torch.jit.trace(Traced().eval(), x))"))

    @torch.jit.script
    def scripted_fn(x: torch.Tensor, n: int) -> torch.Tensor:
        out = torch.zeros_like(x)
        for i in range(n):
            out = out + torch.sin(x) * i
        return out

    class Wrapper(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return scripted_fn(x, 3).clamp(-1.0, 1.0)

    torch.jit.save(torch.jit.script(Wrapper()), str(OUT / "scripted-function.pt"))
    made.append(("scripted-function.pt", "torch.jit.save(torch.jit.script(Wrapper()))"))

    from torch.package import PackageExporter

    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "fixture_net.py").write_text(PACKAGED_MODULE)
        sys.path.insert(0, tmp)
        try:
            import fixture_net

            # interned source: code by design, expected to give T107 (and P105 for the
            # pickle global naming the packaged class), nothing else
            with PackageExporter(str(OUT / "package-with-source.pt")) as exporter:
                exporter.extern(["torch.**"])
                exporter.intern("fixture_net")
                exporter.save_pickle("model", "model.pkl", fixture_net.Net())
        finally:
            sys.path.remove(tmp)
    made.append(
        ("package-with-source.pt", "PackageExporter: intern fixture_net, save_pickle(Net())")
    )
    with PackageExporter(str(OUT / "package-extern-only.pt")) as exporter:
        exporter.extern(["torch.**"])
        model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.ReLU())
        exporter.save_pickle("model", "model.pkl", model)
        exporter.save_text("notes", "README.txt", "a fixture")
    made.append(
        ("package-extern-only.pt", "PackageExporter: extern torch, save_pickle(Sequential)")
    )

    class Exported(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.l = torch.nn.Linear(4, 3)
            self.register_buffer("b", torch.ones(3))
            self.c = torch.tensor([1.0, 2.0, 3.0])

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = torch.relu(self.l(x)) + self.b + self.c
            return torch.cond(y.sum() > 0, lambda t: t * 2, lambda t: t - 1, (y,))

    ep = torch.export.export(Exported(), (torch.randn(2, 4),))
    torch.export.save(ep, str(OUT / "exported.pt2"))
    made.append(("exported.pt2", "torch.export.save(torch.export.export(Exported(), x))"))
    return made


def main() -> int:
    import torch

    OUT.mkdir(parents=True, exist_ok=True)
    made = make()
    lines = [
        "# PyTorch program fixtures",
        "",
        f"Made by `scripts/make_torch_fixtures.py` with torch {torch.__version__} "
        f"(Python {sys.version.split()[0]}); the script holds the exact code of each module.",
        "",
        "| file | made by |",
        "|---|---|",
        *(f"| `{name}` | `{how}` |" for name, how in made),
        "",
    ]
    (OUT / "MANIFEST.md").write_text("\n".join(lines))
    for name, _ in made:
        print(name, (OUT / name).stat().st_size)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
