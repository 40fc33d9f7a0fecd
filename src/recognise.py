"""One drawing through a saved network: image bytes -> the input it sees -> its five likeliest characters.

The notebook's "try it yourself" cell and `python -m src recognise` feed it a drawing from a canvas, a photo or a
file; everything but the canvas lives here so it is tested. A lone drawing has no writer to measure its size
against, so its ink box is compared with the training set's median character on a canvas of the same shape: draw a
lowercase letter small and a capital large, as trainPart1's writers did. Whether size decided a case pair is shown by
asking the network again with the same shape drawn 1.5x larger and smaller.
"""
from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import torch

from .data.classes import CLASS_CHARACTERS
from .data.files import decode_grayscale
from .data.preprocess import prepare
from .evaluate import read_characters, reader_of


@dataclass
class Reading:
    image: torch.Tensor                 # [H, W] what the network sees
    top5: list[tuple[str, float]]       # (character, probability), likeliest first
    relative_log_height: float          # the ink box's log height minus the training set's median
    case_note: str                      # for a case pair among the top two: how size decided, else ""


def stretch_contrast(luminance: np.ndarray) -> np.ndarray:
    """Paper to 1 and the darkest ink to 0: a photo's grey paper and soft pencil look like trainPart1's scans."""
    border = np.concatenate([luminance[0], luminance[-1], luminance[:, 0], luminance[:, -1]])
    paper = float(np.median(border))
    ink = float(np.percentile(luminance, 0.5)) if paper >= 0.5 else float(np.percentile(luminance, 99.5))
    if abs(paper - ink) < 0.1:
        return luminance  # no contrast to stretch: a blank or uniform image (to_mnist_convention says so)
    stretched = (luminance - ink) / (paper - ink)
    return np.clip(stretched if paper >= 0.5 else 1 - stretched, 0.0, 1.0).astype(np.float32)


def _probabilities(model, image: torch.Tensor, geometry: torch.Tensor | None, temperature: float) -> torch.Tensor:
    with torch.no_grad():
        return torch.softmax(model.eval()(image[None, None], geometry) / temperature, 1)[0]


def recognise(payload: bytes, model, metadata: dict, name: str = "drawing") -> Reading:
    """The network's reading of one drawing (PNG or JPEG bytes, any size, dark ink on light paper or the reverse),
    prepared exactly as the network's training drawings were (`evaluate.read_characters`)."""
    reader = reader_of(model, metadata)
    image, box = prepare(stretch_contrast(decode_grayscale(payload, name)), reader["preprocessing"], name)
    drawing = SimpleNamespace(images=image[None, None], labels=torch.zeros(1, dtype=torch.long),
                              geometry=torch.tensor([box.geometry()]), writers=torch.tensor([-1]))
    inputs = read_characters(drawing, reader)
    probabilities = _probabilities(model, image, inputs.geometry, reader["temperature"])
    classes = metadata.get("classes") or CLASS_CHARACTERS
    best = probabilities.topk(min(5, len(probabilities)))
    top5 = [(classes[i], float(p)) for p, i in zip(best.values.tolist(), best.indices.tolist())]
    reference = reader["training_set"] or [float(drawing.geometry[0, 0])]
    relative = float(drawing.geometry[0, 0] - reference[0])
    return Reading(image, top5, relative, _case_note(model, image, inputs.geometry, reader["temperature"], top5,
                                                     relative, classes))


def _case_note(model, image, geometry, temperature, top5, relative_log_height, classes) -> str:
    """If the two likeliest characters are one letter's two cases, redraw the same shape 1.5x larger and 1.5x
    smaller (log height +-0.4) and say what the network would have read then."""
    if len(top5) < 2 or geometry is None:
        return ""
    (first, _), (second, _) = top5[:2]
    if first.lower() != second.lower() or first == second:
        return ""
    upper, lower = first.upper(), first.lower()
    lines = [f"'{upper}' and '{lower}' differ mainly in size; this drawing is {np.exp(relative_log_height):.2f}x "
             "the height of the training set's median character."]
    for factor, shift in (("1.5x larger", 0.4), ("1.5x smaller", -0.4)):
        moved = geometry.clone()
        moved[:, :2] += shift
        probabilities = _probabilities(model, image, moved, temperature)
        p_upper, p_lower = float(probabilities[classes.index(upper)]), float(probabilities[classes.index(lower)])
        lines.append(f"drawn {factor}: P('{upper}') = {p_upper:.2f}, P('{lower}') = {p_lower:.2f}")
    return "\n".join(lines)


# The canvas, for Colab only: a 300x225 white pad (the 1200x900 canvas at a quarter) returned as a PNG data URL.
DRAWING_PAD_HTML = """
<canvas id="pad" width="300" height="225" style="border:1px solid #888;background:#fff;touch-action:none"></canvas>
<div><button id="done">Recognise</button> <button id="clear">Clear</button></div>
<script>
const pad = document.getElementById('pad'), pen = pad.getContext('2d');
pen.fillStyle = '#fff'; pen.fillRect(0, 0, pad.width, pad.height);
pen.lineWidth = 6; pen.lineCap = 'round'; pen.strokeStyle = '#000';
let down = false;
const at = e => { const r = pad.getBoundingClientRect(); return [e.clientX - r.left, e.clientY - r.top]; };
pad.onpointerdown = e => { down = true; pen.beginPath(); pen.moveTo(...at(e)); };
pad.onpointermove = e => { if (down) { pen.lineTo(...at(e)); pen.stroke(); } };
window.onpointerup = () => { down = false; };
document.getElementById('clear').onclick = () => { pen.fillRect(0, 0, pad.width, pad.height); };
var drawn = new Promise(resolve => {
  document.getElementById('done').onclick = () => resolve(pad.toDataURL('image/png'));
});
</script>
"""


def png_from_data_url(data_url: str) -> bytes:
    """The bytes of a `data:image/png;base64,...` URL, as the canvas returns them."""
    import base64
    header, _, body = data_url.partition(",")
    if not header.startswith("data:image/") or ";base64" not in header:
        raise ValueError(f"not a base64 image data URL: {header[:40]!r}")
    return base64.b64decode(body)
