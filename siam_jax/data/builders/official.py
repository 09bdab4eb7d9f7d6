"""What the builders of real datasets share: they read an official download from ``manual_dir``.

``OfficialFormatBuilder`` writes array_record files (what ``tfds.data_source`` and the Grain
pipeline read), frames in order (``disable_shuffling``: clips are cut from consecutive frames of
one ``sequence_id``), an empty ``info.metadata`` the builder fills with what it skipped, and
takes the folder of SMPL files as ``body_model_dir`` (default ``manual_dir/body_models``).
Subclasses set ``IMAGE_FORMAT`` (how images are stored) and ``HOMEPAGE``, list their required files
in ``missing_files(manual)`` and start ``_split_generators`` with ``labels.require_manual``.
"""

from __future__ import annotations

import os

import tensorflow_datasets as tfds

from siam_jax.data import schema


class OfficialFormatBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Base of the builders that convert an official download (module doc); not a dataset."""

    IMAGE_FORMAT = "jpeg"
    HOMEPAGE = ""
    # No checksums file: skips TFDS's code-path lookup (needs importlib_resources, absent).
    code_path = None

    def __init__(self, *, body_model_dir: str | None = None, **kwargs):
        kwargs.setdefault("file_format", "array_record")
        super().__init__(**kwargs)
        self._body_model_dir = body_model_dir

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=schema.features(image_format=self.IMAGE_FORMAT),
            homepage=self.HOMEPAGE,
            metadata=tfds.core.MetadataDict(),
            disable_shuffling=True,
        )

    def _body_model_folder(self, manual_dir: str) -> str:
        return self._body_model_dir or os.path.join(manual_dir, "body_models")


__all__ = ["OfficialFormatBuilder"]
