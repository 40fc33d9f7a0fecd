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


def test_thick_strokes_are_thinned_to_mnist_width_only_when_asked():
    thick = drawing(width=80)  # a tablet pen on a small drawing: ~4 px after the 20x20 fit
    as_drawn, _ = to_mnist_convention(thick)
    thinned, _ = to_mnist_convention(thick, thin_thick_strokes=True)
    assert float(stroke_width(as_drawn)) > MNIST_STROKE_WIDTH + 1.0  # thickening never thins
    assert abs(float(stroke_width(thinned)) - MNIST_STROKE_WIDTH) < 0.8
    assert torch.equal(to_mnist_convention(drawing(width=3), thin_thick_strokes=True)[0],
                       to_mnist_convention(drawing(width=3))[0])  # a thin pen is thickened alike either way


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


def test_a_known_writer_is_measured_against_its_training_drawings_not_the_evaluated_ones():
    from src.preprocess import writer_references, writer_relative_geometry
    training_writers = torch.tensor([5] * 10 + [6] * 10)
    training = torch.stack([torch.cat([torch.full((10,), -1.0), torch.full((10,), -2.0)]), torch.zeros(20),
                            torch.zeros(20), torch.zeros(20)], dim=1)
    known = writer_references(training, training_writers, minimum_images=10)
    assert known == {5: [-1.0, 0.0, 0.0], 6: [-2.0, 0.0, 0.0]}
    # Three later drawings by writer 5, all small: against its training median they stay small (its own median
    # over these three would call the smallest of them average). Writer 7 is new and has too few: fallback.
    later = torch.tensor([[-1.5, 0.0, 0.0, 0.0], [-1.6, 0.0, 0.0, 0.0], [-1.4, 0.0, 0.0, 0.0], [-1.0, 0.0, 0.0, 0.0]])
    writers = torch.tensor([5, 5, 5, 7])
    relative = writer_relative_geometry(later, writers, [-1.2, 0.0, 0.0], minimum_images=3, known_references=known)
    assert relative[:3, 0].tolist() == pytest.approx([-0.5, -0.6, -0.4])
    assert relative[3, 0] == pytest.approx(0.2)
    own = writer_relative_geometry(later, writers, [-1.2, 0.0, 0.0], minimum_images=3)
    assert own[:3, 0].tolist() == pytest.approx([0.0, -0.1, 0.1])


def test_a_drawing_is_measured_against_its_writers_tall_and_short_levels_or_the_population_offsets():
    from src.preprocess import case_height_offsets, case_relative_heights, writer_case_heights, writer_references
    classes = "AOaoi"  # tall, tall, short, short, neither
    labels = torch.tensor([0, 1, 0, 2, 3, 2, 4] * 3)
    writers = torch.tensor([1] * 7 + [2] * 7 + [3] * 7)
    one = [-1.0] * 3 + [-1.6] * 3 + [-1.3]
    log_height = torch.tensor(one + [-0.5] * 3 + [-0.8] * 3 + [-0.65] + one)  # writer 2 draws larger, levels closer
    geometry = torch.stack([log_height, log_height, torch.zeros(21), torch.zeros(21)], dim=1)
    levels = writer_case_heights(geometry, writers, labels, classes, minimum_each=3)
    assert levels.keys() == {1, 2, 3} and levels[1] == pytest.approx([-1.0, -1.6]) and levels[2] == pytest.approx([-0.5, -0.8])
    medians = writer_references(geometry, writers, minimum_images=3)
    offsets = case_height_offsets(levels, medians)  # writers 1 and 3: +0.3/-0.3 around the median; writer 2: +-0.15
    assert offsets == pytest.approx([0.3, -0.3])
    relative = geometry - torch.tensor([[medians[w][0], medians[w][0], 0.0, 0.0] for w in writers.tolist()])
    heights = case_relative_heights(geometry, writers, relative, levels, offsets)
    assert heights[0].tolist() == pytest.approx([0.0, 0.6]) and heights[7].tolist() == pytest.approx([0.0, 0.3])
    unlabelled = case_relative_heights(geometry, writers, relative, {}, offsets)  # levels: median + offsets
    assert unlabelled[7].tolist() == pytest.approx([-0.5 - (-0.65 + 0.3), -0.5 - (-0.65 - 0.3)])
