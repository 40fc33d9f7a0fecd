"""Offline stand-ins for trainPart1.zip, testPart1.zip and mnistTask3.zip, for a clone that has none of them.

Why: offline and with no copy given, the pipeline must still run end to end, so the loaders fall
back to these and label every result STAND-IN. They exercise the code; they are not the science.

trainPart1's stand-in is NOT handwriting: font glyphs (shipped with matplotlib) drawn small with
PIL, thinned, distorted by `augment.augment_batch` (random affine + elastic field per image), then
scaled and placed as black ink on white with the sizes and places measured on the real set (one
size and place per writer; lowercase smaller). Like the real pair, every writer draws every character once and
each class's drawings are split at random, 40 into trainPart1's stand-in and 15 into testPart1's. mnistTask3's:
the MNIST training images as JPEGs in its layout, each in its true digit's folder with probability p, else in one
of the other nine.
"""
import functools
import io
import zipfile
from pathlib import Path

import matplotlib
import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from .augment import AugmentConfig, augment_batch
from .classes import CLASS_CHARACTERS
from .files import atomic_write_bytes

# Measured on the real trainPart1 (1200x900): a capital's ink box is 418 px tall (median; writers'
# medians 250-605), short lowercase 0.61 of that, ascenders/descenders 0.97, 'i' 0.85; a writer's
# characters sit around one place (~4 % spread; ~15 % between writers); the pen is ~11.5 px wide.
CAPITAL_HEIGHT = 0.46                  # of the canvas height
LOWERCASE_HEIGHT = {**dict.fromkeys("bdfhkltgjpqy", 0.95), "i": 0.85}  # any other lowercase: 0.62
WRITER_SIZE = (0.6, 1.45)              # range of a writer's size factor, drawn log-uniform
WRITER_CENTRE = ((0.36, 0.44), (0.60, 0.58))  # range of a writer's ink centre (x, y) / canvas
CENTRE_JITTER = (0.035, 0.04)          # std of one character's centre around its writer's
MARGIN = 4                             # pixels of paper always kept around the ink

FONTS = ("DejaVuSans.ttf", "DejaVuSans-Oblique.ttf")  # one per writer; even sans strokes thin well
TILE, FONT_SIZE = 144, 96              # glyphs are drawn and distorted on small square tiles
THINNING = 5                           # MinFilter size: stems ~9 -> ~5 px; more erases thin parts
DISTORTION = AugmentConfig(rotate_degrees=8.0, shear=0.2, scale=(0.85, 1.15), translate_pixels=0.0,
                           elastic_pixels=2.5, elastic_grid=4)
ZIP_DATE = (2020, 1, 1, 0, 0, 0)       # fixed entry dates: the same seed gives the same bytes
WRITERS = 55                           # Chars74K EnglishHnd: 55 writers, each drew every character once
TEST_DRAWINGS_PER_CLASS = 15           # the assignment's split: 40 of each class's 55 drawings train, 15 test
TRUE_FOLDER_PROBABILITY = 0.001        # mnistTask3: an image sits in its own digit's folder


# ----------------------------------------------------------------------------- trainPart1

@functools.lru_cache(maxsize=None)
def glyph_tile(character: str, font_file: str) -> torch.Tensor:
    """The glyph centred on a TILE x TILE tile, ink 1 on 0, thinned: [1, TILE, TILE]."""
    font = ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / font_file), FONT_SIZE)
    left, top, right, bottom = font.getbbox(character)
    tile = Image.new("L", (TILE, TILE), 0)
    ImageDraw.Draw(tile).text(((TILE - left - right) / 2, (TILE - top - bottom) / 2), character, font=font, fill=255)
    return torch.from_numpy(np.asarray(tile.filter(ImageFilter.MinFilter(THINNING)), dtype=np.float32) / 255)[None]


def writer_habit(seed: int, writer: int) -> tuple[str, float, np.ndarray]:
    """One writer's font, size factor and preferred ink centre (fractions of the canvas)."""
    rng = np.random.default_rng([seed, 0, writer])
    return FONTS[rng.integers(len(FONTS))], np.exp(rng.uniform(*np.log(WRITER_SIZE))), rng.uniform(*WRITER_CENTRE)


def place(tile: np.ndarray, height: float, centre: np.ndarray, canvas_size) -> tuple[np.ndarray, int, int]:
    """The tile's ink scaled to `height` px and thresholded, and its top-left corner near `centre`."""
    rows, columns = np.nonzero(tile >= 0.5)
    glyph = Image.fromarray((tile[rows.min():rows.max() + 1, columns.min():columns.max() + 1] * 255).astype(np.uint8))
    room = np.array(canvas_size) - 2 * MARGIN
    scale = min(height / glyph.height, room[0] / glyph.width, room[1] / glyph.height)  # too big: shrink
    glyph = glyph.resize((max(round(glyph.width * scale), 1), max(round(glyph.height * scale), 1)), Image.BICUBIC)
    left, top = np.clip(np.round(centre - np.array(glyph.size) / 2), MARGIN, MARGIN + room - glyph.size).astype(int)
    return np.asarray(glyph) >= 128, int(left), int(top)


def ink_on_paper_png(ink: np.ndarray, left: int, top: int, canvas_size) -> bytes:
    """An RGB PNG of black `ink` at (left, top) on white paper (fast compression: size is no concern)."""
    page = np.full(canvas_size[::-1], 255, np.uint8)
    page[top:top + ink.shape[0], left:left + ink.shape[1]][ink] = 0
    encoded = io.BytesIO()
    Image.fromarray(page).convert("RGB").save(encoded, format="PNG", compress_level=1)
    return encoded.getvalue()


def write_trainpart1_standin(target_zip, seed: int = 0, writers: int = 40, canvas_size=(1200, 900),
                             classes: str = CLASS_CHARACTERS) -> Path:
    """A zip in trainPart1's layout, `train/SampleNNN/imgNNN-MMM.png` (NNN: the character's 1-based
    place in CLASS_CHARACTERS, MMM: writer 001..`writers`), RGB `canvas_size` (width, height) images.
    The same seed (an integer >= 0) gives the same bytes; an image depends on the seed, its character
    and the writers, not on the other classes. Written atomically: never a truncated zip."""
    if set(classes) - set(CLASS_CHARACTERS) or len(set(classes)) != len(classes) or not 1 <= writers <= 999:
        raise ValueError(f"need distinct classes of {CLASS_CHARACTERS!r} (got {classes!r}) and 1-999 writers")
    if min(canvas_size) < 8 * MARGIN:
        raise ValueError(f"canvas {canvas_size} is too small; at least {8 * MARGIN} px a side")
    habits = [writer_habit(seed, writer) for writer in range(1, writers + 1)]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for character in classes:
            number = CLASS_CHARACTERS.index(character) + 1
            generator = torch.Generator().manual_seed(int(np.random.SeedSequence([seed, number]).generate_state(1)[0]))
            tiles = torch.stack([glyph_tile(character, font) for font, _, _ in habits])
            tiles = augment_batch(tiles, DISTORTION, generator)[0][:, 0].numpy()
            case = LOWERCASE_HEIGHT.get(character, 0.62) if character.islower() else 1.0
            for writer, (tile, (_, size, centre)) in enumerate(zip(tiles, habits), start=1):
                rng = np.random.default_rng([seed, number, writer])
                height = CAPITAL_HEIGHT * canvas_size[1] * size * case * rng.uniform(0.9, 1.1)
                ink = place(tile, height, (centre + rng.normal(0.0, CENTRE_JITTER)) * canvas_size, canvas_size)
                entry = zipfile.ZipInfo(f"train/Sample{number:03d}/img{number:03d}-{writer:03d}.png", ZIP_DATE)
                archive.writestr(entry, ink_on_paper_png(*ink, canvas_size))
    atomic_write_bytes(Path(target_zip), buffer.getvalue())
    return Path(target_zip)


def split_like_the_assignment(full_zip: Path, train_zip: Path, test_zip: Path, seed: int = 0,
                              test_share: float = TEST_DRAWINGS_PER_CLASS / WRITERS) -> tuple[Path, Path]:
    """Split a stand-in drawn by every writer into the assignment's two sets: per class, a seeded random
    `test_share` of the drawings go to `test/SampleNNN/...` (testPart1's layout), the rest stay in `train/...`."""
    with zipfile.ZipFile(full_zip) as archive:
        entries = {name: archive.read(name) for name in archive.namelist() if not name.endswith("/")}
    by_class: dict[str, list[str]] = {}
    for name in sorted(entries):
        by_class.setdefault(name.split("/")[-2], []).append(name)
    test_names = set()
    for folder, names in by_class.items():
        rng = np.random.default_rng([seed, int(folder[-3:])])
        test_names.update(names[i] for i in rng.permutation(len(names))[:round(len(names) * test_share)])
    for target, chosen, prefix in ((train_zip, lambda n: n not in test_names, "train/"),
                                   (test_zip, lambda n: n in test_names, "test/")):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
            for name in filter(chosen, sorted(entries)):
                archive.writestr(zipfile.ZipInfo(prefix + name.split("/", 1)[1], ZIP_DATE), entries[name])
        atomic_write_bytes(Path(target), buffer.getvalue())
    return Path(train_zip), Path(test_zip)


def write_chars74k_standins(train_zip, test_zip, seed: int = 0) -> tuple[Path, Path]:
    """The trainPart1 and testPart1 stand-ins, built together (each writer draws each character once across both)."""
    full = Path(train_zip).with_name(f".{Path(train_zip).name}.all-writers.zip")
    try:
        write_trainpart1_standin(full, seed=seed, writers=WRITERS)
        return split_like_the_assignment(full, train_zip, test_zip, seed)
    finally:
        full.unlink(missing_ok=True)


# ----------------------------------------------------------------------------- mnistTask3

def mnisttask3_standin_folders(labels: torch.Tensor, seed: int = 0,
                               true_folder_probability: float = TRUE_FOLDER_PROBABILITY) -> torch.Tensor:
    """Each image's folder: its true digit with probability p, else one of the other nine uniformly."""
    labels, generator = labels.numpy(), np.random.default_rng(seed)
    keep_true = generator.random(len(labels)) < true_folder_probability
    other = (labels + generator.integers(1, 10, len(labels))) % 10
    return torch.from_numpy(np.where(keep_true, labels, other))


def write_mnisttask3_standin(target_zip, images: torch.Tensor, labels: torch.Tensor, seed: int = 0,
                             true_folder_probability: float = TRUE_FOLDER_PROBABILITY) -> Path:
    """Images float [N, 1, 28, 28] in [0, 1] as `mnistTask/<folder>/image_<index:06d>.jpg` (quality 75)."""
    folders = mnisttask3_standin_folders(labels, seed, true_folder_probability).tolist()
    pixels = (images[:, 0] * 255).round().to(torch.uint8).numpy()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for index, folder in enumerate(folders):
            encoded = io.BytesIO()
            Image.fromarray(pixels[index]).save(encoded, format="JPEG", quality=75)
            archive.writestr(zipfile.ZipInfo(f"mnistTask/{folder}/image_{index:06d}.jpg", ZIP_DATE), encoded.getvalue())
    atomic_write_bytes(Path(target_zip), buffer.getvalue())
    return Path(target_zip)


def standin_transition_matrix(labels: torch.Tensor, seed: int = 0,
                              true_folder_probability: float = TRUE_FOLDER_PROBABILITY) -> torch.Tensor:
    """The stand-in's realised T[true digit, folder], rows normalised (known because we built it)."""
    folders = mnisttask3_standin_folders(labels, seed, true_folder_probability)
    counts = torch.zeros(10, 10).index_put_((labels.long(), folders.long()), torch.ones(len(labels)), accumulate=True)
    return counts / counts.sum(dim=1, keepdim=True)
