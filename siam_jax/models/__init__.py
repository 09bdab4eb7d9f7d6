"""SIAM network: HRNet backbone, neck, centre head, tokens, SIA, FD, regressor, camera, assembly."""

from siam_jax.models.siam import OUTPUT_KEYS, SIAM, build_model, load_body_model

__all__ = ["OUTPUT_KEYS", "SIAM", "build_model", "load_body_model"]
