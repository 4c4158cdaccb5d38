"""Zero-shot classification and retrieval on real data (the formats clip_benchmark uses).

Zero-shot: an ImageFolder (`root/val/` when present) or webdataset shards whose samples hold an image and a `.cls`
integer. `--classnames imagenet` uses open_clip's IMAGENET_CLASSNAMES with OPENAI_IMAGENET_TEMPLATES (80 prompts);
images are scored among all 1000 classes. ImageNet class folders are mapped by name: a WordNet id (`n01440764`,
looked up in timm's ImageNet synset list), a class index (`0`..`999`), or an open_clip class name (`goldfish`,
underscores read as spaces). `--classnames FILE`: one name per line, line i = class folder i (sorted) or `.cls` i.
`--templates FILE`: one prompt per line with `{}` for the class name.

Retrieval: a CSV/TSV (image path, caption; several rows per image = several captions, COCO/Flickr style) or
shards with an image and a `.txt` holding one caption per line. Recall@1/5/10 both ways: image->text counts a hit
when any of the image's captions ranks in the top k; text->image when its image does.
"""
from __future__ import annotations

import glob
import os
from typing import Any, Iterator

import torch
from torch import nn

from leanvl.errors import LeanvlError

IMAGE_EXTS = ("jpg", "jpeg", "png", "webp")


def read_templates(path: str) -> list[str]:
    """Prompt templates of `path` (one per line, each with one `{}`)."""
    if not os.path.isfile(path):
        raise LeanvlError(f"--templates {path}: no such file")
    with open(path, encoding="utf-8") as f:
        templates = [line.strip() for line in f if line.strip()]
    bad = next((t for t in templates if t.count("{}") != 1), None)
    if not templates or bad is not None:
        raise LeanvlError(f"--templates {path}: every line needs exactly one '{{}}' for the class name"
                          + (f" (bad: '{bad}')" if bad else " (file is empty)"))
    return templates


def imagenet_metadata() -> tuple[list[str], list[str]]:
    """(open_clip's 1000 ImageNet class names, its 80 OpenAI prompt templates as '{}' strings)."""
    from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES, OPENAI_IMAGENET_TEMPLATES

    return list(IMAGENET_CLASSNAMES), [t("{}") for t in OPENAI_IMAGENET_TEMPLATES]


def imagenet_folder_index(folders: list[str]) -> list[int]:
    """ImageNet class index of each class folder (WordNet id, class index, or open_clip class name)."""
    from timm.data import ImageNetInfo

    names, _ = imagenet_metadata()
    wnids = {w: i for i, w in enumerate(ImageNetInfo().label_names())}
    by_name = {n.lower(): i for i, n in enumerate(names)}
    out = []
    for folder in folders:
        key = folder.replace("_", " ").lower()
        if folder in wnids:
            out.append(wnids[folder])
        elif folder.isdigit() and int(folder) < len(names):
            out.append(int(folder))
        elif key in by_name:
            out.append(by_name[key])
        else:
            raise LeanvlError(f"--classnames imagenet: class folder '{folder}' is not an ImageNet WordNet id, "
                              f"class index or class name")
    return out


def class_setup(classnames: str, templates: str, folders: list[str] | None) -> tuple[list[str], list[str], list[int]]:
    """(class names, templates, label map: folder index -> class index) for zero-shot on real data."""
    from leanvl.eval.classnames import GENERIC_TEMPLATES, folder_classnames, read_classnames

    if classnames == "imagenet":
        names, prompts = imagenet_metadata()
        mapping = imagenet_folder_index(folders) if folders is not None else list(range(len(names)))
    elif folders is not None:
        names, prompts = folder_classnames(folders, classnames), list(GENERIC_TEMPLATES)
        mapping = list(range(len(names)))
    else:
        if not classnames:
            raise LeanvlError("shards with .cls labels need --classnames imagenet or --classnames FILE")
        names, prompts = read_classnames(classnames), list(GENERIC_TEMPLATES)
        mapping = list(range(len(names)))
    return names, read_templates(templates) if templates else prompts, mapping


def shard_samples(pattern: str) -> Iterator[dict[str, Any]]:
    """Raw webdataset samples of the shards `pattern` names (directory of .tar, glob or brace pattern), in order."""
    from leanvl.data.sources import expand_shards
    from leanvl.data.tar_index import TRUNCATED, index_tar, read_sample

    paths = sorted(glob.glob(os.path.join(pattern, "*.tar"))) if os.path.isdir(pattern) else expand_shards(pattern)
    for path in paths:
        if not os.path.isfile(path):
            raise LeanvlError(f"--data {pattern}: shard {path} not found (local shards only)")
        for entry in index_tar(path):
            if TRUNCATED in entry:
                raise LeanvlError(f"--data {pattern}: shard {path} is truncated ({entry[TRUNCATED]})")
            yield read_sample(path, entry)


def _image_of(raw: dict[str, Any]):
    from leanvl.data.sources import decode_image

    ext = next((e for e in IMAGE_EXTS if e in raw), None)
    return None if ext is None else decode_image(raw[ext])


def _embed_images(model: nn.Module, images: Iterator, image_size: int, batch_size: int = 128) -> torch.Tensor:
    from leanvl.data.transforms import EvalTransform
    from leanvl.eval.zeroshot import image_embeddings

    transform, buf, out = EvalTransform(image_size), [], []
    for image in images:
        buf.append(transform(image))
        if len(buf) == batch_size:
            out.append(image_embeddings(model, [torch.stack(buf)]))
            buf = []
    if buf:
        out.append(image_embeddings(model, [torch.stack(buf)]))
    return torch.cat(out) if out else torch.zeros(0)


def labelled_images(data: str) -> tuple[list, list[int], list[str] | None]:
    """(images, labels, class folders or None for shards) of an ImageFolder root or `.cls` shards."""
    if os.path.isdir(data) and not glob.glob(os.path.join(data, "*.tar")):
        from torchvision.datasets import ImageFolder

        folder = os.path.join(data, "val") if os.path.isdir(os.path.join(data, "val")) else data
        try:
            ds = ImageFolder(folder)
        except (FileNotFoundError, RuntimeError) as exc:
            raise LeanvlError(f"--data {data}: {str(exc).splitlines()[0]}") from None
        return [ds.loader(p) for p, _ in ds.samples], list(ds.targets), list(ds.classes)
    images, labels = [], []
    for raw in shard_samples(data):
        image = _image_of(raw)
        if image is None or "cls" not in raw:
            raise LeanvlError(f"--data {data}: sample {raw['__key__']} lacks an image or a .cls label")
        images.append(image)
        labels.append(int(raw["cls"].decode().strip()))
    if not images:
        raise LeanvlError(f"--data {data}: no samples found")
    return images, labels, None


@torch.no_grad()
def zeroshot_real(model: nn.Module, data: str, image_size: int, classnames: str = "",
                  templates: str = "") -> dict[str, Any]:
    """Zero-shot top-1 / top-5 on an ImageFolder or `.cls` shards (see the module docstring)."""
    from leanvl.eval.zeroshot import class_embeddings

    images, labels, folders = labelled_images(data)
    names, prompts, mapping = class_setup(classnames, templates, folders)
    target = torch.tensor([mapping[y] if folders is not None else y for y in labels])
    if int(target.max()) >= len(names):
        raise LeanvlError(f"--data {data}: label {int(target.max())} but only {len(names)} class names")
    classes = class_embeddings(model, names, prompts)
    scores = _embed_images(model, iter(images), image_size) @ classes.T
    top = scores.topk(min(5, len(names)), dim=1).indices
    return {"top1": float((top[:, 0] == target).double().mean()),
            "top5": float((top == target[:, None]).any(1).double().mean()),
            "classes": len(names), "templates": len(prompts), "images": len(images)}


def multi_caption_recall(image_emb: torch.Tensor, text_emb: torch.Tensor, text_image: torch.Tensor,
                         ks: tuple[int, ...] = (1, 5, 10)) -> dict[str, float]:
    """Recall@k both ways when caption j belongs to image `text_image[j]` (several captions per image)."""
    sim = image_emb.float() @ text_emb.float().T  # [images, texts]
    out = {}
    for k in ks:
        top_t = sim.topk(min(k, sim.shape[1]), dim=1).indices  # image -> its k best captions
        out[f"i2t_r{k}"] = float((text_image[top_t] == torch.arange(len(sim))[:, None]).any(1).double().mean())
        top_i = sim.T.topk(min(k, sim.shape[0]), dim=1).indices  # caption -> its k best images
        out[f"t2i_r{k}"] = float((top_i == text_image[:, None]).any(1).double().mean())
    out["mean_r1"] = (out["i2t_r1"] + out["t2i_r1"]) / 2
    return out


def captioned_images(data: str) -> tuple[list, list[str], list[int]]:
    """(images, captions, image index of each caption) of a CSV/TSV (rows grouped by image path) or shards."""
    from leanvl.data.sources import CsvSource, decode_image

    images, captions, owner = [], [], []
    if data.lower().split("#")[0].endswith((".csv", ".tsv")):
        source = CsvSource(data, shuffle=False)
        index: dict[str, int] = {}
        for rel, caption, root, n in source.rows:
            path = os.path.join(root, (rel or "").strip())
            if not rel or not os.path.isfile(path):
                raise LeanvlError(f"--data {data}: row {n}: image '{rel}' not found")
            if path not in index:
                index[path] = len(images)
                images.append(decode_image(None, path=path))
            captions.append((caption or "").strip())
            owner.append(index[path])
    else:
        for raw in shard_samples(data):
            image = _image_of(raw)
            lines = [ln.strip() for ln in raw.get("txt", b"").decode("utf-8", "replace").splitlines() if ln.strip()]
            if image is None or not lines:
                raise LeanvlError(f"--data {data}: sample {raw['__key__']} lacks an image or .txt captions")
            captions += lines
            owner += [len(images)] * len(lines)
            images.append(image)
    if not images:
        raise LeanvlError(f"--data {data}: no image-caption pairs found")
    return images, captions, owner


@torch.no_grad()
def retrieval_real(model: nn.Module, data: str, image_size: int, batch_size: int = 256) -> dict[str, Any]:
    """Image<->text recall@1/5/10 on real image-caption data with one or more captions per image."""
    images, captions, owner = captioned_images(data)
    img = _embed_images(model, iter(images), image_size)
    txt = torch.cat([nn.functional.normalize(model.encode_text(captions[i: i + batch_size]).float(), dim=-1)
                     for i in range(0, len(captions), batch_size)])
    return {"images": len(images), "captions": len(captions),
            **multi_caption_recall(img, txt, torch.tensor(owner))}


def zeroshot_imagefolder(model: nn.Module, root: str, image_size: int, classnames_file: str = "",
                         templates_file: str = "") -> dict[str, Any]:
    """Zero-shot top-1 on an ImageFolder (`root/val/` when present, else `root/`); see `zeroshot_real`."""
    if not os.path.isdir(root):
        raise LeanvlError(f"--data {root}: no such directory (give 'synthetic' or an ImageFolder root)")
    return zeroshot_real(model, root, image_size, classnames_file, templates_file)
