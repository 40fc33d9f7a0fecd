"""The preprocessing invariants that transfer to MNIST depends on."""
import io
import math

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from src.files import DataError, decode_grayscale
from src.preprocess import MNIST_STROKE_WIDTH, find_ink_box, ink_from_luminance, stroke_width, to_mnist_convention


def drawing(size=(1200, 900), box=(300, 200, 520, 560), width=5) -> np.ndarray:
    """Luminance of an off-centre, lopsided character (a '7'-like polyline), black on white."""
    image = Image.new("L", size, 255)
    left, top, right, bottom = box
    ImageDraw.Draw(image).line([(left, top), (right, top), (left + 40, bottom)], fill=0, width=width)
    return np.asarray(image, dtype=np.float32) / 255


def centre_of_mass(image: torch.Tensor) -> tuple[float, float]:
    mass = image.sum()
    rows = (image.sum(1) * torch.arange(28.0)).sum() / mass
    columns = (image.sum(0) * torch.arange(28.0)).sum() / mass
    return float(rows), float(columns)


def test_output_is_white_ink_on_black_centred_by_mass_and_fitted_into_20x20():
    image, _ = to_mnist_convention(drawing())
    assert image.shape == (28, 28)
    assert image.max() == pytest.approx(1.0) and image.min() == 0.0
    assert image[0].sum() == image[-1].sum() == image[:, 0].sum() == image[:, -1].sum() == 0  # black border
    row, column = centre_of_mass(image)
    assert abs(row - 14.0) <= 0.5 and abs(column - 14.0) <= 0.5  # integer shift, as MNIST did
    rows = torch.nonzero(image.sum(1) > 0.05).flatten()
    columns = torch.nonzero(image.sum(0) > 0.05).flatten()
    assert max(rows[-1] - rows[0] + 1, columns[-1] - columns[0] + 1) <= 21


def test_strokes_are_thickened_to_mnist_width_whatever_the_pen():
    for pen in (3, 5, 12):
        image, _ = to_mnist_convention(drawing(width=pen))
        assert abs(float(stroke_width(image)) - MNIST_STROKE_WIDTH) < 0.8, pen


def test_polarity_does_not_matter():
    black_on_white, _ = to_mnist_convention(drawing())
    white_on_black, _ = to_mnist_convention(1.0 - drawing())
    assert torch.equal(black_on_white, white_on_black)


def test_position_on_the_canvas_does_not_change_the_image_but_does_change_the_geometry():
    here, box_here = to_mnist_convention(drawing(box=(300, 200, 520, 560)))
    there, box_there = to_mnist_convention(drawing(box=(700, 300, 920, 660)))
    assert torch.equal(here, there)
    assert box_there.geometry()[2] > box_here.geometry()[2]  # further right


def test_geometry_log_height_grows_by_log2_when_the_drawing_doubles():
    _, small = to_mnist_convention(drawing(box=(300, 200, 410, 380), width=5))
    _, large = to_mnist_convention(drawing(box=(300, 200, 520, 560), width=5))
    assert large.geometry()[0] - small.geometry()[0] == pytest.approx(math.log(2), abs=0.03)


def test_blank_image_is_an_error_naming_the_file():
    with pytest.raises(DataError, match="blank.png"):
        to_mnist_convention(np.ones((90, 120), dtype=np.float32), "blank.png")


def encoded(image: Image.Image, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **options)
    return buffer.getvalue()


def test_grayscale_rgb_rgba_palette_and_16_bit_pngs_decode_identically():
    luminance = (drawing(size=(240, 180), box=(60, 40, 110, 120), width=3) * 255).astype(np.uint8)
    gray = Image.fromarray(luminance, "L")
    rgba = gray.convert("RGBA")
    transparent_paper = rgba.copy()
    transparent_paper.putalpha(Image.fromarray(255 - luminance, "L"))  # ink opaque, paper transparent
    transparent_paper = Image.merge("RGBA", (*Image.new("RGB", gray.size, "black").split(), transparent_paper.getchannel("A")))
    sixteen_bit = Image.fromarray(luminance.astype(np.uint16) * 257)
    variants = {
        "L": encoded(gray), "RGB": encoded(gray.convert("RGB")), "RGBA": encoded(rgba),
        "RGBA transparent paper": encoded(transparent_paper), "P": encoded(gray.convert("RGB").convert("P")),
        "I;16": encoded(sixteen_bit),
    }
    reference = decode_grayscale(variants["L"], "L.png")
    for mode, payload in variants.items():
        decoded = decode_grayscale(payload, f"{mode}.png")
        assert decoded.shape == reference.shape, mode
        assert np.abs(decoded - reference).max() < 1 / 255 + 1e-6, mode


def test_ink_box_is_found_on_either_polarity():
    luminance = drawing(size=(200, 100), box=(50, 20, 90, 70), width=3)
    rows = np.nonzero((luminance < 0.5).any(axis=1))[0]
    columns = np.nonzero((luminance < 0.5).any(axis=0))[0]
    expected = (rows[0], columns[0], rows[-1] + 1, columns[-1] + 1, 100, 200)
    for image in (luminance, 1.0 - luminance):
        box = find_ink_box(ink_from_luminance(image), "x")
        assert (box.top, box.left, box.bottom, box.right, box.canvas_height, box.canvas_width) == expected


def test_writer_relative_geometry_removes_each_writers_size_and_place_and_falls_back_for_unknown_writers():
    from src.preprocess import geometry_inputs, writer_relative_geometry
    writers = torch.tensor([1] * 12 + [2] * 12 + [-1, 3])
    log_height = torch.cat([torch.linspace(-2, -1, 12), torch.linspace(-2, -1, 12) + 0.7, torch.tensor([-1.2, -1.3])])
    centre_x = torch.cat([torch.linspace(-0.1, 0.1, 12), torch.linspace(-0.1, 0.1, 12) + 0.2, torch.tensor([0.3, 0.0])])
    geometry = torch.stack([log_height, log_height - 0.2, centre_x, torch.zeros(26)], dim=1)
    relative = writer_relative_geometry(geometry, writers, fallback_reference=[-1.5, 0.05, 0.0])
    # The same drawings by a writer who draws 2x larger (log + 0.7) further right get the same inputs.
    assert torch.allclose(relative[:12], relative[12:24], atol=1e-6)
    assert float(relative[:12, 0].median()) == pytest.approx(0.0, abs=1e-6)
    # Unknown writer (-1) and a writer with a single image are measured against the fallback.
    assert relative[24, 0] == pytest.approx(-1.2 + 1.5) and relative[25, 0] == pytest.approx(-1.3 + 1.5)
    assert relative[24, 2] == pytest.approx(0.3 - 0.05)
    assert geometry_inputs(geometry, writers, "none", [0.0] * 3) is None
    assert torch.equal(geometry_inputs(geometry, writers, "absolute", [0.0] * 3), geometry)
