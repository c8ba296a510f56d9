"""A network's input preprocessing: from an RGB image in [0, 1] to what it was trained on."""

from __future__ import annotations

# keras.applications.vgg16.preprocess_input ("caffe" mode): RGB in 0..255 to
# BGR with ImageNet's channel means subtracted.
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)


def caffe_input(image):
    """RGB in [0, 1] (a tensor or an array) -> VGG16's input: BGR in 0..255 minus ImageNet's means."""
    import tensorflow as tf

    bgr = tf.reverse(tf.cast(image, tf.float32) * 255.0, axis=[-1])
    return bgr - tf.constant(CAFFE_BGR_MEAN)
