"""Normalisation, patch sampling and augmentation."""
