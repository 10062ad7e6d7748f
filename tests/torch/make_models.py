#!/usr/bin/env python3
"""Small TorchScript files for tests/torch/test_torch.c, written into OUTDIR.

  tiny.pt        channel means: [N,3,224,224] -> [N,3] (output known exactly)
  fails-batch.pt channel means for N == 1, raises for N > 1 (a failure at embed time)
  fails-probe.pt fails on every [N,3,224,224] input (a shape error inside the model)
  wrong-shape.pt [N,3,224,224] -> [N,3,224] (not [N,D])
  with-map.pt    (channel means [N,3], 32x32 block means [N,3,7,7]): an embedding and its
                 feature map, both known exactly
  tuple.pt       returns a tuple of two [N,3] tensors (the second is no feature map)
  int-output.pt  returns an integer tensor [N,3]
  garbage.pt     not a TorchScript file at all
"""
import os
import sys

import torch


class Means(torch.nn.Module):
    def forward(self, x):
        return x.mean(dim=[2, 3])


class FailsBatch(torch.nn.Module):
    def forward(self, x):
        if x.size(0) > 1:
            raise RuntimeError("this test model refuses batches")
        return x.mean(dim=[2, 3])


class FailsProbe(torch.nn.Module):
    def forward(self, x):
        return x.reshape(-1, 5)  # 3*224*224 is not a multiple of 5


class WrongShape(torch.nn.Module):
    def forward(self, x):
        return x.mean(dim=3)


class WithMap(torch.nn.Module):
    def forward(self, x):
        return x.mean(dim=[2, 3]), torch.nn.functional.avg_pool2d(x, 32)


class Tuple(torch.nn.Module):
    def forward(self, x):
        m = x.mean(dim=[2, 3])
        return m, m


class IntOutput(torch.nn.Module):
    def forward(self, x):
        return (x.mean(dim=[2, 3]) * 100).to(torch.int64)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name, mod in [("tiny", Means()), ("fails-batch", FailsBatch()), ("fails-probe", FailsProbe()),
                      ("wrong-shape", WrongShape()), ("with-map", WithMap()), ("tuple", Tuple()),
                      ("int-output", IntOutput())]:
        torch.jit.script(mod.eval()).save(os.path.join(out, name + ".pt"))
    with open(os.path.join(out, "garbage.pt"), "wb") as f:
        f.write(b"PK\x03\x04 this is not a TorchScript archive\n" * 20)
    return 0


if __name__ == "__main__":
    sys.exit(main())
