"""Offline stand-in for the hand-drawn character dataset ``trainPart1.zip``.

Why this exists: the real dataset (62 character classes, 40 writers, one
1200x900 PNG per writer and class) cannot always be found, e.g. on a machine
without network access.  So that the pipeline and its tests can still run end
to end, this module writes a zip with the same layout and roughly the same
image statistics: black pen-like strokes of a few pixels on a white canvas,
capitals about 270 px tall, lowercase letters smaller, each writer with an
own size and position on the canvas.

The characters are *not* handwriting.  They are glyphs of fonts that ship
with matplotlib, thinned to a one-pixel skeleton, distorted per image by a
random affine map and by the elastic distortion of Simard, Steinkraus & Platt
("Best Practices for Convolutional Neural Networks Applied to Visual Document
Analysis", ICDAR 2003), and redrawn with a round pen of random width.  Any
result obtained on this data must be labelled as synthetic wherever it is
used or reported.

Entry point: ``write_synthetic_trainpart1``.
"""

import functools
import io
import os
import pathlib
import zipfile
from dataclasses import dataclass

import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .data import CLASS_CHARACTERS  # one definition of the class order

# Text fonts shipped with matplotlib, tried in this fixed order; a font is
# used only if it renders all 62 characters (see `usable_font_paths`).
CANDIDATE_FONT_NAMES = (
    "DejaVuSans",
    "DejaVuSans-Oblique",
    "DejaVuSansMono",
    "DejaVuSansMono-Oblique",
    "DejaVuSerif",
    "DejaVuSerif-Italic",
    "STIXGeneral",
    "STIXGeneralItalic",
    "cmr10",
    "cmss10",
    "cmti10",
    "cmtt10",
)

# Glyphs are rendered at this font size (pixels per em) before thinning.
GLYPH_RENDER_FONT_SIZE = 160

# Character sizes are given for a canvas this tall and scale with the canvas.
REFERENCE_CANVAS_HEIGHT = 900
CAPITAL_HEIGHT = 270  # ink height of digits and capitals, in pixels
LOWERCASE_RELATIVE_HEIGHT = 0.62
TALL_LOWERCASE_RELATIVE_HEIGHT = 0.9
DOTTED_LOWERCASE_RELATIVE_HEIGHT = 0.75
TALL_LOWERCASE_LETTERS = "bdfhklt" + "gjpqy"  # ascenders + descenders
DOTTED_LOWERCASE_LETTERS = "i"

# Blank pixels kept between the ink and the canvas border.
BORDER_MARGIN = 4

# Fixed zip entry timestamp, so that the same seed gives a byte-identical zip.
ZIP_TIMESTAMP = (2020, 1, 1, 0, 0, 0)

INK = (0, 0, 0)
PAPER = (255, 255, 255)


# --------------------------------------------------------------------------
# Fonts
# --------------------------------------------------------------------------


def font_directory():
    return pathlib.Path(matplotlib.get_data_path()) / "fonts" / "ttf"


def renders_every_character(font):
    """True if every class character has its own, non-empty glyph in `font`.

    A missing glyph is drawn as the font's placeholder ("notdef") glyph, so a
    character whose mask equals that of an unassigned code point is missing.
    """
    placeholder = font.getmask("\U0010ffff")
    placeholder_signature = (placeholder.size, bytes(placeholder))
    for character in CLASS_CHARACTERS:
        mask = font.getmask(character)
        if mask.getbbox() is None:
            return False
        if (mask.size, bytes(mask)) == placeholder_signature:
            return False
    return True


@functools.lru_cache(maxsize=None)
def usable_font_paths():
    """Candidate fonts that exist and render all 62 characters, in fixed order."""
    usable = []
    for name in CANDIDATE_FONT_NAMES:
        path = font_directory() / f"{name}.ttf"
        if not path.is_file():
            continue
        font = ImageFont.truetype(str(path), GLYPH_RENDER_FONT_SIZE)
        if renders_every_character(font):
            usable.append(str(path))
    if not usable:
        raise RuntimeError(f"no usable text font found in {font_directory()}")
    return tuple(usable)


# --------------------------------------------------------------------------
# Glyph skeletons: the centre lines a pen would follow
# --------------------------------------------------------------------------


def render_glyph_mask(font_path, character):
    """Filled glyph as a boolean array (rows, columns) with a blank border."""
    font = ImageFont.truetype(font_path, GLYPH_RENDER_FONT_SIZE)
    left, top, right, bottom = font.getbbox(character)
    padding = 4
    image = Image.new("L", (right - left + 2 * padding, bottom - top + 2 * padding), 0)
    ImageDraw.Draw(image).text((padding - left, padding - top), character, font=font, fill=255)
    return np.asarray(image) >= 128


def neighbour_planes(padded):
    """The 8 neighbours of every interior pixel of `padded`, clockwise from north.

    Returns P2..P9 in the notation of Zhang & Suen (1984): north, north-east,
    east, south-east, south, south-west, west, north-west.
    """
    return (
        padded[:-2, 1:-1],
        padded[:-2, 2:],
        padded[1:-1, 2:],
        padded[2:, 2:],
        padded[2:, 1:-1],
        padded[2:, :-2],
        padded[1:-1, :-2],
        padded[:-2, :-2],
    )


def thin_to_skeleton(mask):
    """One-pixel-wide skeleton of a boolean mask (Zhang & Suen 1984 thinning).

    One change to the textbook algorithm: a pixel is never removed if all its
    remaining neighbours are removed in the same pass, so that small blobs
    such as the dot of an 'i' shrink to a point instead of vanishing.
    """
    image = np.pad(mask.astype(np.uint8), 1)
    while True:
        removed_any = False
        for pass_index in (0, 1):
            north, north_east, east, south_east, south, south_west, west, north_west = (
                neighbour_planes(image)
            )
            ring = (north, north_east, east, south_east, south, south_west, west, north_west, north)
            neighbour_count = sum(plane.astype(np.int32) for plane in ring[:8])
            zero_to_one_transitions = sum(
                ((before == 0) & (after == 1)).astype(np.int32)
                for before, after in zip(ring[:-1], ring[1:])
            )
            if pass_index == 0:
                side_condition = (north * east * south == 0) & (east * south * west == 0)
            else:
                side_condition = (north * east * west == 0) & (north * south * west == 0)
            removable = (
                (image[1:-1, 1:-1] == 1)
                & (neighbour_count >= 2)
                & (neighbour_count <= 6)
                & (zero_to_one_transitions == 1)
                & side_condition
            )
            survivors = image.copy()
            survivors[1:-1, 1:-1][removable] = 0
            surviving_neighbours = sum(plane.astype(np.int32) for plane in neighbour_planes(survivors))
            removable &= surviving_neighbours > 0
            if removable.any():
                image[1:-1, 1:-1][removable] = 0
                removed_any = True
        if not removed_any:
            return image[1:-1, 1:-1].astype(bool)


def skeleton_graph(skeleton):
    """Skeleton pixels as points (x, y) and the pairs of touching pixels as edges."""
    rows, columns = np.nonzero(skeleton)
    points = np.stack([columns, rows], axis=1).astype(np.float64)
    index_of_pixel = np.full((skeleton.shape[0] + 2, skeleton.shape[1] + 2), -1, dtype=np.int64)
    index_of_pixel[rows + 1, columns + 1] = np.arange(len(rows))
    edges = []
    for row_step, column_step in ((0, 1), (1, 0), (1, 1), (1, -1)):
        neighbour_index = index_of_pixel[rows + 1 + row_step, columns + 1 + column_step]
        touching = neighbour_index >= 0
        edges.append(np.stack([np.nonzero(touching)[0], neighbour_index[touching]], axis=1))
    return points, np.concatenate(edges)


def smooth_along_strokes(points, edges, rounds=2):
    """Move each point towards the mean of its neighbours, to soften pixel stair-steps."""
    for _ in range(rounds):
        total = points.copy()
        count = np.ones(len(points))
        np.add.at(total, edges[:, 0], points[edges[:, 1]])
        np.add.at(total, edges[:, 1], points[edges[:, 0]])
        np.add.at(count, edges[:, 0], 1)
        np.add.at(count, edges[:, 1], 1)
        points = total / count[:, None]
    return points


@dataclass(frozen=True)
class GlyphSkeleton:
    points: np.ndarray  # (n, 2) float x, y in render pixels
    edges: np.ndarray  # (m, 2) indices into points; each edge is a pen stroke
    grid_shape: tuple  # (rows, columns) of the rendered glyph image


@functools.lru_cache(maxsize=None)
def glyph_skeleton(font_path, character):
    skeleton = thin_to_skeleton(render_glyph_mask(font_path, character))
    points, edges = skeleton_graph(skeleton)
    return GlyphSkeleton(smooth_along_strokes(points, edges), edges, skeleton.shape)


# --------------------------------------------------------------------------
# Distortions
# --------------------------------------------------------------------------


def gaussian_blur(planes, sigma):
    """Blur each 2-D plane of `planes` by a Gaussian of standard deviation `sigma` pixels.

    Computed in the Fourier domain (single-threaded, no scipy needed); the
    edges wrap around, which does not matter for blurring random noise.
    """
    rows, columns = planes.shape[-2:]
    row_frequencies = np.fft.fftfreq(rows)[:, None]
    column_frequencies = np.fft.rfftfreq(columns)[None, :]
    gaussian_response = np.exp(-2.0 * (np.pi * sigma) ** 2 * (row_frequencies**2 + column_frequencies**2))
    return np.fft.irfft2(np.fft.rfft2(planes) * gaussian_response, s=(rows, columns))


def elastic_displacement(grid_shape, rng, smoothness, strength):
    """Random smooth displacement field (Simard et al. 2003), shape (2, rows, columns).

    Uniform noise in [-1, 1] per pixel and direction, blurred by a Gaussian of
    standard deviation `smoothness` pixels, then scaled so that the
    displacement has standard deviation `strength` pixels.
    """
    noise = rng.uniform(-1.0, 1.0, size=(2, *grid_shape))
    field = gaussian_blur(noise, smoothness)
    return field * (strength / max(field.std(), 1e-12))


def elastically_distort(skeleton, rng):
    """Skeleton points moved by an elastic displacement field sized to the glyph."""
    glyph_size = max(skeleton.grid_shape)
    field = elastic_displacement(
        skeleton.grid_shape,
        rng,
        smoothness=0.12 * glyph_size,
        strength=rng.uniform(0.015, 0.035) * glyph_size,
    )
    columns = skeleton.points[:, 0].round().astype(int).clip(0, skeleton.grid_shape[1] - 1)
    rows = skeleton.points[:, 1].round().astype(int).clip(0, skeleton.grid_shape[0] - 1)
    return skeleton.points + np.stack([field[0, rows, columns], field[1, rows, columns]], axis=1)


def random_affine_matrix(rng, writer_slant):
    """2x2 map: rotation of +-12 degrees, shear of +-0.3, per-axis scale 0.85-1.15.

    The shear is the writer's slant plus a per-image jitter, in total within +-0.3.
    """
    angle = np.deg2rad(rng.uniform(-12.0, 12.0))
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    shear_amount = np.clip(writer_slant + rng.uniform(-0.15, 0.15), -0.3, 0.3)
    shear = np.array([[1.0, shear_amount], [0.0, 1.0]])
    scale = np.diag(rng.uniform(0.85, 1.15, size=2))
    return rotation @ shear @ scale


# --------------------------------------------------------------------------
# Writers and sizes
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class WriterStyle:
    size_factor: float  # multiplies every character height
    centre_offset: tuple  # (x, y) preferred position, relative to the canvas centre
    pen_width: float  # typical stroke width in pixels
    slant: float  # typical shear of the characters


def writer_style(seed, sample_number, canvas_size):
    """Style shared by all characters of one writer (one sample number)."""
    rng = np.random.default_rng([seed, 0, sample_number])
    width, height = canvas_size
    canvas_scale = height / REFERENCE_CANVAS_HEIGHT
    return WriterStyle(
        size_factor=float(np.exp(rng.uniform(np.log(0.7), np.log(1.4)))),
        centre_offset=(float(rng.uniform(-0.15, 0.15) * width), float(rng.uniform(-0.12, 0.12) * height)),
        pen_width=float(np.exp(rng.uniform(np.log(3.0), np.log(10.0))) * canvas_scale),
        slant=float(rng.uniform(-0.15, 0.15)),
    )


def relative_class_height(character):
    """Ink height of `character` relative to a capital letter."""
    if not character.islower():
        return 1.0
    if character in TALL_LOWERCASE_LETTERS:
        return TALL_LOWERCASE_RELATIVE_HEIGHT
    if character in DOTTED_LOWERCASE_LETTERS:
        return DOTTED_LOWERCASE_RELATIVE_HEIGHT
    return LOWERCASE_RELATIVE_HEIGHT


# --------------------------------------------------------------------------
# Drawing one image
# --------------------------------------------------------------------------


def place_on_canvas(points, target_height, pen_width, preferred_centre, canvas_size):
    """Scale `points` so the ink is `target_height` tall and move them near `preferred_centre`.

    The ink (points plus half a pen width) always stays `BORDER_MARGIN`
    pixels inside the canvas; a character too big for the canvas is shrunk.
    """
    width, height = canvas_size
    ink_reach = pen_width / 2.0 + BORDER_MARGIN
    extent = np.maximum(points.max(axis=0) - points.min(axis=0), 1e-6)
    scale = min(
        max(target_height - pen_width, 1.0) / extent[1],
        max(width - 2 * ink_reach - 1, 1.0) / extent[0],
        max(height - 2 * ink_reach - 1, 1.0) / extent[1],
    )
    scaled = (points - points.min(axis=0)) * scale
    scaled_extent = scaled.max(axis=0)
    lowest_corner = np.array([ink_reach, ink_reach])
    highest_corner = np.array([width - 1 - ink_reach, height - 1 - ink_reach]) - scaled_extent
    corner = np.clip(np.asarray(preferred_centre) - scaled_extent / 2.0, lowest_corner, highest_corner)
    return scaled + corner


def draw_strokes(canvas, points, edges, pen_width):
    """Draw every edge as a line and every point as a round pen tip."""
    draw = ImageDraw.Draw(canvas)
    width = max(int(round(pen_width)), 1)
    radius = (width - 1) / 2.0
    point_list = [tuple(point) for point in points.tolist()]
    for start, end in edges.tolist():
        draw.line([point_list[start], point_list[end]], fill=INK, width=width)
    if radius > 0:
        for x, y in point_list:
            draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=INK)


def render_character_image(character, writer, rng, canvas_size):
    """One RGB image of `character` as written by `writer`."""
    fonts = usable_font_paths()
    skeleton = glyph_skeleton(fonts[rng.integers(len(fonts))], character)
    points = elastically_distort(skeleton, rng)
    points = points @ random_affine_matrix(rng, writer.slant).T

    canvas_scale = canvas_size[1] / REFERENCE_CANVAS_HEIGHT
    target_height = (
        CAPITAL_HEIGHT * canvas_scale * writer.size_factor * relative_class_height(character) * rng.uniform(0.9, 1.1)
    )
    pen_width = float(np.clip(writer.pen_width * rng.uniform(0.8, 1.25), 2.0, 15.0))
    jitter = rng.uniform(-0.04, 0.04, size=2) * np.asarray(canvas_size)
    preferred_centre = np.asarray(canvas_size) / 2.0 + np.asarray(writer.centre_offset) + jitter
    points = place_on_canvas(points, target_height, pen_width, preferred_centre, canvas_size)

    canvas = Image.new("RGB", canvas_size, PAPER)
    draw_strokes(canvas, points, skeleton.edges, pen_width)
    return canvas


def png_bytes(image):
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False, compress_level=1)
    return buffer.getvalue()


# --------------------------------------------------------------------------
# The zip
# --------------------------------------------------------------------------


def archive_name(class_number, sample_number):
    return f"train/Sample{class_number:03d}/img{class_number:03d}-{sample_number:03d}.png"


def class_numbers_of(classes):
    """1-based index in CLASS_CHARACTERS of each requested character, in order."""
    numbers = []
    for character in classes:
        if character not in CLASS_CHARACTERS:
            raise ValueError(f"unknown class character {character!r}")
        number = CLASS_CHARACTERS.index(character) + 1
        if number in numbers:
            raise ValueError(f"class character {character!r} requested twice")
        numbers.append(number)
    return numbers


def write_synthetic_trainpart1(
    target_zip,
    seed=0,
    samples_per_class=40,
    canvas_size=(1200, 900),
    classes=CLASS_CHARACTERS,
) -> pathlib.Path:
    """Write a zip in the trainPart1 layout filled with synthetic characters; returns the path.

    Layout: ``train/SampleNNN/imgNNN-MMM.png`` with NNN the 1-based index of
    the character in CLASS_CHARACTERS and MMM = 001..samples_per_class the
    writer.  Each image is a `canvas_size` (width, height) RGB PNG with black
    ink on white.  The same (non-negative integer) `seed` gives a
    byte-identical zip; an image depends only on the seed, its character and
    its writer, not on which other classes or samples are requested.  The zip
    is built next to `target_zip` under a ".partial" name and then moved into
    place, so an interrupted run never leaves a truncated `target_zip`.
    """
    if not 1 <= samples_per_class <= 999:
        raise ValueError("samples_per_class must be between 1 and 999")
    canvas_size = (int(canvas_size[0]), int(canvas_size[1]))
    if min(canvas_size) < 2 * BORDER_MARGIN + 16:
        raise ValueError(f"canvas_size {canvas_size} is too small")
    class_numbers = class_numbers_of(classes)

    target_zip = pathlib.Path(target_zip)
    target_zip.parent.mkdir(parents=True, exist_ok=True)
    partial_zip = target_zip.with_name(target_zip.name + ".partial")
    writers = [writer_style(seed, sample, canvas_size) for sample in range(1, samples_per_class + 1)]
    try:
        with zipfile.ZipFile(partial_zip, "w", compression=zipfile.ZIP_STORED) as archive:
            for class_number in class_numbers:
                character = CLASS_CHARACTERS[class_number - 1]
                for sample_number, writer in enumerate(writers, start=1):
                    rng = np.random.default_rng([seed, class_number, sample_number])
                    image = render_character_image(character, writer, rng, canvas_size)
                    entry = zipfile.ZipInfo(archive_name(class_number, sample_number), date_time=ZIP_TIMESTAMP)
                    entry.external_attr = 0o644 << 16
                    archive.writestr(entry, png_bytes(image))
        os.replace(partial_zip, target_zip)
    finally:
        if partial_zip.exists():
            partial_zip.unlink()
    return target_zip
