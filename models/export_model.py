#!/usr/bin/env python3
"""Export a torchvision classification backbone, final classifier removed, to TorchScript.

The result is a model libbcd's torch backend accepts: float input [N, 3, 224, 224]
(RGB scaled to [0, 1], ImageNet mean/std normalized, as bcd_image_preprocess() makes it)
and output the tuple (embedding [N, D], feature map [N, C, h, w]): the map is the output
of the last convolutional stage (the last layer whose output is still spatial, before the
global pooling; ResNet50's layer4, 2048 x 7 x 7), which libbcd's change detection
compares cell by cell. For a model without one (a vision transformer), or with
--no-map, the output is the embedding alone. Next to the model the script writes a
manifest (PATH with .json in place of .pt) holding its sha256, architecture, D, the
outputs and where the weights came from.

Weights, one of:
  --weights imagenet        torchvision's default ImageNet weights for --arch, downloaded
                            by torchvision (needs internet, or a filled torch hub cache)
  --weights random          seeded random initialisation (--seed), for offline tests
  --weights-file PATH       a local state_dict for --arch (e.g. the shared MobileNetV2
                            ImageNet weights), loaded with strict=True

Examples (run with Debian's /usr/bin/python3, which has python3-torch/torchvision):
  /usr/bin/python3 models/export_model.py -o /tmp/resnet50.pt
  /usr/bin/python3 models/export_model.py --weights random --seed 0 -o build/resnet50-random.pt
  /usr/bin/python3 models/export_model.py --arch mobilenet_v2 \\
      --weights-file ../shared/models/mobilenet_v2_imagenet_dequantized.pth -o /tmp/mnv2.pt

Model files are build or test products: never commit them.
"""
import argparse
import hashlib
import json
import os
import sys
import tempfile

INPUT_SIZE = 224
MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def remove_classifier(model, num_classes):
    """Replace the last layer that maps to the class scores with Identity.

    That is the last Linear with out_features == num_classes (resnet's fc, vgg's and
    mobilenet's last classifier layer, vit's heads.head, ...) or 1x1 Conv2d with
    out_channels == num_classes (squeezenet). Layers that only act in training
    (Dropout) stay and are no-ops in eval mode. Returns the dotted name replaced.
    """
    import torch.nn as nn

    last = None
    for name, mod in model.named_modules():
        if isinstance(mod, nn.Linear) and mod.out_features == num_classes:
            last = name
        elif isinstance(mod, nn.Conv2d) and mod.out_channels == num_classes and mod.kernel_size == (1, 1):
            last = name
    if last is None:
        raise SystemExit("cannot find the final classifier (a Linear or 1x1 Conv2d with %d outputs)" % num_classes)
    parent = model
    parts = last.split(".")
    for p in parts[:-1]:
        parent = getattr(parent, p)
    setattr(parent, parts[-1], nn.Identity())
    return last


def last_spatial_stage(model, example):
    """Dotted name of the module whose output is the last [N, C, h, w] tensor with
    h * w > 1 computed by a forward pass (the last convolutional stage: its output is
    then pooled to the embedding), or None."""
    import torch

    order = []
    hooks = [mod.register_forward_hook(lambda m, i, o, name=name: order.append((name, o)))
             for name, mod in model.named_modules() if name]
    try:
        with torch.no_grad():
            model(example)
    finally:
        for h in hooks:
            h.remove()
    last = None
    for name, o in order:
        if isinstance(o, torch.Tensor) and o.dim() == 4 and o.shape[2] * o.shape[3] > 1:
            last = name
    return last


def with_map(model, stage):
    """A module whose forward returns (model(x), output of the submodule stage)."""
    import torch

    class WithMap(torch.nn.Module):
        def __init__(self, model, stage):
            super().__init__()
            self.model = model
            self.stage = model.get_submodule(stage)
            self.seen = []
            self.stage.register_forward_hook(lambda m, i, o: self.seen.append(o))

        def forward(self, x):
            self.seen.clear()
            e = self.model(x)
            return e, self.seen[-1]

    return WithMap(model, stage).eval()


def build_model(args):
    import torch
    import torchvision

    if args.arch not in torchvision.models.list_models(module=torchvision.models):
        raise SystemExit("unknown --arch %r; torchvision classification models: %s"
                         % (args.arch, ", ".join(sorted(torchvision.models.list_models(module=torchvision.models)))))
    info = {}
    if args.weights_file:
        model = torchvision.models.get_model(args.arch, weights=None)
        state = torch.load(args.weights_file, map_location="cpu")
        if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
            state = state["state_dict"]
        model.load_state_dict(state, strict=True)
        info = {"source": "file", "path": os.path.abspath(args.weights_file),
                "sha256": sha256_file(args.weights_file)}
    elif args.weights == "imagenet":
        wenum = torchvision.models.get_model_weights(args.arch)
        w = wenum.DEFAULT
        try:
            model = torchvision.models.get_model(args.arch, weights=w)
        except Exception as e:  # URLError, HTTPError, hash mismatch
            raise SystemExit("cannot download the ImageNet weights %s (%s); without internet use "
                             "--weights random or --weights-file PATH" % (w, e))
        info = {"source": "imagenet", "name": str(w), "url": w.url}
    else:
        torch.manual_seed(args.seed)
        model = torchvision.models.get_model(args.arch, weights=None)
        info = {"source": "random", "seed": args.seed}
    num_classes = None
    for mod in model.modules():
        if isinstance(mod, torch.nn.Linear):
            num_classes = mod.out_features
    if args.arch.startswith("squeezenet"):
        num_classes = model.num_classes
    removed = remove_classifier(model, num_classes or 1000)
    model.eval()
    return model, info, removed


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", default="resnet50", help="torchvision classification model (default resnet50)")
    ap.add_argument("--weights", choices=["imagenet", "random"], default="imagenet",
                    help="imagenet (download) or random (seeded); ignored with --weights-file")
    ap.add_argument("--weights-file", metavar="PATH", help="local state_dict for --arch")
    ap.add_argument("--seed", type=int, default=0, help="seed of --weights random (default 0)")
    ap.add_argument("--method", choices=["trace", "script"], default="trace",
                    help="torch.jit.trace (default, works for every torchvision model) or torch.jit.script")
    ap.add_argument("-o", "--output", metavar="PATH.pt", help="model file (default ARCH-WEIGHTS.pt)")
    ap.add_argument("--manifest", metavar="PATH", help="manifest file (default: output with .json)")
    ap.add_argument("--no-map", action="store_true",
                    help="output the embedding alone, not (embedding, feature map)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads for the export")
    args = ap.parse_args()

    import torch
    import torchvision

    torch.set_num_threads(max(1, args.threads))
    source = "file" if args.weights_file else args.weights
    out = args.output or "%s-%s.pt" % (args.arch, source)
    manifest = args.manifest or (out[:-3] if out.endswith(".pt") else out) + ".json"

    model, winfo, removed = build_model(args)
    gen = torch.Generator().manual_seed(1234)
    example = torch.randn(2, 3, INPUT_SIZE, INPUT_SIZE, generator=gen)
    check = torch.randn(3, 3, INPUT_SIZE, INPUT_SIZE, generator=gen)
    with torch.no_grad():
        ref = model(check)
    if ref.dim() != 2 or ref.shape[0] != 3:
        raise SystemExit("model output is %s, expected [N, D]" % list(ref.shape))
    stage = None if args.no_map else last_spatial_stage(model, example)
    if args.no_map:
        pass
    elif stage is None:
        print("note: %s has no spatial stage before its embedding: exported without a feature map" % args.arch,
              file=sys.stderr)
    elif args.method == "script":
        raise SystemExit("--method script cannot export the feature map (a forward hook); use trace or --no-map")
    else:
        model = with_map(model, stage)
    with torch.no_grad():
        if args.method == "script":
            ts = torch.jit.script(model)
        else:
            ts = torch.jit.trace(model, example, check_trace=False)
        # Another batch size than the one traced: the model must not have it baked in.
        got = ts(check)
        fmap = None
        if stage:
            got, fmap = got
            want_map = model(check)[1]
    err = (got - ref).abs().max().item()
    scale = ref.abs().max().item()
    if err > 1e-5 * max(scale, 1e-12):
        raise SystemExit("TorchScript output differs from the eager model by %g (max |ref| %g)" % (err, scale))
    if fmap is not None:
        merr = (fmap - want_map).abs().max().item()
        if fmap.dim() != 4 or fmap.shape[0] != 3 or merr > 1e-5 * max(want_map.abs().max().item(), 1e-12):
            raise SystemExit("TorchScript feature map %s differs from the eager model's" % list(fmap.shape))
    dim = int(ref.shape[1])

    # Write next to the target and rename, so a half-written model is never left behind.
    d = os.path.dirname(os.path.abspath(out))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=d, suffix=".pt.tmp")
    os.close(fd)
    try:
        ts.save(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp made it 0600
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    digest = sha256_file(out)
    doc = {
        "file": os.path.basename(out),
        "sha256": digest,
        "bytes": os.path.getsize(out),
        "arch": args.arch,
        "dim": dim,
        "classifier_removed": removed,
        "weights": winfo,
        "method": args.method,
        "input": {"shape": ["N", 3, INPUT_SIZE, INPUT_SIZE], "dtype": "float32", "layout": "NCHW RGB",
                  "scale": "[0,1]", "mean": MEAN, "std": STD},
        "output": ({"shape": [["N", dim], ["N"] + list(fmap.shape[1:])], "dtype": "float32",
                    "feature_map": stage} if fmap is not None else {"shape": ["N", dim], "dtype": "float32"}),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "libbcd_name": "%s:%d:sha256=%s" % (os.path.basename(out), dim, digest),
    }
    with open(manifest, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    print("%s  %s  arch=%s dim=%d weights=%s" % (doc["sha256"], out, args.arch, dim, winfo["source"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
