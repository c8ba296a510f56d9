"""Image parameterizations: what the optimizer changes, and how that becomes an image.

`PixelParam` is the seed's: the optimizer moves raw pixel values. `FourierParam`
follows Lucid's recipe (Olah et al., "Feature Visualization", Distill 2017):
the optimizer moves a spectrum whose high frequencies are scaled down, whose
colours are decorrelated, and which a sigmoid maps into [0, 1] — gradient
steps then favour smooth, natural-looking images over pixel noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..imaging import start_image, to_uint8

# Square root of ImageNet's colour covariance (from Lucid), so that independent
# directions in parameter space are decorrelated directions in colour space.
COLOR_CORRELATION_SQRT = np.array(
    [[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], dtype=np.float32
)
COLOR_MIX = COLOR_CORRELATION_SQRT / np.max(np.linalg.norm(COLOR_CORRELATION_SQRT, axis=0))


@dataclass(frozen=True)
class PixelParam:
    """The image is the parameter; it is shown min-max scaled, as the seed plots it."""

    def key(self) -> dict:
        return {"init": "uniform[-0.5,0.5)"}

    def init(self, seed: int, shape: tuple[int, int, int]) -> np.ndarray:
        return start_image(seed, shape)

    def to_image(self, params, shape=None):
        return params

    def to_pixels(self, image: np.ndarray) -> np.ndarray:
        return to_uint8(image)

    def from_image(self, image: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
        """The parameters whose image is `image` (RGB in [0, 1]): the image itself."""
        return np.asarray(image, np.float32).reshape(shape).copy()


@dataclass(frozen=True)
class FourierParam:
    """A decorrelated Fourier-space image through a sigmoid: always a valid RGB image."""

    sd: float = 0.01
    decay_power: float = 1.0
    # The mean colour's scale relative to the lowest frequency's: above 1, the
    # picture's overall colour moves that many times faster than its patterns.
    dc_gain: float = 1.0

    def key(self) -> dict:
        key = {"param": "fourier", "sd": self.sd, "decay_power": self.decay_power}
        if self.dc_gain != 1.0:
            key["dc_gain"] = self.dc_gain
        return key

    def init(self, seed: int, shape: tuple[int, int, int]) -> np.ndarray:
        height, width, channels = shape
        rng = np.random.default_rng(seed)
        # real and imaginary parts of each channel's half spectrum, of an even width
        return (rng.standard_normal((2, channels, height, even(width) // 2 + 1)) * self.sd).astype(np.float32)

    def to_image(self, params, shape):
        """The image of `shape` (height, width, channels): an odd width is the
        even-width image less its last column, as Lucid does it."""
        import tensorflow as tf

        height, width = shape[0], shape[1]
        image = scaled_irfft2d(params, spectrum_scale(height, even(width), self.decay_power, self.dc_gain))
        image = tf.transpose(image[:, :, :, :width], [0, 2, 3, 1]) / 4.0
        image = tf.tensordot(image, tf.constant(COLOR_MIX.T), axes=1)
        return tf.sigmoid(image)

    def to_pixels(self, image: np.ndarray) -> np.ndarray:
        return np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)

    def from_image(self, image: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
        """The parameters whose image (`to_image`) is `image`, RGB in [0, 1] of
        `shape`: `to_image` undone step by step (the sigmoid, the colour mix,
        the spectrum's scale). Values are kept half a level inside (0, 1) so the
        sigmoid's inverse is finite; an odd width repeats its last column."""
        height, width, _ = shape
        image = np.clip(np.asarray(image, np.float64).reshape(shape), 0.5 / 255, 1 - 0.5 / 255)
        mixed = np.log(image / (1 - image))  # the sigmoid undone
        unmixed = mixed @ np.linalg.inv(COLOR_MIX.T.astype(np.float64)) * 4.0
        planes = np.transpose(unmixed, [2, 0, 1])  # (c, h, w)
        if width % 2:
            planes = np.concatenate([planes, planes[:, :, -1:]], axis=2)
        spectrum = np.fft.rfft2(planes) / spectrum_scale(height, even(width), self.decay_power, self.dc_gain)
        return np.stack([spectrum.real, spectrum.imag]).astype(np.float32)


@dataclass(frozen=True)
class PhotoSeeded:
    """Another parameterization started from a photo instead of noise (feature
    accentuation, Hamblin, Fel et al. 2024): the same parameters and image,
    their starting point the photo's own (`from_image`). Its key names the
    photo by the SHA-256 of its file's bytes; the photo as the network sees it
    (photos.load_photo at the network's input size) is the starting image."""

    base: object
    photo_sha256: str = ""  # "" in the method as a build record describes it; a picture's key has its photo's

    def key(self) -> dict:
        key = {**self.base.key(), "init": "a photo as the network sees it"}
        return key | {"photo_sha256": self.photo_sha256} if self.photo_sha256 else key

    def init(self, seed: int, shape: tuple[int, int, int]) -> np.ndarray:
        raise ValueError("a photo-seeded parameterization starts from a photo: use from_image")

    def from_image(self, image: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
        return self.base.from_image(image, shape)

    def to_image(self, params, shape=None):
        return self.base.to_image(params, shape)

    def to_pixels(self, image: np.ndarray) -> np.ndarray:
        return self.base.to_pixels(image)


def scaled_irfft2d(params, scale: np.ndarray):
    """The images (b, c, h, w) of the half spectra `params` (b, 2: real and
    imaginary, c, h, w/2+1) times `scale`.

    The gradient is irfft's adjoint written out: one rfft of the incoming
    gradient, times one precomputed real factor. TensorFlow's own chain
    (complex products, real and imaginary parts, slice gradients) computes the
    same numbers in about twice the time, and this runs every step."""
    import tensorflow as tf

    height, width = scale.shape[0], 2 * (scale.shape[1] - 1)
    # irfft's inner columns stand for two frequencies each (w and -w); the
    # transform's 1/(h*w) normalization comes back in its adjoint.
    twice = np.full(scale.shape[1], 2.0, np.float32)
    twice[0] = twice[-1] = 1.0
    back = tf.constant(scale * twice / (height * width))
    scale = tf.constant(scale)

    @tf.custom_gradient
    def irfft(p):
        images = tf.signal.irfft2d(tf.complex(p[:, 0] * scale, p[:, 1] * scale), fft_length=[height, width])

        def grad(dy):
            spectrum = tf.signal.rfft2d(dy, fft_length=[height, width])
            return tf.stack([tf.math.real(spectrum) * back, tf.math.imag(spectrum) * back], axis=1)

        return images, grad

    return irfft(params)


def even(n: int) -> int:
    return n + n % 2


def spectrum_scale(height: int, width: int, decay_power: float, dc_gain: float = 1.0) -> np.ndarray:
    """1/f^decay scaling per frequency, so every frequency starts with similar energy
    in the image; times sqrt(h*w) to undo irfft's normalization."""
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    freqs = np.sqrt(fx * fx + fy * fy)
    scale = 1.0 / np.maximum(freqs, 1.0 / max(height, width)) ** decay_power
    scale[0, 0] *= dc_gain
    return (scale * np.sqrt(height * width)).astype(np.float32)
