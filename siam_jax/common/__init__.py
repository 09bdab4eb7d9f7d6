"""Helpers every package of siam-jax may use; this package imports nothing of ours."""
