"""Real ExecuTorch programs for tests/data/formats/torch/ (see its MANIFEST.md).

Needs executorch (1.5.1 was used, with the system torch 2.13.0: ``pip install --no-deps
executorch ruamel.yaml tabulate 'torchao<0.19,>=0.18.0'`` in a venv with system site
packages). Not needed at test time.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
from executorch.exir import to_edge, to_edge_transform_and_lower

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "formats" / "torch"


class LinearRelu(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.l = torch.nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.l(x))


def main() -> None:
    torch.manual_seed(0)
    ep = torch.export.export(LinearRelu().eval(), (torch.zeros(1, 4),))
    plain = to_edge(ep).to_executorch()
    (OUT / "linear-relu.pte").write_bytes(plain.buffer)
    lowered = to_edge_transform_and_lower(ep, partitioner=[XnnpackPartitioner()])
    (OUT / "linear-relu-xnnpack.pte").write_bytes(lowered.to_executorch().buffer)
    print(f"wrote 2 programs to {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
