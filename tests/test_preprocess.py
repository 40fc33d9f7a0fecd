"""The preprocessing invariants that transfer to MNIST depends on, and the geometry side input."""
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from src.data.files import DataError, decode_grayscale
from src.data.preprocess import (MNIST_STROKE_WIDTH, GeometryReferences, centre_of_mass, geometry_inputs,
                                 network_inputs, prepare, stroke_width, to_mnist_convention, writer_relative_geometry)
from tests.generated import png_bytes


def drawing(size=(1200, 900), box=(300, 200, 520, 560), width=5) -> np.ndarray:
    """Luminance of an off-centre, lopsided character (a '7'-like polyline), black on white."""
    image = Image.new("L", size, 255)
    left, top, right, bottom = box
    ImageDraw.Draw(image).line([(left, top), (right, top), (left + 40, bottom)], fill=0, width=width)
    return np.asarray(image, dtype=np.float32) / 255


def test_output_is_white_ink_on_black_centred_by_mass_fitted_into_20x20_whatever_the_polarity():
    image, _ = to_mnist_convention(drawing())
    assert image.shape == (28, 28) and image.max() == pytest.approx(1.0) and image.min() == 0.0
    assert image[0].sum() == image[-1].sum() == image[:, 0].sum() == image[:, -1].sum() == 0  # black border
    row, column = map(float, centre_of_mass(image))
    assert abs(row - 14.0) <= 0.5 and abs(column - 14.0) <= 0.5  # integer shift, as MNIST did
    rows, columns = torch.nonzero(image.sum(1) > 0.05).flatten(), torch.nonzero(image.sum(0) > 0.05).flatten()
    assert max(rows[-1] - rows[0] + 1, columns[-1] - columns[0] + 1) <= 21
    assert torch.equal(image, to_mnist_convention(1.0 - drawing())[0])


def test_strokes_are_thickened_to_mnist_width_whatever_the_pen_and_thinned_only_by_mnist_thinned():
    for pen in (3, 5, 12):
        assert abs(float(stroke_width(prepare(drawing(width=pen), "mnist")[0])) - MNIST_STROKE_WIDTH) < 0.8, pen
    thick = drawing(width=80)  # a tablet pen on a small drawing: ~4 px after the 20x20 fit
    (as_drawn, box), (thinned, thinned_box) = prepare(thick, "mnist"), prepare(thick, "mnist_thinned")
    assert float(stroke_width(as_drawn)) > MNIST_STROKE_WIDTH + 1.0  # thickening never thins
    assert abs(float(stroke_width(thinned)) - MNIST_STROKE_WIDTH) < 0.8 and box == thinned_box
    assert torch.equal(prepare(drawing(width=3), "mnist_thinned")[0], prepare(drawing(width=3), "mnist")[0])


def test_resize32_keeps_the_whole_canvas_and_the_same_ink_box_and_a_blank_image_is_an_error_naming_it():
    image, box = prepare(drawing(), "resize32")
    assert image.shape == (32, 32) and box == to_mnist_convention(drawing())[1]
    assert float(image[:, :6].max()) < 0.05 < float(image[:, 8:15].max())  # the ink stays where it was drawn
    with pytest.raises(ValueError, match="unknown preprocessing 'writer_case'"):
        prepare(drawing(), "writer_case")
    for preprocessing in ("mnist", "resize32"):
        with pytest.raises(DataError, match="blank.png: no ink"):
            prepare(np.ones((90, 120), dtype=np.float32), preprocessing, "blank.png")


def test_position_changes_the_geometry_not_the_image_and_doubling_adds_log2_to_the_height():
    here, box_here = to_mnist_convention(drawing(box=(300, 200, 520, 560)))
    there, box_there = to_mnist_convention(drawing(box=(700, 300, 920, 660)))
    assert torch.equal(here, there) and box_there.geometry()[2] > box_here.geometry()[2]  # further right
    _, small = to_mnist_convention(drawing(box=(300, 200, 410, 380)))
    assert box_here.geometry()[0] - small.geometry()[0] == pytest.approx(math.log(2), abs=0.03)


def test_grayscale_rgb_rgba_palette_and_16_bit_pngs_decode_identically():
    luminance = (drawing(size=(240, 180), box=(60, 40, 110, 120), width=3) * 255).astype(np.uint8)
    gray = Image.fromarray(luminance, "L")
    transparent_paper = Image.merge("RGBA", (*Image.new("RGB", gray.size, "black").split(),
                                             Image.fromarray(255 - luminance, "L")))  # ink opaque, paper transparent
    variants = {"L": gray, "RGB": gray.convert("RGB"), "RGBA": gray.convert("RGBA"), "transparent": transparent_paper,
                "P": gray.convert("RGB").convert("P"), "I;16": Image.fromarray(luminance.astype(np.uint16) * 257)}
    reference = decode_grayscale(png_bytes(gray), "L.png")
    for mode, image in variants.items():
        decoded = decode_grayscale(png_bytes(image), f"{mode}.png")
        assert decoded.shape == reference.shape and np.abs(decoded - reference).max() < 1 / 255 + 1e-6, mode


def test_writer_geometry_removes_each_writers_size_and_place_and_the_modes_are_none_absolute_writer():
    writers = torch.tensor([1] * 12 + [2] * 12)
    one = torch.stack([torch.linspace(-2, -1, 12), torch.linspace(-2.2, -1.2, 12), torch.linspace(-0.1, 0.1, 12),
                       torch.zeros(12)], dim=1)
    geometry = torch.cat([one, one + torch.tensor([0.7, 0.7, 0.2, 0.0])])  # writer 2 draws 2x larger, further right
    relative = geometry_inputs(geometry, writers, "writer", fallback_reference=[-1.5, 0.05, 0.0])
    assert torch.allclose(relative[:12], relative[12:], atol=1e-6) and float(relative[:12, 0].median()) == 0.0
    assert geometry_inputs(geometry, writers, "none", [0.0] * 3) is None
    assert torch.equal(geometry_inputs(geometry, writers, "absolute", [0.0] * 3), geometry)
    with pytest.raises(ValueError, match="unknown geometry mode 'writer_case'"):
        geometry_inputs(geometry, writers, "writer_case", [0.0] * 3)


def test_a_known_writer_is_measured_against_its_training_drawings_not_the_evaluated_ones():
    training, training_writers = torch.zeros(21, 4), torch.tensor([5] * 10 + [6] * 10 + [-1])  # -1: writer unknown
    training[:10, 0], training[10:20, 0], training[20, 0] = -1.0, -2.0, -1.5
    references = GeometryReferences.measure(training, training_writers, minimum_images=10)
    assert references.writers == {5: [-1.0, 0.0, 0.0], 6: [-2.0, 0.0, 0.0]} and references.training_set[0] == -1.5
    # Three later drawings by writer 5, all small: against its training median they stay small (its own median
    # over these three would call the middle one average). Writer 7 is new and has too few: the training set's median.
    later = SimpleNamespace(images=torch.zeros(4, 1, 28, 28), labels=torch.arange(4),
                            writers=torch.tensor([5, 5, 5, 7]),
                            geometry=torch.tensor([[-1.5, 0, 0, 0], [-1.6, 0, 0, 0], [-1.4, 0, 0, 0], [-1.0, 0, 0, 0]]))
    known = network_inputs(later, "writer", references, minimum_images=3).geometry
    assert known[:, 0].tolist() == pytest.approx([-0.5, -0.6, -0.4, 0.5])
    unknown = network_inputs(later, "writer", references, minimum_images=3, known_writers=False).geometry
    assert unknown[:, 0].tolist() == pytest.approx([0.0, -0.1, 0.1, 0.5])
    assert torch.equal(unknown, writer_relative_geometry(later.geometry, later.writers, references.training_set, 3))
